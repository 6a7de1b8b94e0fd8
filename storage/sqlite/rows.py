"""Rows of the SQLite backend: the queried columns beside each record's JSON document,
and the writes several of its methods share (storage/sqlite/)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import (
    Delivery,
    Event,
    OnboardingLink,
    OutgoingWebhook,
    PartnerGrant,
    Phone,
)
from edge_onboard.storage.sqlite import events as sqlite_events


def link_row(link: OnboardingLink) -> tuple[str, str, str, str | None, int, int, str, int]:
    return (
        link.id,
        link.org_id,
        link.status.value,
        link.external_id,
        _ms(link.created_at),
        _ms(link.expires_at),
        _dump(link.to_doc()),
        int(link.livemode),
    )


def insert_webhook(c: sqlite3.Connection, webhook: OutgoingWebhook) -> None:
    c.execute(
        "INSERT INTO webhooks (id, org_id, status, deleted, created_at, doc, livemode)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            webhook.id,
            webhook.org_id,
            webhook.status.value,
            int(webhook.deleted_at is not None),
            _ms(webhook.created_at),
            _dump(webhook.to_doc()),
            int(webhook.livemode),
        ),
    )


def delivery_row(d: Delivery) -> tuple[str, str, str, int, int | None, int, str]:
    return (
        d.id,
        d.webhook_id,
        d.status.value,
        d.attempts,
        _ms(d.next_attempt_at) if d.next_attempt_at else None,
        _ms(d.created_at),
        _dump(d.to_doc()),
    )


def update_delivery(
    c: sqlite3.Connection, delivery: Delivery, changes: Mapping[str, Any]
) -> Delivery:
    """Write ``changes`` to a delivery read in the same transaction; the updated record."""
    doc = delivery.to_doc()
    doc.update(changes)
    updated = Delivery.from_doc(doc)
    c.execute(
        "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, doc = ? WHERE id = ?",
        (*delivery_row(updated)[2:5], _dump(updated.to_doc()), updated.id),
    )
    return updated


@contextlib.contextmanager
def transaction(c: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")


def put_grant(c: sqlite3.Connection, grant: PartnerGrant) -> None:
    c.execute(
        "INSERT OR REPLACE INTO grants (id, closed, received_at, doc) VALUES (?, ?, ?, ?)",
        (grant.id, int(grant.closed_at is not None), _ms(grant.received_at), _dump(grant.to_doc())),
    )


def phone_by_meta_id(c: sqlite3.Connection, org_id: str, meta_phone_id: str) -> Phone | None:
    row = c.execute(
        "SELECT doc FROM phones WHERE org_id = ? AND meta_phone_number_id = ?",
        (org_id, meta_phone_id),
    ).fetchone()
    return Phone.from_doc(_load(row[0])) if row else None


def put_phone(c: sqlite3.Connection, phone: Phone, *, replace: bool) -> None:
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    c.execute(
        f"{verb} INTO phones (id, org_id, meta_phone_number_id, created_at, doc, livemode)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            phone.id,
            phone.org_id,
            phone.meta_phone_number_id,
            _ms(phone.created_at),
            _dump(phone.to_doc()),
            int(phone.livemode),
        ),
    )


def insert_event(c: sqlite3.Connection, event: Event, deliveries: Sequence[Delivery]) -> None:
    sqlite_events.insert_event_row(c, event)
    c.executemany(
        "INSERT INTO deliveries"
        " (id, webhook_id, status, attempts, next_attempt_at, created_at, doc, event_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*delivery_row(d), d.event_id) for d in deliveries],
    )
