"""SQLite: events and their deliveries to outgoing webhooks."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from edge_onboard.storage.base import EventFilter
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import Delivery, Event
from edge_onboard.storage.paging import Key, Page, Window
from edge_onboard.storage.sqlite import events as sqlite_events
from edge_onboard.storage.sqlite.connection import SQLiteBase
from edge_onboard.storage.sqlite.paging import Arm
from edge_onboard.storage.sqlite.rows import insert_event as _insert_event
from edge_onboard.storage.sqlite.rows import update_delivery as _update_delivery


class EventStore(SQLiteBase):
    # Events and deliveries

    async def record_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            _insert_event(c, event, deliveries)
            c.execute("COMMIT")

        await self._run(op)

    async def get_event(self, event_id: str) -> Event | None:
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM events WHERE id = ?", (event_id,)).fetchone()
        )
        return Event.from_doc(_load(row[0])) if row else None

    async def list_events(self, org_id: str, flt: EventFilter, window: Window) -> Page[Event]:
        arms = sqlite_events.event_arms(org_id, flt)
        if not arms:
            return Page([], False, 0)
        return await self._page("events", arms, window, Event.from_doc)

    async def delete_events_before(self, before: datetime, limit: int) -> int:
        return await self._run(lambda c: sqlite_events.delete_events_before(c, before, limit))

    async def failed_deliveries(
        self, webhook_id: str, since: datetime, until: datetime, after: Key | None, limit: int
    ) -> list[Delivery]:
        docs = await self._read(
            lambda c: sqlite_events.failed_delivery_docs(c, webhook_id, since, until, after, limit)
        )
        return [Delivery.from_doc(doc) for doc in docs]

    async def requeue_failed(
        self, delivery_ids: Collection[str], failed_by: datetime, recovery_id: str, now: datetime
    ) -> list[Delivery]:
        return await self._run(
            lambda c: sqlite_events.requeue_failed(c, delivery_ids, failed_by, recovery_id, now)
        )

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        )
        return Delivery.from_doc(_load(row[0])) if row else None

    async def get_events(self, event_ids: Collection[str]) -> list[Event]:
        return [Event.from_doc(doc) for doc in await self._docs_by_id("events", event_ids)]

    async def get_deliveries(self, delivery_ids: Collection[str]) -> list[Delivery]:
        docs = await self._docs_by_id("deliveries", delivery_ids)
        return [Delivery.from_doc(doc) for doc in docs]

    async def list_deliveries(self, webhook_id: str, window: Window) -> Page[Delivery]:
        arms = [Arm("webhook_id = ?", [webhook_id])]
        return await self._page("deliveries", arms, window, Delivery.from_doc)

    async def update_delivery(
        self, delivery_id: str, changes: Mapping[str, Any], *, expect_attempts: int | None = None
    ) -> Delivery | None:
        def op(c: sqlite3.Connection) -> Delivery | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute("SELECT doc FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
            delivery = Delivery.from_doc(_load(row[0])) if row else None
            if delivery is None or (
                expect_attempts is not None and delivery.attempts != expect_attempts
            ):
                c.execute("COMMIT")
                return None
            updated = _update_delivery(c, delivery, changes)
            c.execute("COMMIT")
            return updated

        return await self._run(op)

    async def finish_deliveries(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any]]]
    ) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            for delivery_id, attempts, changes in updates:
                row = c.execute(
                    "SELECT doc FROM deliveries WHERE id = ?", (delivery_id,)
                ).fetchone()
                delivery = Delivery.from_doc(_load(row[0])) if row else None
                if delivery is None or delivery.attempts != attempts:
                    continue
                _update_delivery(c, delivery, changes)
            c.execute("COMMIT")

        await self._run(op)

    async def due_deliveries(self, before: datetime, limit: int) -> list[Delivery]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (_ms(before), limit),
            ).fetchall()
        )
        return [Delivery.from_doc(_load(r[0])) for r in rows]
