"""SQLite: an organisation's outgoing webhooks."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from typing import Any

from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.models import OutgoingWebhook
from edge_onboard.storage.paging import Page, Window
from edge_onboard.storage.sqlite.connection import SQLiteBase
from edge_onboard.storage.sqlite.paging import Arm
from edge_onboard.storage.sqlite.rows import insert_webhook as _insert_webhook


class WebhookStore(SQLiteBase):
    # Outgoing webhooks

    async def insert_webhook(self, webhook: OutgoingWebhook) -> None:
        await self._run(lambda c: _insert_webhook(c, webhook))

    async def get_webhook(self, webhook_id: str) -> OutgoingWebhook | None:
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        )
        return OutgoingWebhook.from_doc(_load(row[0])) if row else None

    async def get_webhooks(self, webhook_ids: Collection[str]) -> list[OutgoingWebhook]:
        docs = await self._docs_by_id("webhooks", webhook_ids)
        return [OutgoingWebhook.from_doc(doc) for doc in docs]

    async def list_webhooks(
        self, org_id: str, window: Window, *, livemode: bool
    ) -> Page[OutgoingWebhook]:
        arms = [Arm("org_id = ? AND livemode = ? AND deleted = 0", [org_id, int(livemode)])]
        return await self._page("webhooks", arms, window, OutgoingWebhook.from_doc)

    async def active_webhooks(self, org_id: str, *, livemode: bool) -> list[OutgoingWebhook]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM webhooks WHERE org_id = ? AND livemode = ? AND deleted = 0"
                " AND status = 'active'",
                (org_id, int(livemode)),
            ).fetchall()
        )
        return [OutgoingWebhook.from_doc(_load(r[0])) for r in rows]

    async def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        changes: Mapping[str, Any],
        *,
        expect_secret_enc: str | None = None,
    ) -> OutgoingWebhook | None:
        def op(c: sqlite3.Connection) -> OutgoingWebhook | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT doc FROM webhooks WHERE id = ? AND org_id = ? AND deleted = 0",
                (webhook_id, org_id),
            ).fetchone()
            doc = _load(row[0]) if row else None
            if doc is None or (
                expect_secret_enc is not None and doc["secret_enc"] != expect_secret_enc
            ):
                c.execute("COMMIT")
                return None
            doc.update(changes)
            webhook = OutgoingWebhook.from_doc(doc)
            c.execute(
                "UPDATE webhooks SET status = ?, deleted = ?, doc = ? WHERE id = ?",
                (
                    webhook.status.value,
                    int(webhook.deleted_at is not None),
                    _dump(webhook.to_doc()),
                    webhook_id,
                ),
            )
            c.execute("COMMIT")
            return webhook

        return await self._run(op)
