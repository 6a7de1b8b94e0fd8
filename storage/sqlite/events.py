"""SQLite side of the events API: the event list's arms, the retention sweep and the
failed deliveries a recovery re-sends (storage/sqlite/deliveries.py calls these on its connection).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import Any

from edge_onboard.storage.base import EventFilter, requeued
from edge_onboard.storage.codec import dump_doc, load_doc, ms
from edge_onboard.storage.models import Delivery, DeliveryStatus, Event
from edge_onboard.storage.paging import Key
from edge_onboard.storage.sqlite.paging import Arm

# Schema version that adds what these read (storage/sqlite/schema.py's MIGRATIONS entry).
MIGRATION = """
    ALTER TABLE events ADD COLUMN type TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN livemode INTEGER NOT NULL DEFAULT 1;
    UPDATE events SET type = json_extract(doc, '$.type'),
        created_at = json_extract(doc, '$.created_at."$date"'),
        livemode = coalesce(json_extract(doc, '$.livemode'), 1);
    ALTER TABLE deliveries ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
    UPDATE deliveries SET event_id = json_extract(doc, '$.event_id');
    CREATE INDEX events_org_list ON events (org_id, livemode, created_at DESC, id DESC);
    CREATE INDEX events_org_type_list
        ON events (org_id, livemode, type, created_at DESC, id DESC);
    CREATE INDEX events_created ON events (created_at, id);
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_webhook_failed ON deliveries (webhook_id, status, created_at, id);
"""
# Ids per ``IN (...)``, well under SQLite's limit on bound parameters.
_CHUNK = 500


def event_arms(org_id: str, flt: EventFilter) -> list[Arm]:
    """One arm per type (each an index range in list order, merged by the UNION ALL), or
    one over the organisation's events when any type goes."""
    bounds, params = "", list[Any]()
    if flt.created_gte is not None:
        bounds, params = bounds + " AND created_at >= ?", [*params, ms(flt.created_gte)]
    if flt.created_lte is not None:
        bounds, params = bounds + " AND created_at <= ?", [*params, ms(flt.created_lte)]
    scope = [org_id, int(flt.livemode)]
    if flt.types is None:
        return [Arm(f"org_id = ? AND livemode = ?{bounds}", [*scope, *params], "events_org_list")]
    return [
        Arm(
            f"org_id = ? AND livemode = ? AND type = ?{bounds}",
            [*scope, kind, *params],
            "events_org_type_list",
        )
        for kind in sorted(flt.types)
    ]


def insert_event_row(c: sqlite3.Connection, event: Event) -> None:
    c.execute(
        "INSERT INTO events (id, org_id, livemode, type, created_at, doc)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.org_id,
            int(event.livemode),
            event.type,
            ms(event.created_at),
            dump_doc(event.to_doc()),
        ),
    )


def delete_events_before(c: sqlite3.Connection, before: datetime, limit: int) -> int:
    """The oldest events first (events_created), their deliveries with them, in one
    transaction."""
    c.execute("BEGIN IMMEDIATE")
    ids = [
        row[0]
        for row in c.execute(
            "SELECT id FROM events INDEXED BY events_created WHERE created_at < ?"
            " ORDER BY created_at, id LIMIT ?",
            (ms(before), limit),
        )
    ]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        c.execute(f"DELETE FROM deliveries WHERE event_id IN ({marks})", chunk)
        c.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)
    c.execute("COMMIT")
    return len(ids)


def failed_delivery_docs(
    c: sqlite3.Connection,
    webhook_id: str,
    since: datetime,
    until: datetime,
    after: Key | None,
    limit: int,
) -> list[dict[str, Any]]:
    where = "webhook_id = ? AND status = 'failed' AND created_at >= ? AND created_at < ?"
    params: list[Any] = [webhook_id, ms(since), ms(until)]
    if after is not None:
        at = ms(after[0])
        where += " AND created_at >= ? AND (created_at > ? OR id > ?)"
        params += [at, at, after[1]]
    rows = c.execute(
        f"SELECT doc FROM deliveries INDEXED BY deliveries_webhook_failed WHERE {where}"
        " ORDER BY created_at, id LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [load_doc(row[0]) for row in rows]


def requeue_failed(
    c: sqlite3.Connection,
    delivery_ids: Collection[str],
    failed_by: datetime,
    recovery_id: str,
    now: datetime,
) -> list[Delivery]:
    """Each delivery checked and changed inside one write transaction: a racing call
    (another thread or process) waits for it and then finds them pending."""
    changed: list[Delivery] = []
    c.execute("BEGIN IMMEDIATE")
    for delivery_id in set(delivery_ids):
        row = c.execute("SELECT doc FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        delivery = Delivery.from_doc(load_doc(row[0])) if row else None
        if (
            delivery is None
            or delivery.status is not DeliveryStatus.FAILED
            or delivery.updated_at > failed_by
        ):
            continue
        doc = delivery.to_doc()
        doc.update(requeued(recovery_id, now))
        updated = Delivery.from_doc(doc)
        c.execute(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, doc = ? WHERE id = ?",
            (updated.status.value, ms(now), dump_doc(updated.to_doc()), delivery_id),
        )
        changed.append(updated)
    c.execute("COMMIT")
    return changed
