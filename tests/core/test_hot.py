"""The hot layer: shared through Redis (one server, or a Redis Cluster), trusted
in-process for a second, and harmless when Redis goes away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

from edge_onboard.core import redis_keys as keys
from edge_onboard.core.hot import FILL_WINDOW, LOCAL_TTL, REDIS_RETRY_AFTER, TOMBSTONE, HotCache
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.webhooks.queue.redis import client_from_url
from tests.conftest import Api, FakeClock, make_settings, running_app
from tests.live import free_port
from tests.webhooks.test_delivery_processes import own_redis

pytestmark = pytest.mark.anyio
Fetch = Callable[[], Awaitable[dict[str, Any] | None]]


@pytest.fixture(params=["redis", "cluster"])
async def shared(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Redis | RedisCluster]:
    """The Redis the processes share: one server, then a Redis Cluster, where each key
    lands on the shard of its own slot."""
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    client = client_from_url(url, max_connections=8)
    await client.flushdb()
    yield client
    await client.aclose()


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_two_processes_agree_within_a_second(shared: Redis | RedisCluster) -> None:
    client = shared
    ticker = Ticker()
    a, b = HotCache(client, monotonic=ticker), HotCache(client, monotonic=ticker)
    await a.load("link", "x", store({"status": "pending"}))  # a reads the store
    assert await peek(b, "x") == {"status": "pending"}  # shared through Redis
    await a.forget("link", "x")  # a change, made by process a
    assert await peek(b, "x") == {"status": "pending"}  # b's own copy, for now
    ticker.now += LOCAL_TTL
    assert await peek(b, "x") is None  # then b reads the store again


async def test_a_copy_read_before_a_change_is_not_cached_after_it(
    shared: Redis | RedisCluster,
) -> None:
    """The cache-aside race: a reads the store, b changes the record and drops the copies,
    then a's copy arrives. The tombstone keeps a's old copy out of Redis."""
    client = shared
    ticker = Ticker()
    a, b, c = (HotCache(client, monotonic=ticker) for _ in range(3))
    old = {"status": "pending"}

    async def read_then_change() -> dict[str, Any]:
        await b.forget("link", "x")  # b's change lands while a's read is out
        return old

    assert (await a.load("link", "x", read_then_change)) is not None
    assert await peek(c, "x") is None  # c reads the store, not a's old copy
    assert await client.pttl(keys.hot("link", "x")) <= keys.HOT_TOMBSTONE_MS
    # Without a change in between, what a read is shared as before.
    assert (await a.load("link", "y", store(old))) is not None
    assert await peek(c, "y") == old


async def peek(cache: HotCache, key: str) -> dict[str, Any] | None:
    """What the hot layer holds for a link (this process, then Redis); None: the store."""
    entry = await cache.load("link", key, store(None))
    return entry.doc if entry is not None else None


def store(doc: dict[str, Any] | None, calls: list[int] | None = None) -> Fetch:
    async def fetch() -> dict[str, Any] | None:
        if calls is not None:
            calls.append(1)
        await anyio.sleep(0.01)  # a round trip
        return doc

    return fetch


async def test_concurrent_misses_share_one_read() -> None:
    cache = HotCache()
    calls: list[int] = []
    found: list[dict[str, Any] | None] = []

    async def load() -> None:
        entry = await cache.load("link", "x", store({"v": 1}, calls))
        found.append(entry.doc if entry else None)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(load)
    assert calls == [1] and found == [{"v": 1}] * 20
    # Unknown records are not remembered: the next miss reads again.
    assert await cache.load("link", "nope", store(None, calls)) is None
    assert await cache.load("link", "nope", store(None, calls)) is None
    assert len(calls) == 3


async def test_a_change_during_a_read_is_not_undone_by_it() -> None:
    cache = HotCache()
    started = anyio.Event()

    async def slow_old_read() -> dict[str, Any] | None:
        started.set()
        await anyio.sleep(0.05)
        return {"status": "pending"}

    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.load, "link", "x", slow_old_read)
        await started.wait()
        await cache.forget("link", "x")  # e.g. the link was deleted meanwhile
        # A read after the change does not join the one from before it.
        entry = await cache.load("link", "x", store({"status": "deleted"}))
        assert entry is not None and entry.doc == {"status": "deleted"}
    entry = await cache.load("link", "x", store({"status": "never read"}))
    assert entry is not None and entry.doc == {"status": "deleted"}


async def test_concurrent_writes_share_one_pipeline(
    shared: Redis | RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = shared
    cache = HotCache(client)
    pipelines = 0
    make = client.pipeline

    def counting(transaction: bool = True) -> Pipeline | ClusterPipeline:
        nonlocal pipelines
        pipelines += 1
        return make(transaction=transaction)

    monkeypatch.setattr(client, "pipeline", counting)  # counts round trips
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(cache.forget, "link", f"k{i}")  # twenty changes at once
    assert pipelines == 1
    assert [await client.get(keys.hot("link", f"k{i}")) for i in range(20)] == [TOMBSTONE] * 20


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_redis_outage_is_harmless_and_owed_deletes_happen(redis_url: str) -> None:
    del redis_url  # needs redis-server, like the other Redis tests
    port = free_port()
    ticker = Ticker()
    with own_redis(port):
        client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        cache = HotCache(client, monotonic=ticker)
        await cache.load("link", "x", store({"v": 1}))
    # Down: reads miss (the caller reads the store), writes and deletes do not fail.
    ticker.now += LOCAL_TTL
    assert await peek(cache, "x") is None
    await cache.forget("link", "y")
    with own_redis(port):
        other = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        await other.set(keys.hot("link", "y"), b'{"v": 0}')  # a copy the change missed
        ticker.now += 2  # Redis is tried again after a second
        assert await peek(cache, "z") is None
        assert await other.get(keys.hot("link", "y")) == TOMBSTONE  # the owed one was made
        assert await peek(cache, "y") is None
        await other.aclose()
    await client.aclose()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_page_and_api_keep_answering_while_redis_is_down(
    clock: FakeClock, redis_url: str
) -> None:
    del redis_url
    port = free_port()
    store = MemoryStorage()
    settings = make_settings(EDGE_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with own_redis(port):
        async with running_app(store, clock, settings) as client:
            api = Api(client, store, clock)
            auth = await api.key()
            link = (
                await client.post("/v1/onboarding-links", json={"name": "a"}, headers=auth)
            ).json()["data"]
            path = f"/v1/onboarding-links/{link['id']}"
            assert (await client.get(path, headers=auth)).status_code == 200
            statuses = []
            # Stop our Redis mid-run.
            import redis as sync_redis

            try:
                sync_redis.Redis(port=port).shutdown(nosave=True)
            except sync_redis.ConnectionError:
                pass
            for _ in range(5):
                statuses.append((await client.get(path, headers=auth)).status_code)
                statuses.append((await client.get(f"/signup/{link['id']}")).status_code)
                created = await client.post(
                    "/v1/onboarding-links", json={"name": "b"}, headers=auth
                )
                statuses.append(created.status_code)
            assert set(statuses) <= {200, 201}, statuses
            deleted = await client.delete(path, headers=auth)
            assert deleted.status_code == 200
            assert (await client.get(path, headers=auth)).status_code == 404

            # Redis comes back (empty): the service uses it again within a second, and
            # writes the tombstone it owes for the link deleted while Redis was down.
            with own_redis(port):
                await anyio.sleep(max(REDIS_RETRY_AFTER, LOCAL_TTL) + 0.1)
                assert (await client.get(path, headers=auth)).status_code == 404
                page = await client.get(f"/signup/{link['id']}")
                assert page.status_code == 410
                again = Redis.from_url(f"redis://127.0.0.1:{port}/0")
                assert await again.get(keys.hot("link", link["id"])) == TOMBSTONE
                made_meanwhile = created.json()["data"]["id"]
                read = await client.get(f"/v1/onboarding-links/{made_meanwhile}", headers=auth)
                assert read.status_code == 200
                assert await again.get(keys.hot("link", made_meanwhile)) is not None
                await again.aclose()


async def test_a_slow_read_is_not_copied_to_redis_nor_trusted_longer(
    shared: Redis | RedisCluster,
) -> None:
    """A read that took long may predate a change whose tombstone has since expired: its
    copy stays out of Redis, and in-process it counts from when the read began."""
    client = shared
    ticker = Ticker()
    cache = HotCache(client, monotonic=ticker)

    def slow(doc: dict[str, Any], seconds: float) -> Fetch:
        async def fetch() -> dict[str, Any] | None:
            ticker.now += seconds
            return doc

        return fetch

    await cache.load("link", "slow", slow({"v": 1}, FILL_WINDOW + 0.1))
    assert await client.get(keys.hot("link", "slow")) is None
    entry = await cache.load("link", "quick", slow({"v": 2}, 0.6))
    assert entry is not None and await client.get(keys.hot("link", "quick")) is not None
    ticker.now += LOCAL_TTL - 0.5  # 1.1 s after the read began, 0.5 s after it ended
    assert await cache.load("link", "quick", store({"v": 3})) is not entry


async def test_after_a_failed_shared_read_the_waiters_share_the_next_one() -> None:
    cache = HotCache()
    calls: list[int] = []
    first = True

    async def flaky() -> dict[str, Any] | None:
        nonlocal first
        calls.append(1)
        await anyio.sleep(0.01)
        if first:
            first = False
            raise ConnectionError("store down for a moment")
        return {"v": 1}

    found: list[object] = []

    async def load() -> None:
        try:
            entry = await cache.load("link", "x", flaky)
            found.append(entry.doc if entry else None)
        except ConnectionError:
            found.append("error")

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(load)
    assert len(calls) == 2  # the failed read, then one more for the nine waiting
    assert found.count("error") == 1 and found.count({"v": 1}) == 9
