"""Group commit (edge_onboard/storage/batch.py): one flush per burst, one outcome each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient

from edge_onboard.storage import StorageError
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.mongo import MongoStorage
from tests.conftest import FakeClock
from tests.live import free_port
from tests.storage.test_contract import make_link

pytestmark = pytest.mark.anyio


class Store:
    def __init__(self, *, fail_all: bool = False) -> None:
        self.flushes: list[list[int]] = []
        self.fail_all = fail_all

    async def flush(self, items: Sequence[int]) -> list[int | Exception]:
        self.flushes.append(list(items))
        await anyio.sleep(0.01)  # a round trip
        if self.fail_all:
            raise ConnectionError("down")
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_a_burst_is_one_flush_and_each_caller_gets_its_own_outcome() -> None:
    store = Store()
    batcher = Coalescer(store.flush)
    results: dict[int, object] = {}

    async def call(i: int) -> None:
        try:
            results[i] = await batcher.submit(i)
        except ValueError as exc:
            results[i] = str(exc)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(call, i)
    assert store.flushes == [[0, 1, 2, 3, 4, 5]]
    assert results == {0: 0, 1: "odd 1", 2: 20, 3: "odd 3", 4: 40, 5: "odd 5"}
    # Alone, a write goes out at once, in a batch of its own.
    assert await batcher.submit(8) == 80
    assert store.flushes[-1] == [8]


async def test_batches_are_capped() -> None:
    store = Store()
    batcher = Coalescer(store.flush, max_size=4)
    async with anyio.create_task_group() as tg:
        for i in range(0, 20, 2):
            tg.start_soon(batcher.submit, i)
    assert [len(f) for f in store.flushes] == [4, 4, 2]


async def test_a_failed_flush_fails_every_caller_of_that_batch() -> None:
    batcher = Coalescer(Store(fail_all=True).flush)
    errors: list[str] = []

    async def call(i: int) -> None:
        try:
            await batcher.submit(i)
        except ConnectionError as exc:
            errors.append(str(exc))

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(call, i)
    assert errors == ["down"] * 3


async def test_a_cancelled_leader_still_writes_for_the_others() -> None:
    store = Store()
    batcher = Coalescer(store.flush)
    follower: list[int] = []

    async def follow() -> None:
        follower.append(await batcher.submit(4))

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as leader_scope:
            tg.start_soon(follow)  # joins the batch the leader opens below
            leader_scope.cancel()
            await batcher.submit(2)  # the leader: its own request is gone
    assert store.flushes == [[2, 4]]
    assert follower == [40]


async def test_batched_mongodb_writes_fail_cleanly_when_mongodb_is_unreachable() -> None:
    """Nothing listens on the port: every create in the burst gets StorageError (503 in
    the API), promptly, none hangs on the batch."""
    port = free_port()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/edge")
    store = MongoStorage(client=client, write_timeout=0.3)
    outcomes: list[str] = []

    async def create() -> None:
        try:
            await store.insert_link(make_link(FakeClock()))
        except StorageError:
            outcomes.append("storage error")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(create)
    assert outcomes == ["storage error"] * 10
    await client.close()
