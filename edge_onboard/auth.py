"""API keys: ``sk_org_`` + 43 characters (32 random bytes), stored as SHA-256 only."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request

from edge_onboard.errors import ApiError
from edge_onboard.hot import HotCache
from edge_onboard.storage import ApiKey, Organization, Storage

KEY_PREFIX = "sk_org_"
# Shown in listings and accepted by `keys revoke`: "sk_org_" and 8 more characters.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_BEARER = "bearer "


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    key_id: str


async def create_key(
    storage: Storage, org_name: str, now: datetime
) -> tuple[Organization, ApiKey, str]:
    """Create the organisation if needed and a new key for it; returns the plaintext key once."""
    org = await storage.get_or_create_org(
        Organization(id=str(uuid.uuid4()), name=org_name, created_at=now)
    )
    plaintext = generate_key()
    record = ApiKey(
        id=str(uuid.uuid4()),
        org_id=org.id,
        key_hash=hash_key(plaintext),
        prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
        created_at=now,
    )
    await storage.insert_api_key(record)
    return org, record, plaintext


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="edge-onboard"'})


async def authenticate(request: Request, storage: Storage, cache: HotCache) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized(
            "missing_api_key",
            "No API key provided. Send it as 'Authorization: Bearer sk_org_...'.",
        )
    if not header.lower().startswith(_BEARER):
        raise _unauthorized(
            "invalid_authorization_header",
            "Use the Bearer scheme: 'Authorization: Bearer sk_org_...'.",
        )
    token = header[len(_BEARER) :].strip()
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise _unauthorized("invalid_api_key", "Invalid API key provided.")
    key_hash = hash_key(token)

    async def fetch() -> dict[str, Any] | None:
        key = await storage.get_api_key_by_hash(key_hash)
        return key.to_doc() if key is not None else None

    # Through the hot layer: a revocation shows within a second (see edge_onboard/hot.py).
    entry = await cache.load("apikey", key_hash, fetch)
    if entry is None:
        raise _unauthorized("invalid_api_key", "Invalid API key provided.")
    principal: Principal | None = entry.memo.get("principal")
    if principal is None:
        key = ApiKey.from_doc(entry.doc)
        if not key.active:
            raise _unauthorized("invalid_api_key", "Invalid API key provided.")
        principal = entry.memo["principal"] = Principal(org_id=key.org_id, key_id=key.id)
    return principal
