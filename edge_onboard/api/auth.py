"""API keys: ``sk_live_`` or ``sk_test_`` + 43 characters (32 random bytes), stored as
SHA-256 only. Keys made before test mode (``sk_org_``) are live keys."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request

from edge_onboard.core.errors import ApiError
from edge_onboard.core.hot import HotCache
from edge_onboard.core.ratelimit import Limit, RateLimiter
from edge_onboard.storage import ApiKey, Organization, Storage

LIVE_PREFIX = "sk_live_"
TEST_PREFIX = "sk_test_"
LEGACY_PREFIX = "sk_org_"  # keys made before test mode: live
KEY_PREFIXES = (LIVE_PREFIX, TEST_PREFIX, LEGACY_PREFIX)
# Shown in listings and accepted by `keys revoke`: the prefix and 8 more characters.
DISPLAY_EXTRA = 8
_BEARER = "bearer "
# Failed authentications per client address: 20 at once, then one a second.
FAILED_LOGINS = Limit(1.0, 20)
UNKNOWN_KEY_TTL = 60.0  # seconds an unknown key's hash is answered without storage
UNKNOWN_KEYS = 10_000  # unknown hashes kept at most (least recent dropped)
VALID_KEY_TTL = 86_400.0  # seconds a key found valid passes an address's failure budget
VALID_KEYS = 10_000  # valid hashes kept at most (least recent dropped)


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(*, livemode: bool = True) -> str:
    return (LIVE_PREFIX if livemode else TEST_PREFIX) + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    """The part of a key shown in listings: its prefix and 8 more characters."""
    prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), "")
    return key[: len(prefix) + DISPLAY_EXTRA]


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    key_id: str
    # Test keys see only test objects and live keys only live ones.
    livemode: bool = True


async def create_key(
    storage: Storage, org_name: str, now: datetime, *, livemode: bool = True
) -> tuple[Organization, ApiKey, str]:
    """Create the organisation if needed and a new key for it; returns the plaintext key once."""
    org = await storage.get_or_create_org(
        Organization(id=str(uuid.uuid4()), name=org_name, created_at=now)
    )
    plaintext = generate_key(livemode=livemode)
    record = ApiKey(
        id=str(uuid.uuid4()),
        org_id=org.id,
        key_hash=hash_key(plaintext),
        prefix=display_prefix(plaintext),
        created_at=now,
        livemode=livemode,
    )
    await storage.insert_api_key(record)
    return org, record, plaintext


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="edge-onboard"'})


class FailedLogins:
    """Failed authentication, limited per client address and per key presented, and
    unknown keys remembered.

    A client that keeps sending bad keys gets 429 (with ``Retry-After``) after a burst,
    before its key is even looked up; so does a bad key sent again and again, from any
    address. A key the store did not know is remembered for a minute, so a flood of
    random keys does not become a flood of storage reads. A key cannot be unknown and
    then valid: its hash exists only once it is created.

    A key this process found valid lately passes its address's budget (not its own): a
    flood of bad keys from behind the same NAT or proxy does not lock out the valid keys
    in use there. (One never seen by this process may still wait out the flood.)
    """

    def __init__(self, limiter: RateLimiter, *, now: Callable[[], float] = time.monotonic):
        self.limiter = limiter
        self._now = now
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._valid: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def _client(request: Request) -> str:
        return f"authfail:{request.client.host if request.client else 'unknown'}"

    @staticmethod
    def _presented(key_hash: str) -> str:
        return f"authfail:key:{key_hash[:32]}"

    def check(self, request: Request, key_hash: str) -> None:
        """429 while this key, or this client for a key not known valid, is over its
        budget of failures (charges nothing)."""
        wait = self.limiter.waiting(self._presented(key_hash), FAILED_LOGINS)
        if not self._fresh(self._valid, key_hash):
            wait = max(wait, self.limiter.waiting(self._client(request), FAILED_LOGINS))
        if wait > 0:
            raise _too_many(wait)

    async def failed(self, request: Request, key_hash: str, error: ApiError) -> ApiError:
        """Count a failure against the client and the key presented; the error to
        answer (429 once either budget is spent)."""
        self._valid.pop(key_hash, None)
        answer = error
        for name in (self._presented(key_hash), self._client(request)):
            try:
                await self.limiter.check(name, FAILED_LOGINS, "with invalid keys")
            except ApiError as limited:
                answer = limited
        return answer

    def succeeded(self, key_hash: str) -> None:
        """Remember a key found valid (see the class's note)."""
        self._valid[key_hash] = self._now() + VALID_KEY_TTL
        self._valid.move_to_end(key_hash)
        while len(self._valid) > VALID_KEYS:
            self._valid.popitem(last=False)

    def _fresh(self, memo: OrderedDict[str, float], key_hash: str) -> bool:
        expires = memo.get(key_hash)
        if expires is None:
            return False
        if expires < self._now():
            del memo[key_hash]
            return False
        return True

    def known_unknown(self, key_hash: str) -> bool:
        return self._fresh(self._unknown, key_hash)

    def remember_unknown(self, key_hash: str) -> None:
        self._unknown[key_hash] = self._now() + UNKNOWN_KEY_TTL
        self._unknown.move_to_end(key_hash)
        while len(self._unknown) > UNKNOWN_KEYS:
            self._unknown.popitem(last=False)


def _invalid_key() -> ApiError:
    return _unauthorized("invalid_api_key", "Invalid API key provided.")


def _too_many(wait: float) -> ApiError:
    seconds = max(1, int(wait + 0.999))
    return ApiError(
        429,
        "rate_limited",
        f"Too many requests with invalid keys; retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


async def authenticate(
    request: Request, storage: Storage, cache: HotCache, logins: FailedLogins
) -> Principal:
    """The key's organisation. A missing or malformed header is a plain 401; a key that
    was looked up and is unknown or revoked counts as a failed login (see FailedLogins)."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized(
            "missing_api_key",
            "No API key provided. Send it as 'Authorization: Bearer sk_live_...'.",
        )
    if not header.lower().startswith(_BEARER):
        raise _unauthorized(
            "invalid_authorization_header",
            "Use the Bearer scheme: 'Authorization: Bearer sk_live_...'.",
        )
    token = header[len(_BEARER) :].strip()
    if not token.startswith(KEY_PREFIXES) or len(token) > 200:
        raise _invalid_key()
    key_hash = hash_key(token)
    entry = cache.peek("apikey", key_hash)
    if entry is None:
        # Not in this process's copy: a storage read, unless this client is over its
        # budget of failures or the key is one the store just said it does not know.
        logins.check(request, key_hash)
        if logins.known_unknown(key_hash):
            raise await logins.failed(request, key_hash, _invalid_key())

        async def fetch() -> dict[str, Any] | None:
            key = await storage.get_api_key_by_hash(key_hash)
            return key.to_doc() if key is not None else None

        # Through the hot layer: a revocation shows within a second (edge_onboard/core/hot.py).
        entry = await cache.load("apikey", key_hash, fetch)
        if entry is None:
            logins.remember_unknown(key_hash)
            raise await logins.failed(request, key_hash, _invalid_key())
    principal: Principal | None = entry.memo.get("principal")
    if principal is None:
        key = ApiKey.from_doc(entry.doc)
        if not key.active:
            raise await logins.failed(request, key_hash, _invalid_key())
        principal = entry.memo["principal"] = Principal(
            org_id=key.org_id, key_id=key.id, livemode=key.livemode
        )
        logins.succeeded(key_hash)
    return principal
