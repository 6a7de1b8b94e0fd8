"""Regions, in process: what a region other than the primary answers itself and what it
replays to the primary with ``fly-replay`` (edge_onboard/core/regions.py).

The far app here shares one in-memory store with the primary app: a replica that is
always in sync. tests/test_regions_topology.py runs the real thing (Redis and MongoDB
replicas, a slow link, a double of Fly's proxy)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.routing import Route

from edge_onboard.api.auth import create_key
from edge_onboard.app import create_app
from edge_onboard.config import ConfigError, Settings
from edge_onboard.core import redis_keys
from edge_onboard.core.hot import LOCAL_TTL, HotCache
from edge_onboard.core.regions import (
    MAX_REPLAY_BODY,
    WINDOW_COOKIE,
    RecentWriters,
    ReplayRequired,
    ReplicaStorage,
    replay_state,
)
from edge_onboard.storage import Storage
from edge_onboard.storage.memory import MemoryStorage
from tests.conftest import AppClient, FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio

FAR = {"FLY_REGION": "syd", "PRIMARY_REGION": "iad"}
LINK = {"name": "Acme", "redirectUrl": "https://app.example.com/done"}


@pytest.fixture
async def store() -> AsyncIterator[Storage]:
    yield MemoryStorage()


@pytest.fixture
async def far(store: Storage, clock: FakeClock) -> AsyncIterator[AppClient]:
    async with running_app(store, clock, make_settings(**FAR)) as client:
        yield client


@pytest.fixture
async def primary(store: Storage, clock: FakeClock) -> AsyncIterator[AppClient]:
    settings = make_settings(FLY_REGION="iad", PRIMARY_REGION="iad")
    async with running_app(store, clock, settings) as client:
        yield client


async def _key(store: Storage, clock: FakeClock, org: str = "acme") -> dict[str, str]:
    _, _, plaintext = await create_key(store, org, clock())
    return {"Authorization": f"Bearer {plaintext}"}


async def _link_made_in_primary(primary: AppClient, store: Storage, clock: FakeClock) -> str:
    created = await primary.post(
        "/v1/onboarding-links", headers=await _key(store, clock), json=LINK
    )
    return str(created.json()["data"]["id"])


def _replayed(response: httpx.Response, state: str) -> None:
    assert response.headers.get("fly-replay") == f"region=iad;state={state}", (
        response.status_code,
        response.text[:200],
    )


def _local(response: httpx.Response) -> None:
    assert "fly-replay" not in response.headers, response.text[:200]


# Settings


def test_region_from_fly_and_from_edge_names() -> None:
    fly = Settings.from_env({**FAR, "EDGE_STORAGE_URL": "memory://"})
    assert (fly.region, fly.primary_region, fly.in_primary_region) == ("syd", "iad", False)
    edge = Settings.from_env(
        {**FAR, "EDGE_REGION": "fra", "EDGE_PRIMARY_REGION": "fra", "EDGE_STORAGE_URL": "memory://"}
    )
    assert (edge.region, edge.in_primary_region) == ("fra", True)
    assert Settings.from_env(
        {"FLY_REGION": "syd", "EDGE_STORAGE_URL": "memory://"}
    ).in_primary_region
    assert Settings.from_env({"EDGE_STORAGE_URL": "memory://"}).region is None
    templated = Settings.from_env(
        {
            **FAR,
            "EDGE_STORAGE_URL": "memory://",
            "EDGE_REDIS_URL": "redis://primary.internal:6379/0",
            "EDGE_REDIS_REPLICA_URL": "redis://{region}.replicas.internal:6379/0",
        }
    )
    assert templated.redis_replica_url is not None
    assert templated.redis_replica_url.reveal() == "redis://syd.replicas.internal:6379/0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EDGE_REGION": "Sydney!"}, "EDGE_REGION"),
        ({"EDGE_REDIS_REPLICA_URL": "redis://127.0.0.1:1/0"}, "EDGE_REDIS_REPLICA_URL"),
        (
            {"EDGE_REDIS_URL": "redis://a:1/0", "EDGE_REDIS_REPLICA_URL": "http://x"},
            "EDGE_REDIS_REPLICA_URL",
        ),
        ({"EDGE_REPLICA_MAX_STALENESS": "10"}, "EDGE_REPLICA_MAX_STALENESS"),
        ({"EDGE_REPLAY_WINDOW": "-1"}, "EDGE_REPLAY_WINDOW"),
    ],
)
def test_bad_region_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=f"^{named}:"):
        Settings.from_env({"EDGE_STORAGE_URL": "memory://", **env})


# Writes


def _writes(app_routes: list[Any]) -> list[tuple[str, str]]:
    """Every (method, path) of the app that may write: all but reads, from its routes."""
    found = []
    for route in app_routes:
        if not isinstance(route, Route):
            continue
        path = route.path.replace("{path:path}", "x/y").replace("{version}", "v25.0")
        path = path.replace("{", "").replace("}", "")
        for method in sorted(route.methods or ()):
            if method not in {"GET", "HEAD"}:
                found.append((method, path))
    return found


ROUTES = create_app(make_settings()).routes
WRITES = _writes(ROUTES)


def test_the_route_table_has_the_writes_we_know() -> None:
    assert ("POST", "/v1/onboarding-links") in WRITES
    assert ("POST", "/signup/link_id/callback") in WRITES
    assert ("POST", "/signup/link_id/session") in WRITES
    assert ("POST", "/webhook/meta") in WRITES
    assert ("POST", "/_sandbox/dialog/finish") in WRITES
    assert ("PATCH", "/v1/organization") in WRITES and ("PUT", "/v1/organization/logo") in WRITES
    assert len(WRITES) >= 25


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_every_write_is_replayed_before_any_work(
    far: AppClient, store: Storage, clock: FakeClock, method: str, path: str
) -> None:
    headers = await _key(store, clock)
    response = await far.request(method, path, headers=headers, json=LINK)
    assert response.status_code == 503
    _replayed(response, "write")
    assert response.json()["error"]["code"] == "replayed_to_primary"


@pytest.mark.parametrize(
    "path", ["/webhook/meta?hub.mode=subscribe", "/_sandbox/graph/v25.0/oauth/access_token"]
)
async def test_reads_that_write_elsewhere_are_replayed(far: AppClient, path: str) -> None:
    _replayed(await far.get(path), "write")


async def test_create_link_is_replayed_and_nothing_is_created(
    far: AppClient, store: Storage, clock: FakeClock
) -> None:
    headers = await _key(store, clock)
    response = await far.post("/v1/onboarding-links", headers=headers, json=LINK)
    _replayed(response, "write")
    primary_settings = make_settings(FLY_REGION="iad", PRIMARY_REGION="iad")
    async with running_app(store, clock, primary_settings) as primary:
        listed = await primary.get("/v1/onboarding-links", headers=headers)
    assert listed.json()["data"] == []


async def test_a_body_fly_cannot_replay_is_refused(
    far: AppClient, store: Storage, clock: FakeClock
) -> None:
    headers = await _key(store, clock)
    big = b"x" * (MAX_REPLAY_BODY + 1)
    declared = await far.post("/v1/onboarding-links", headers=headers, content=big)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    assert "fly-replay" not in declared.headers

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (MAX_REPLAY_BODY // 2)

    chunked = await far.post("/signup/x/callback", content=chunks())
    assert chunked.status_code == 413 and "fly-replay" not in chunked.headers
    small = await far.post("/signup/x/callback", content=b"{}")
    _replayed(small, "write")


# Reads


async def test_reads_are_answered_here(
    far: AppClient, primary: AppClient, store: Storage, clock: FakeClock
) -> None:
    link_id = await _link_made_in_primary(primary, store, clock)
    other = await _key(store, clock)  # the same organisation; a key that has not written
    for path in (f"/v1/onboarding-links/{link_id}", "/v1/onboarding-links", "/healthz"):
        response = await far.get(path, headers=other if path.startswith("/v1") else None)
        assert response.status_code == 200
        _local(response)


async def test_a_read_that_finds_nothing_is_replayed(
    far: AppClient, store: Storage, clock: FakeClock
) -> None:
    headers = await _key(store, clock)
    _replayed(await far.get(f"/v1/onboarding-links/{uuid.uuid4()}", headers=headers), "miss")
    _replayed(await far.get(f"/signup/{uuid.uuid4()}"), "miss")
    unknown = {"Authorization": "Bearer sk_live_" + "0" * 43}
    _replayed(await far.get("/v1/onboarding-links", headers=unknown), "miss")
    # No key at all is no lag: answered here.
    anonymous = await far.get("/v1/onboarding-links")
    assert anonymous.status_code == 401
    _local(anonymous)


async def test_a_read_that_writes_is_replayed_before_it_writes(
    far: AppClient, primary: AppClient, store: Storage, clock: FakeClock
) -> None:
    link_id = await _link_made_in_primary(primary, store, clock)
    # The first view marks the link opened (and announces it): the primary does that.
    _replayed(await far.get(f"/signup/{link_id}"), "captured_write")
    link = await store.get_link(link_id)
    assert link is not None and link.opened_at is None
    assert (await primary.get(f"/signup/{link_id}")).status_code == 200
    await anyio.sleep(LOCAL_TTL)  # the far process's own copy of the link lapses
    later = await far.get(f"/signup/{link_id}")
    assert later.status_code == 200 and "<html" in later.text
    _local(later)


async def test_a_client_reads_its_own_writes(
    far: AppClient, store: Storage, clock: FakeClock
) -> None:
    writer, reader = await _key(store, clock), await _key(store, clock, "reader")
    _replayed(await far.post("/v1/onboarding-links", headers=writer, json=LINK), "write")
    _replayed(await far.get("/v1/onboarding-links", headers=writer), "threshold")
    _local(await far.get("/v1/onboarding-links", headers=reader))


def test_recent_writers_forget_after_the_window() -> None:
    now = [100.0]
    writers = RecentWriters(5.0, monotonic=lambda: now[0])
    writers.mark("k")
    assert writers.recent("k") and not writers.recent("other")
    now[0] += 5.01
    assert not writers.recent("k")


async def test_browsers_read_their_writes_by_the_primary_cookie(
    primary: AppClient, far: AppClient
) -> None:
    src = {"fly-replay-src": "instance=abc;region=syd;t=1;state=write"}
    answered = await primary.post("/signup/nope/session", headers=src, json={})
    cookie = answered.headers.get("set-cookie", "")
    assert cookie.startswith(f"{WINDOW_COOKIE}=") and "HttpOnly" in cookie and "Secure" in cookie
    until = cookie.split(";")[0].split("=")[1]
    assert 0 < int(until) - time.time() <= 7
    far.cookies.set(WINDOW_COOKIE, until)
    _replayed(await far.get(f"/signup/{uuid.uuid4()}"), "threshold")
    far.cookies.set(WINDOW_COOKIE, str(int(time.time()) - 1))
    _replayed(await far.get(f"/signup/{uuid.uuid4()}"), "miss")  # a plain miss again
    # API clients get no cookie; their reads are kept in the far process.
    api = await primary.post("/v1/x", headers={**src, "Authorization": "Bearer sk_live_x"})
    assert "set-cookie" not in api.headers


async def test_a_replayed_request_is_never_replayed_again(far: AppClient) -> None:
    src = {"fly-replay-src": "instance=abc;region=syd;t=1;state=miss"}
    response = await far.get(f"/signup/{uuid.uuid4()}", headers=src)
    assert response.status_code == 404
    _local(response)


def test_replay_state_reads_flys_header() -> None:
    assert replay_state(b"instance=00bb;region=syd;t=1700000000000000;state=write") == "write"
    assert replay_state(b"instance=00bb;region=syd") == ""


async def test_replica_storage_reads_pass_and_writes_raise() -> None:
    store = MemoryStorage()
    await store.open()
    replica: Any = ReplicaStorage(store)
    assert await replica.get_link(str(uuid.uuid4())) is None
    with pytest.raises(ReplayRequired, match="insert_link"):
        await replica.insert_link(None)
    methods = {name for name in vars(Storage) if not name.startswith("_")}
    assert ReplicaStorage.READS - methods == {"replica_staleness"}  # no misspelt read
    for name in sorted(methods - ReplicaStorage.READS):  # everything else writes
        with pytest.raises(ReplayRequired):
            await getattr(replica, name)()


# Background work, readiness


def _as_documented(body: dict[str, Any]) -> None:
    """The /readyz answer matches its schema in the OpenAPI document."""
    import jsonschema

    from edge_onboard.api.openapi import build_openapi

    readyz = build_openapi("https://onboard.test")["paths"]["/readyz"]["get"]
    jsonschema.validate(body, readyz["responses"]["200"]["content"]["application/json"]["schema"])


async def test_no_background_work_outside_the_primary(store: Storage, clock: FakeClock) -> None:
    async with running_app(store, clock, make_settings(**FAR), deliver=True) as client:
        engine = client.services.engine
        assert engine._running == 0 and engine.loop_error is None
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    _as_documented(ready.json())
    region = ready.json()["region"]
    assert region == {
        "name": "syd",
        "primary": "iad",
        "role": "replica",
        "rateLimits": "in-process",
    }


@pytest.mark.redis
async def test_the_hot_layer_never_writes_a_replica(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        hot = HotCache(client, writable=False)
        key = uuid.uuid4().hex

        async def fetch() -> dict[str, Any]:
            return {"id": key}

        entry = await hot.load("link", key, fetch)
        assert entry is not None and entry.doc == {"id": key}
        assert await hot.forget("link", key)
        assert await client.get(redis_keys.hot("link", key)) is None
        await client.set(redis_keys.hot("link", "copied"), b'{"id":"copied"}')
        read = await hot.load("link", "copied", fetch)
        assert read is not None and read.doc == {"id": "copied"}
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_readyz_reports_the_replica_and_its_lag(
    redis_url: str, store: Storage, clock: FakeClock
) -> None:
    from redis.asyncio import Redis

    replica = Redis.from_url(redis_url)
    try:
        await replica.set(redis_keys.REGION_BEAT, int(time.time() * 1000) - 250)
        settings = make_settings(**FAR, EDGE_REDIS_URL=redis_url)
        async with running_app(store, clock, settings, redis_replica=replica) as client:
            ready = await client.get("/readyz")
    finally:
        await replica.aclose()
    body = ready.json()
    assert ready.status_code == 200 and body["checks"]["redisReplica"] == "ok"
    _as_documented(body)
    assert 250 <= body["region"]["redisReplicaLagMs"] < 5000
