"""The events API's storage, the same on every backend: the event list (types, time
range, windows), the retention sweep, and the failed deliveries a recovery takes."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest

from edge_onboard.storage import (
    Delivery,
    DeliveryStatus,
    Event,
    EventFilter,
    Storage,
)
from edge_onboard.storage.codec import dump_doc, ms
from edge_onboard.storage.mongo import MongoStorage
from edge_onboard.storage.mongo import events as mongo_events
from edge_onboard.storage.paging import Key, Window, page_of
from edge_onboard.storage.sqlite import SQLiteStorage
from edge_onboard.storage.sqlite import events as sqlite_events
from edge_onboard.storage.sqlite.schema import MIGRATIONS
from tests.conftest import FakeClock, open_storage

pytestmark = pytest.mark.anyio

TYPES = ("message.received", "message.sent", "phone_number.connected", "waba.updated")


def event(clock: FakeClock, org_id: str, kind: str) -> Event:
    return Event(
        id="evt_" + uuid.uuid4().hex, org_id=org_id, type=kind, data={"k": kind}, created_at=clock()
    )


def delivery(
    event: Event,
    webhook_id: str = "wh-1",
    status: DeliveryStatus = DeliveryStatus.FAILED,
    updated_at: datetime | None = None,
) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        org_id=event.org_id,
        event_id=event.id,
        webhook_id=webhook_id,
        event_type=event.type,
        status=status,
        attempts=10 if status is DeliveryStatus.FAILED else 0,
        next_attempt_at=None if status is DeliveryStatus.FAILED else event.created_at,
        created_at=event.created_at,
        updated_at=updated_at or event.created_at,
    )


async def record_many(storage: Storage, clock: FakeClock, count: int) -> list[Event]:
    """``count`` events of org-1 (and one of org-2 beside each third), some sharing their
    millisecond: newest first, as lists are."""
    events: list[Event] = []
    for i in range(count):
        e = event(clock, "org-1", TYPES[i % len(TYPES)])
        await storage.record_event(e, [delivery(e)])
        events.append(e)
        if i % 3 == 0:
            await storage.record_event(event(clock, "org-2", TYPES[0]), [])
        if i % 4 != 1:  # every fourth pair shares its created_at
            clock.advance(seconds=1)
    events.sort(key=lambda e: (e.created_at, e.id), reverse=True)
    return events


def key(e: Event) -> Key:
    return (e.created_at, e.id)


async def test_event_lists_agree_with_the_reference_every_way(
    storage: Storage, clock: FakeClock
) -> None:
    events = await record_many(storage, clock, 30)
    start = events[-1].created_at
    filters = [
        EventFilter(),
        EventFilter(types=frozenset({"message.received", "message.sent"})),
        EventFilter(types=frozenset({"waba.updated"})),
        EventFilter(types=frozenset({"contact.changed"})),
        EventFilter(created_gte=start + timedelta(seconds=5)),
        EventFilter(created_lte=start + timedelta(seconds=10)),
        EventFilter(
            types=frozenset({"message.received", "phone_number.connected"}),
            created_gte=start + timedelta(seconds=3),
            created_lte=start + timedelta(seconds=17),
        ),
    ]
    for flt in filters:
        matching = [e for e in events if flt.matches(e)]
        probe = matching[len(matching) // 2] if matching else events[4]
        for window in (
            Window(7),
            Window(7, offset=5),
            Window(7, after=key(probe)),
            Window(7, before=key(probe)),
            Window(100),
            Window(3, count_cap=4),
        ):
            got = await storage.list_events("org-1", flt, window)
            want = page_of(matching, window, key)
            assert [e.id for e in got.items] == [e.id for e in want.items], (flt, window)
            assert (got.has_more, got.total, got.total_is_estimate) == (
                want.has_more,
                want.total,
                want.total_is_estimate,
            ), (flt, window)
    other = await storage.list_events("org-2", EventFilter(), Window(100))
    assert {e.org_id for e in other.items} == {"org-2"} and other.total == 10
    assert (await storage.list_events("org-3", EventFilter(), Window(10))).items == []
    first = (await storage.list_events("org-1", EventFilter(), Window(1))).items[0]
    assert first == events[0]  # every field back as recorded


async def test_event_lists_are_of_one_mode(storage: Storage, clock: FakeClock) -> None:
    """Test-mode and live events of one organisation: each list is of its own mode, for
    every type filter (each an index range that starts with org and mode)."""
    made: dict[bool, list[str]] = {True: [], False: []}
    for i in range(8):
        livemode = i % 2 == 0
        e = dataclasses.replace(event(clock, "org-1", TYPES[i % 2]), livemode=livemode)
        await storage.record_event(e, [])
        made[livemode].insert(0, e.id)
        clock.advance(seconds=1)
    for livemode in (True, False):
        for types in (None, frozenset({TYPES[0]}), frozenset({TYPES[1]}), frozenset(TYPES[:2])):
            flt = EventFilter(livemode=livemode, types=types)
            got = await storage.list_events("org-1", flt, Window(100))
            assert {e.livemode for e in got.items} <= {livemode}, (livemode, types)
            assert [e.id for e in got.items] == [
                i for i in made[livemode] if types is None or i in {e.id for e in got.items}
            ]
        everything = await storage.list_events("org-1", EventFilter(livemode=livemode), Window(100))
        assert [e.id for e in everything.items] == made[livemode]


async def test_the_sweep_takes_the_oldest_with_their_deliveries(
    storage: Storage, clock: FakeClock
) -> None:
    old: list[Event] = []
    for i in range(5):
        old.append(e := event(clock, f"org-{i % 2}", TYPES[i % 4]))
        await storage.record_event(e, [delivery(e), delivery(e, "wh-2")])
        clock.advance(seconds=1)
    cutoff = clock()
    young = event(clock, "org-1", TYPES[0])
    young_delivery = delivery(young)
    await storage.record_event(young, [young_delivery])
    assert await storage.delete_events_before(cutoff, 3) == 3
    remaining = await storage.get_events([e.id for e in [*old, young]])
    assert {e.id for e in remaining} == {old[3].id, old[4].id, young.id}
    assert await storage.delete_events_before(cutoff, 3) == 2
    assert await storage.delete_events_before(cutoff, 3) == 0
    assert await storage.get_event(young.id) == young
    page = await storage.list_deliveries("wh-1", Window(10))
    assert [d.id for d in page.items] == [young_delivery.id]
    assert (await storage.list_deliveries("wh-2", Window(10))).items == []


async def test_failed_deliveries_in_a_window_oldest_first(
    storage: Storage, clock: FakeClock
) -> None:
    wanted: list[Delivery] = []
    for i in range(12):
        e = event(clock, "org-1", TYPES[0])
        failed = delivery(e)
        await storage.record_event(e, [failed, delivery(e, "wh-2")])
        sent = event(clock, "org-1", TYPES[1])
        await storage.record_event(sent, [delivery(sent, status=DeliveryStatus.SUCCEEDED)])
        if 2 <= i < 10:
            wanted.append(failed)
        if i % 3:
            clock.advance(seconds=1)
    wanted.sort(key=lambda d: (d.created_at, d.id))
    since, until = wanted[0].created_at, wanted[-1].created_at + timedelta(milliseconds=1)
    # The boundary instant of ``since`` holds a delivery not wanted when two share it.
    in_window = [
        d
        for d in await storage.failed_deliveries("wh-1", since, until, None, 100)
        if d.id in {w.id for w in wanted}
    ]
    assert [d.id for d in in_window] == [d.id for d in wanted]
    got: list[Delivery] = []
    after: Key | None = None
    while True:
        batch = await storage.failed_deliveries("wh-1", since, until, after, 3)
        got += batch
        if len(batch) < 3:
            break
        after = (batch[-1].created_at, batch[-1].id)
    everything = await storage.failed_deliveries("wh-1", since, until, None, 100)
    assert [d.id for d in got] == [d.id for d in everything]
    assert all(since <= d.created_at < until for d in everything)
    assert all(d.status is DeliveryStatus.FAILED and d.webhook_id == "wh-1" for d in everything)
    assert await storage.failed_deliveries("wh-3", since, until, None, 10) == []


async def test_requeue_takes_each_failed_delivery_once(storage: Storage, clock: FakeClock) -> None:
    deliveries: list[Delivery] = []
    for _ in range(20):
        e = event(clock, "org-1", TYPES[0])
        d = delivery(e)
        await storage.record_event(e, [d])
        deliveries.append(d)
    e = event(clock, "org-1", TYPES[0])
    pending = delivery(e, status=DeliveryStatus.PENDING)
    late = delivery(e, "wh-2", updated_at=clock() + timedelta(seconds=5))
    await storage.record_event(e, [pending, late])
    clock.advance(seconds=1)
    asked_at = clock()
    ids = [d.id for d in [*deliveries, pending, late]]
    results: dict[str, list[Delivery]] = {}

    async def recover(name: str) -> None:
        results[name] = await storage.requeue_failed(ids, asked_at, name, clock())

    async with anyio.create_task_group() as tg:
        for name in ("rcv_a", "rcv_b", "rcv_c"):
            tg.start_soon(recover, name)
    taken = [d.id for found in results.values() for d in found]
    # Each failed delivery went to exactly one recovery; the pending one and the one that
    # failed after the request stay as they were.
    assert sorted(taken) == sorted(d.id for d in deliveries)
    for name, found in results.items():
        for d in found:
            assert d.status is DeliveryStatus.PENDING and d.recovery_id == name
            assert d.next_attempt_at == clock() and d.attempts == 10
    stored = {d.id: d for d in await storage.get_deliveries(ids)}
    assert stored[late.id].status is DeliveryStatus.FAILED and stored[late.id].recovery_id is None
    assert stored[pending.id] == pending
    assert all(stored[d.id].status is DeliveryStatus.PENDING for d in deliveries)
    due = await storage.due_deliveries(clock(), 100)
    assert {d.id for d in deliveries} <= {d.id for d in due}
    assert await storage.requeue_failed(ids, asked_at, "rcv_d", clock()) == []


async def test_sqlite_event_statements_read_index_ranges_in_order(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStorage(tmp_path / "edge.db")
    await store.open()
    events = await record_many(store, clock, 20)
    probe = key(events[5])
    statements: list[str] = []
    readers = [store._readers.get_nowait() for _ in range(store._reader_count)]
    for reader in readers:
        reader.set_trace_callback(statements.append)
        store._readers.put(reader)
    start = events[-1].created_at
    for flt in (
        EventFilter(),
        EventFilter(types=frozenset(TYPES[:3])),
        EventFilter(types=frozenset(TYPES[:1]), created_gte=start, created_lte=clock()),
    ):
        for window in (
            Window(5),
            Window(5, offset=7),
            Window(5, after=probe),
            Window(5, before=probe),
        ):
            await store.list_events("org-1", flt, window)
    await store.failed_deliveries("wh-1", start, clock(), probe, 10)
    for reader in readers:
        reader.set_trace_callback(None)
    assert statements
    plans = sqlite3.connect(str(tmp_path / "edge.db"))
    for sql in set(statements):
        for *_, step in plans.execute(f"EXPLAIN QUERY PLAN {sql}"):
            assert not step.startswith("SCAN events"), (sql, step)
            assert not step.startswith("SCAN deliveries"), (sql, step)
            assert "TEMP B-TREE" not in step, (sql, step)
    plans.close()
    await store.close()


async def test_sqlite_upgrade_fills_the_new_columns_from_stored_events(tmp_path: Path) -> None:
    """A database written before the events API: its events list and sweep after open."""
    clock = FakeClock()
    path = tmp_path / "old.db"
    old = sqlite3.connect(str(path))
    before = MIGRATIONS[: MIGRATIONS.index(sqlite_events.MIGRATION)]
    for number, script in enumerate(before, start=1):
        old.executescript(script)
        old.execute(f"PRAGMA user_version = {number}")
    earlier = event(clock, "org-1", "waba.updated")
    clock.advance(seconds=1)
    later = event(clock, "org-1", "message.sent")
    for e in (earlier, later):
        d = delivery(e)
        old.execute(
            "INSERT INTO events (id, org_id, doc) VALUES (?, ?, ?)",
            (e.id, e.org_id, dump_doc(e.to_doc())),
        )
        old.execute(
            "INSERT INTO deliveries (id, webhook_id, status, attempts, next_attempt_at,"
            " created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                d.id,
                d.webhook_id,
                d.status.value,
                d.attempts,
                None,
                ms(d.created_at),
                dump_doc(d.to_doc()),
            ),
        )
    old.commit()
    old.close()
    store = SQLiteStorage(path)
    await store.open()
    page = await store.list_events("org-1", EventFilter(), Window(10))
    assert page.items == [later, earlier]
    typed = await store.list_events("org-1", EventFilter(types=frozenset({"waba.*"})), Window(10))
    assert typed.items == []  # storage takes exact types; the API expands patterns
    typed = await store.list_events(
        "org-1", EventFilter(types=frozenset({"waba.updated"})), Window(10)
    )
    assert typed.items == [earlier]
    assert await store.delete_events_before(later.created_at, 10) == 1
    assert [d.event_id for d in (await store.list_deliveries("wh-1", Window(10))).items] == [
        later.id
    ]
    await store.close()


async def test_mongodb_event_reads_are_index_ranges_in_order(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each branch of a list, and a recovery's read, examines at most the documents it
    returns (plus one): no collection scan, no sort in memory, whatever the table holds."""
    clock = FakeClock()
    async with open_storage("mongodb", tmp_path, request) as store:
        assert isinstance(store, MongoStorage)
        events = await record_many(store, clock, 60)
        at = events[20].created_at
        flt = EventFilter(types=frozenset(TYPES[:2]), created_gte=events[-1].created_at)
        for query, hint in [
            *mongo_events.event_branches("org-1", flt),
            *mongo_events.event_branches("org-1", EventFilter()),
        ]:
            for bound in ({}, {"created_at": {"$lte": at}}):
                plan = await (
                    store.events.find({"$and": [query, bound]})
                    .sort([("created_at", -1), ("_id", -1)])
                    .hint(list(hint or []))
                    .limit(5)
                    .explain()
                )
                assert "SORT" not in str(plan["queryPlanner"]["winningPlan"]), plan
                assert plan["executionStats"]["totalDocsExamined"] <= 5, plan
        plan = await (
            store.deliveries.find(
                {
                    "webhook_id": "wh-1",
                    "status": "failed",
                    "created_at": {"$gte": events[-1].created_at, "$lt": clock()},
                }
            )
            .sort([("created_at", 1), ("_id", 1)])
            .hint(mongo_events.DELIVERIES_FAILED)
            .limit(5)
            .explain()
        )
        assert "SORT" not in str(plan["queryPlanner"]["winningPlan"]), plan
        assert plan["executionStats"]["totalDocsExamined"] <= 5, plan
