"""The delivery queue contract, in-process and on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest
from redis.asyncio import Redis

from edge_onboard.queue import DeliveryQueue
from edge_onboard.queue.memory import MemoryQueue
from edge_onboard.queue.redis import RedisQueue
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
LEASE = timedelta(seconds=30)


@pytest.fixture(params=["memory", "redis"])
async def queue(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[DeliveryQueue]:
    if request.param == "memory":
        yield MemoryQueue()
        return
    url = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)
    await client.flushdb()  # the test server is ours; keys are fixed names
    await client.aclose()
    redis_queue = RedisQueue.from_url(url)
    yield redis_queue
    await redis_queue.close()


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


def test_keys_share_one_cluster_slot() -> None:
    from edge_onboard import redis_keys as keys

    for name in (
        keys.DUE,
        keys.INFLIGHT,
        keys.SWEEP_LOCK,
        keys.hot("link", "x"),
        keys.rate_limit("k"),
    ):
        assert name.startswith("{edge}:")
