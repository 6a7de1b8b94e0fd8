"""The inbox every backend keeps for Meta's inbound: one write per body, leases that
lapse, sweepers racing for what lapsed; and events written again after a writer died
between an event and its deliveries."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from edge_onboard.storage import DuplicateError, InboxItem, Storage
from edge_onboard.storage.mongo import MongoStorage
from tests.conftest import FakeClock
from tests.storage.test_contract import _event

pytestmark = pytest.mark.anyio


def item(clock: FakeClock, ident: str, lease: float = 15, body: bytes = b"{}") -> InboxItem:
    now = clock()
    return InboxItem(ident, body, None, now, now + timedelta(seconds=lease))


async def test_a_body_is_recorded_once_and_leased(storage: Storage, clock: FakeClock) -> None:
    body = bytes(range(256)) * 4  # any bytes, kept as they came
    first = InboxItem("a", body, True, clock(), clock() + timedelta(seconds=15))
    assert await storage.put_inbox(first)
    assert not await storage.put_inbox(item(clock, "a"))  # a retry of a body still there
    assert await storage.put_inbox(item(clock, "b", lease=5))
    now = clock()
    assert await storage.claim_inbox(now, now + timedelta(seconds=15), 10) == []  # leased
    later = now + timedelta(seconds=20)
    claimed = await storage.claim_inbox(later, later + timedelta(seconds=15), 10)
    assert [i.id for i in claimed] == ["b", "a"]  # the oldest lease first
    assert claimed[1].body == body and claimed[1].livemode is True
    assert claimed[1].lease_until == later + timedelta(seconds=15)
    assert await storage.claim_inbox(later, later + timedelta(seconds=15), 10) == []
    await storage.delete_inbox("a")
    much_later = later + timedelta(minutes=1)
    assert [i.id for i in await storage.claim_inbox(much_later, much_later, 10)] == ["b"]
    assert await storage.put_inbox(item(clock, "a"))  # processed: a new copy is new


async def test_racing_sweepers_each_take_an_item_once(storage: Storage, clock: FakeClock) -> None:
    for n in range(30):
        assert await storage.put_inbox(item(clock, f"i{n}", lease=0))
    taken: list[str] = []
    now = clock()

    async def sweeper() -> None:
        for _ in range(10):
            taken.extend(i.id for i in await storage.claim_inbox(now, now + timedelta(1), 4))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(sweeper)
    assert sorted(taken) == sorted(f"i{n}" for n in range(30))


async def test_an_event_written_again_gets_the_deliveries_it_lacked(
    storage: Storage, clock: FakeClock
) -> None:
    """A writer killed between an event and its deliveries: the retry of the same event
    reports the duplicate and leaves the event with its deliveries, once each."""
    event, deliveries = _event(clock, "org-1", "message.received")
    assert deliveries
    await storage.record_event(event, [])  # what the killed writer got to write
    with pytest.raises(DuplicateError):
        await storage.record_event(event, deliveries)
    with pytest.raises(DuplicateError):
        await storage.record_event(event, deliveries)
    stored = await storage.get_deliveries([d.id for d in deliveries])
    if isinstance(storage, MongoStorage):  # two writes, no transaction: the retry repairs
        assert sorted(d.id for d in stored) == sorted(d.id for d in deliveries)
    else:  # one transaction: the event never stood without its deliveries
        assert stored == []
