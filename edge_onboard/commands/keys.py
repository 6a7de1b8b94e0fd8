"""``edge-onboard keys create|list|revoke``: API keys, straight in the storage
``EDGE_STORAGE_URL`` names. With ``--json``, one JSON object on stdout (errors stay plain
text on stderr)."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from edge_onboard.config import Settings
from edge_onboard.core.clock import isoformat, system_clock
from edge_onboard.core.redis_keys import HOT_TTL
from edge_onboard.startup import open_storage
from edge_onboard.storage import ApiKey, Organization

# Every key's prefix starts so (sk_live_, sk_test_ and the older sk_org_).
_ANY_KEY = "sk_"


def _out(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        print(orjson.dumps(data).decode())
    else:
        print("\n".join(lines))


def _fail(message: str, code: int) -> int:
    print(f"edge-onboard: {message}", file=sys.stderr)
    return code


def key_view(key: ApiKey, org: Organization | None) -> dict[str, Any]:
    """A key as ``keys list`` shows it: never the key, nor its hash."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "livemode": key.livemode,
        "organizationId": key.org_id,
        "organization": org.name if org else None,
        "createdAt": isoformat(key.created_at),
        "revokedAt": isoformat(key.revoked_at) if key.revoked_at else None,
    }


async def create(settings: Settings, org_name: str, livemode: bool, as_json: bool) -> int:
    from edge_onboard.api.auth import create_key

    name = org_name.strip()
    if not 1 <= len(name) <= 200:
        return _fail("--org must be 1-200 characters", 2)
    storage = await open_storage(settings)
    try:
        org, key, plaintext = await create_key(storage, name, system_clock(), livemode=livemode)
    finally:
        await storage.close()
    mode = "live" if livemode else "test"
    _out(
        as_json,
        {**key_view(key, org), "key": plaintext},
        [
            f"organization: {org.name} ({org.id})",
            f"key id: {key.id} (prefix {key.prefix}, {mode} mode)",
            "Store this key now: it is shown only once.",
            plaintext,
        ],
    )
    return 0


async def list_keys(settings: Settings, include_revoked: bool, as_json: bool) -> int:
    storage = await open_storage(settings)
    try:
        keys = await storage.find_api_keys(_ANY_KEY)
        orgs = {org_id: await storage.get_org(org_id) for org_id in {k.org_id for k in keys}}
    finally:
        await storage.close()
    keys.sort(key=lambda k: (k.created_at, k.id))
    shown = [k for k in keys if include_revoked or k.active]
    views = [key_view(k, orgs.get(k.org_id)) for k in shown]
    lines = [
        f"{v['prefix']:<17} {'live' if v['livemode'] else 'test'}  {v['id']}  "
        f"{v['organization'] or v['organizationId']}  created {v['createdAt']}"
        + (f"  revoked {v['revokedAt']}" if v["revokedAt"] else "")
        for v in views
    ]
    if not views:
        lines = ["no API keys" + ("" if include_revoked else " (--all shows revoked ones)")]
    _out(as_json, {"data": views}, lines)
    return 0


async def _forget_key(settings: Settings, key_hash: str) -> bool:
    """Drop the key from the shared hot layer; servers' own copies lapse within a second.
    False if Redis could not be told (its copy then lapses within a few seconds)."""
    if settings.redis_url is None:
        return True
    from edge_onboard.core.hot import HotCache
    from edge_onboard.webhooks.queue.redis import open_client

    client = await open_client(settings.redis_url.reveal(), max_connections=2)
    try:
        return await HotCache(client).forget("apikey", key_hash)
    finally:
        await client.aclose()


async def revoke(settings: Settings, ident: str, as_json: bool) -> int:
    from edge_onboard.api.auth import KEY_PREFIXES, hash_key

    storage = await open_storage(settings)
    try:
        if ident.startswith(KEY_PREFIXES) and len(ident) > 40:
            found = await storage.get_api_key_by_hash(hash_key(ident))
            matches = [found] if found else []
        elif len(ident) < 10:
            return _fail("give at least 10 characters of the key prefix, or its id", 2)
        else:
            matches = await storage.find_api_keys(ident)
        if not matches:
            return _fail(f"no API key matches {ident!r}", 1)
        if len(matches) > 1:
            return _fail(
                f"{len(matches)} keys match {ident!r}; give more characters or the key id", 1
            )
        key = matches[0]
        if not await storage.revoke_api_key(key.id, system_clock()):
            view = key_view(key, None) | {"revoked": False, "alreadyRevoked": True}
            _out(as_json, view, [f"key {key.id} ({key.prefix}) was already revoked"])
            return 0
        if not await _forget_key(settings, key.key_hash):
            print(
                f"warning: Redis did not answer; servers may accept key {key.prefix} for "
                f"up to {HOT_TTL + 1} more seconds",
                file=sys.stderr,
            )
        revoked = await storage.find_api_keys(key.id)
        view = key_view(revoked[0] if revoked else key, None) | {"revoked": True}
        _out(as_json, view, [f"revoked key {key.id} ({key.prefix})"])
        return 0
    finally:
        await storage.close()
