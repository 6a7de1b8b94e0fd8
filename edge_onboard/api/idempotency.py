"""``Idempotency-Key`` on POST: the first response is stored for 24 h and replayed.

Same key and same request → the stored response (``Idempotent-Replayed: true``);
same key and a different request → 409 ``idempotency_key_reused``; a key whose
first request is still running → 409 ``idempotency_key_in_use``. Responses with a
5xx status are not stored, so the client may retry them with the same key.

The request's fingerprint is keyed (HMAC with a key derived from ``EDGE_SECRET_KEY``,
``KEYED`` + hex): a plain hash of a body holding a verification code or a short secret
would give it away, by brute force, to whoever reads a copy of the database. Records
stored before keyed fingerprints hold a plain SHA-256 (64 hex digits, no prefix); they
are compared as such until they expire (24 h), so a retry across the upgrade replays.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.responses import JSONResponse
from edge_onboard.storage import IdempotencyRecord, Storage

HEADER = "idempotency-key"
TTL = timedelta(hours=24)
# How long an unfinished first request holds its key (if it died, a retry runs again).
LOCK = timedelta(seconds=60)
MAX_KEY_LENGTH = 255
# A test key's records are stored under this prefix: it is not printable, so no key a
# client sends can carry it, and a test and a live key never replay each other's answers.
TEST_SCOPE = "test\x1f"


KEYED = "h1:"


def _canonical(method: str, path: str, body: bytes) -> bytes:
    """Method, path and body (JSON with sorted keys), each prefixed by its length."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        canonical = body  # not JSON, or nested beyond what orjson writes: compare the bytes
    parts = (method.encode(), path.encode(), canonical)
    return b"".join(len(part).to_bytes(8, "big") + part for part in parts)


def plain_fingerprint(method: str, path: str, body: bytes) -> str:
    """The fingerprint records held before it was keyed: a plain SHA-256."""
    return hashlib.sha256(_canonical(method, path, body)).hexdigest()


def fingerprints(box: SecretBox, method: str, path: str, body: bytes) -> list[str]:
    """The request's keyed fingerprint under each of EDGE_SECRET_KEY's keys (the one to
    store first)."""
    return [KEYED + d for d in box.digests("idempotency", _canonical(method, path, body))]


def same_request(stored: str, keyed: list[str], method: str, path: str, body: bytes) -> bool:
    """Whether a stored fingerprint is this request's (keyed, or plain from before)."""
    if stored.startswith(KEYED):
        return any(hmac.compare_digest(stored, mine) for mine in keyed)
    return hmac.compare_digest(stored, plain_fingerprint(method, path, body))


async def run_idempotent(
    request: Request,
    *,
    storage: Storage,
    clock: Clock,
    box: SecretBox,
    org_id: str,
    livemode: bool,
    body: bytes,
    handler: Callable[[], Awaitable[JSONResponse]],
) -> Response:
    given = request.headers.get(HEADER)
    if given is None:
        return await handler()
    if not 1 <= len(given) <= MAX_KEY_LENGTH or not given.isprintable():
        raise invalid(
            f"The Idempotency-Key header must be 1-{MAX_KEY_LENGTH} printable characters.",
            param="Idempotency-Key",
            code="idempotency_key_invalid",
        )
    key = given if livemode else TEST_SCOPE + given
    now = clock()
    method, path = request.method, request.url.path
    keyed = fingerprints(box, method, path, body)
    record = IdempotencyRecord(
        org_id=org_id,
        key=key,
        fingerprint=keyed[0],
        created_at=now,
        expires_at=now + TTL,
        locked_until=now + LOCK,
    )
    context = f"idempotency:{org_id}:{key}"
    existing = await storage.claim_idempotency(record)
    if existing is not None:
        if not same_request(existing.fingerprint, keyed, method, path, body):
            raise ApiError(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request.",
            )
        if existing.status_code is None or existing.body is None:
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still in progress; retry shortly.",
            )
        return JSONResponse(
            box.decrypt(existing.body.decode(), context=context).encode(),
            status_code=existing.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    try:
        try:
            response = await handler()
        except ApiError as exc:
            if exc.status_code >= 500:
                raise
            response = exc.response()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await storage.release_idempotency(org_id, key)
        raise
    if response.status_code >= 500:
        await storage.release_idempotency(org_id, key)
    else:
        sealed = box.encrypt(bytes(response.body).decode(), context=context).encode()
        await storage.complete_idempotency(org_id, key, response.status_code, sealed)
    return response
