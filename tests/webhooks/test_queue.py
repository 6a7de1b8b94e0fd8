"""The delivery queue contract, in-process, on a real Redis and on a real Redis Cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest
from redis.crc import key_slot

from edge_onboard.core import redis_keys as keys
from edge_onboard.webhooks.queue import DeliveryQueue
from edge_onboard.webhooks.queue.memory import MemoryQueue
from edge_onboard.webhooks.queue.redis import RedisQueue, shares
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
LEASE = timedelta(seconds=30)
REDIS_SERVERS = {"redis": "redis_url", "cluster": "redis_cluster_url"}


@contextlib.asynccontextmanager
async def _on(request: pytest.FixtureRequest, server: str) -> AsyncIterator[RedisQueue]:
    redis_queue = RedisQueue.from_url(request.getfixturevalue(REDIS_SERVERS[server]))
    await redis_queue.client.flushdb()  # the test servers are ours; keys are fixed names
    try:
        yield redis_queue
    finally:
        await redis_queue.close()


@pytest.fixture(params=list(REDIS_SERVERS))
async def redis_queue(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[RedisQueue]:
    """The Redis queue on one Redis, then on a Redis Cluster (the same code)."""
    async with _on(request, request.param) as redis_queue:
        yield redis_queue


@pytest.fixture(params=["memory", *REDIS_SERVERS])
async def queue(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[DeliveryQueue]:
    if request.param == "memory":
        yield MemoryQueue()
        return
    async with _on(request, request.param) as redis_queue:
        yield redis_queue


def _ids(count: int, part: int) -> list[str]:
    """``count`` delivery ids that live in partition ``part``."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        if keys.partition(ident := f"d{n}") == part:
            found.append(ident)
        n += 1
    return found


async def test_due_order_and_leases(queue: DeliveryQueue, clock: FakeClock) -> None:
    now = clock()
    await queue.enqueue("late", now + timedelta(seconds=10))
    await queue.enqueue("b", now + timedelta(seconds=1))
    await queue.enqueue("a", now)
    assert await queue.claim(now, 10, LEASE) == ["a"]
    clock.advance(seconds=1)
    assert await queue.claim(clock(), 10, LEASE) == ["b"]
    assert await queue.claim(clock(), 10, LEASE) == []
    # Leased: enqueueing again (a recovery scan) does not duplicate it.
    await queue.enqueue("a", clock())
    assert await queue.claim(clock(), 10, LEASE) == []
    await queue.ack("a")
    await queue.retry("b", clock() + timedelta(seconds=5))
    clock.advance(seconds=5)
    assert await queue.claim(clock(), 1, LEASE) == ["b"]
    clock.advance(seconds=5)
    assert await queue.claim(clock(), 10, LEASE) == ["late"]


async def test_expired_leases_are_swept_back(queue: DeliveryQueue, clock: FakeClock) -> None:
    await queue.enqueue("x", clock())
    assert await queue.claim(clock(), 10, LEASE) == ["x"]
    assert await queue.sweep(clock()) == 0
    clock.advance(seconds=LEASE.total_seconds())
    assert await queue.sweep(clock()) == 1
    assert await queue.claim(clock(), 10, LEASE) == ["x"]


async def test_concurrent_claims_never_share(queue: DeliveryQueue, clock: FakeClock) -> None:
    for i in range(200):
        await queue.enqueue(f"d{i}", clock())
    claimed: list[str] = []

    async def worker() -> None:
        while batch := await queue.claim(clock(), 7, LEASE):
            claimed.extend(batch)
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(worker)
    assert sorted(claimed) == sorted(f"d{i}" for i in range(200))


def test_a_partition_is_one_slot_and_the_rest_spread() -> None:
    slots = set()
    for part in range(keys.PARTITIONS):
        # A partition's scripts touch both of its keys: one slot, so one cluster shard.
        assert key_slot(keys.due(part).encode()) == key_slot(keys.inflight(part).encode())
        slots.add(key_slot(keys.due(part).encode()))
    assert len(slots) == keys.PARTITIONS
    # Hot copies and rate limits carry no hash tag: each key hashes on its own.
    names = [keys.hot("link", str(n)) for n in range(50)] + [
        keys.rate_limit(f"ip:{n}") for n in range(50)
    ]
    assert not any("{" in name for name in names)
    assert len({key_slot(name.encode()) for name in names}) > 90
    assert len({keys.partition(f"dlv_{n}") for n in range(1000)}) == keys.PARTITIONS


@pytest.mark.parametrize(
    ("due", "limit", "start", "expected"),
    [
        ([0, 0, 0], 5, 0, [0, 0, 0]),
        ([100, 1, 1], 10, 0, [8, 1, 1]),  # the small ones are not starved by the backlog
        ([100, 100, 100], 10, 1, [3, 4, 3]),  # the odd unit goes round from ``start``
        ([5, 5, 5], 2, 2, [1, 0, 1]),
        ([2, 0, 7], 20, 0, [2, 0, 7]),  # less due than the limit: all of it
    ],
)
def test_shares_are_max_min_fair(
    due: list[int], limit: int, start: int, expected: list[int]
) -> None:
    assert shares(due, limit, start) == expected


async def test_a_backlog_in_one_partition_does_not_starve_the_others(
    redis_queue: RedisQueue, clock: FakeClock
) -> None:
    backlog = _ids(200, 0)
    singles = [_ids(1, part)[0] for part in range(1, 6)]
    for n, ident in enumerate(backlog):  # due an hour earlier: in due order, all first
        await redis_queue.enqueue(ident, clock() - timedelta(hours=1) + timedelta(seconds=n))
    for ident in singles:
        await redis_queue.enqueue(ident, clock())
    claimed = await redis_queue.claim(clock(), 10, LEASE)
    assert len(claimed) == 10 and set(singles) <= set(claimed)
    assert set(claimed) - set(singles) <= set(backlog[:5])  # oldest first within one


async def test_the_one_slot_queue_is_adopted_with_its_due_times_and_leases(
    redis_queue: RedisQueue, clock: FakeClock
) -> None:
    """What the queue held before partitions is moved into them on the first sweep."""
    ms = int(clock().timestamp() * 1000)
    client = redis_queue.client
    await client.zadd(keys.LEGACY_DUE, {"due-now": ms, "due-later": ms + 10_000})
    await client.zadd(keys.LEGACY_INFLIGHT, {"leased": ms + 30_000})
    assert await redis_queue.sweep(clock()) == 0
    assert await client.exists(keys.LEGACY_DUE, keys.LEGACY_INFLIGHT) == 0
    assert await redis_queue.claim(clock(), 10, LEASE) == ["due-now"]
    await redis_queue.enqueue("leased", clock())  # still leased: not scheduled twice
    clock.advance(seconds=10)
    assert await redis_queue.claim(clock(), 10, LEASE) == ["due-later"]
    await redis_queue.ack("due-now")
    await redis_queue.ack("due-later")
    clock.advance(seconds=20)
    assert await redis_queue.sweep(clock()) == 1  # its lease ran out as it would have
    assert await redis_queue.claim(clock(), 10, LEASE) == ["leased"]


async def test_queueing_wakes_a_waiting_worker(queue: DeliveryQueue, clock: FakeClock) -> None:
    """``wait_for_work`` answers as soon as deliveries are queued (by any process, on
    Redis: the token lives there), else when its timeout passes; one token however many
    were queued, so a second wait after a burst times out."""
    assert await queue.wait_for_work(0.2) is False
    woke: list[bool] = []

    async def waiting() -> None:
        woke.append(await queue.wait_for_work(10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiting)
        await anyio.sleep(0.1)
        started = anyio.current_time()
        await queue.enqueue_many([(f"d{i}", clock()) for i in range(3)])
    assert woke == [True] and anyio.current_time() - started < 5
    assert await queue.wait_for_work(0.2) is False
