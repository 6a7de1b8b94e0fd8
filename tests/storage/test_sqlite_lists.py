"""SQLite lists: each statement an index range in list order, and reads beside the writer."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from edge_onboard.storage import LinkFilter, LinkStatus
from edge_onboard.storage.paging import Window
from edge_onboard.storage.sqlite import SQLiteStorage
from tests.conftest import FakeClock
from tests.storage.test_contract import make_link

pytestmark = pytest.mark.anyio


async def _store(tmp_path: Path, clock: FakeClock, count: int = 30) -> SQLiteStorage:
    store = SQLiteStorage(tmp_path / "edge.db")
    await store.open()
    for i in range(count):
        expires = clock() + (timedelta(seconds=1) if i % 3 == 0 else timedelta(days=1))
        await store.insert_link(make_link(clock, external_id=f"e{i % 2}", expires_at=expires))
        clock.advance(milliseconds=1)
    return store


async def test_every_list_statement_reads_an_index_range_in_order(tmp_path: Path) -> None:
    clock = FakeClock()
    store = await _store(tmp_path, clock)
    clock.advance(seconds=5)
    first = (await store.list_links("org-1", LinkFilter(), Window(5))).items[2]
    key = (first.created_at, first.id)
    statements: list[str] = []
    readers = [store._readers.get_nowait() for _ in range(store._reader_count)]
    for reader in readers:
        reader.set_trace_callback(statements.append)
        store._readers.put(reader)
    now = clock()
    for status in (None, *LinkStatus):
        for external_id in (None, "e1"):
            flt = LinkFilter(status=status, external_id=external_id, as_of=now)
            for window in (
                Window(5),
                Window(5, offset=7),
                Window(5, after=key),
                Window(5, before=key),
            ):
                await store.list_links("org-1", flt, window)
    for reader in readers:
        reader.set_trace_callback(None)
    assert statements
    plans = sqlite3.connect(str(tmp_path / "edge.db"))
    for sql in set(statements):
        searched = ""
        for *_, step in plans.execute(f"EXPLAIN QUERY PLAN {sql}"):
            assert not step.startswith("SCAN links"), (sql, step)
            if step.startswith("SEARCH"):
                searched = step
            # Only the past-due arm (few rows) may be sorted; every other is read in order.
            assert "TEMP B-TREE" not in step or "links_org_due" in searched, (sql, step)
    await store.close()


async def test_lists_and_gets_do_not_wait_for_the_writer(tmp_path: Path) -> None:
    clock = FakeClock()
    store = await _store(tmp_path, clock, count=5)
    link = make_link(clock)
    await store.insert_link(link)
    busy, release = threading.Event(), threading.Event()

    def hold(c: sqlite3.Connection) -> None:
        c.execute("BEGIN IMMEDIATE")
        busy.set()
        release.wait(10)
        c.execute("COMMIT")

    async with anyio.create_task_group() as tg:
        tg.start_soon(store._run, hold)
        await anyio.to_thread.run_sync(busy.wait, 5)
        with anyio.fail_after(5):  # the shared connection is held until release
            page = await store.list_links("org-1", LinkFilter(), Window(3))
            got = await store.get_link(link.id)
        assert len(page.items) == 3 and got == link
        release.set()
    await store.close()
