"""SQLite: organisations, their API keys, and Idempotency-Key records."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import ApiKey, IdempotencyRecord, Organization
from edge_onboard.storage.sqlite.connection import SQLiteBase


class OrgStore(SQLiteBase):
    # Organisations

    async def get_or_create_org(self, org: Organization) -> Organization:
        def op(c: sqlite3.Connection) -> Organization:
            c.execute(
                "INSERT INTO orgs (id, name, doc) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (org.id, org.name, _dump(org.to_doc())),
            )
            row = c.execute("SELECT doc FROM orgs WHERE name = ?", (org.name,)).fetchone()
            return Organization.from_doc(_load(row[0]))

        return await self._run(op)

    async def get_org(self, org_id: str) -> Organization | None:
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM orgs WHERE id = ?", (org_id,)).fetchone()
        )
        return Organization.from_doc(_load(row[0])) if row else None

    async def update_org(self, org_id: str, changes: Mapping[str, Any]) -> Organization | None:
        def op(c: sqlite3.Connection) -> Organization | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute("SELECT doc FROM orgs WHERE id = ?", (org_id,)).fetchone()
            if row is None:
                return None
            org = dataclasses.replace(Organization.from_doc(_load(row[0])), **changes)
            c.execute("UPDATE orgs SET doc = ? WHERE id = ?", (_dump(org.to_doc()), org_id))
            c.execute("COMMIT")
            return org

        return await self._run(op)

    # API keys

    async def insert_api_key(self, key: ApiKey) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO api_keys (id, key_hash, prefix, doc) VALUES (?, ?, ?, ?)",
                (key.id, key.key_hash, key.prefix, _dump(key.to_doc())),
            )
        )

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT doc FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        )
        return ApiKey.from_doc(_load(row[0])) if row else None

    async def find_api_keys(self, id_or_prefix: str) -> list[ApiKey]:
        escaped = id_or_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM api_keys WHERE id = ? OR prefix LIKE ? ESCAPE '\\'",
                (id_or_prefix, escaped + "%"),
            ).fetchall()
        )
        return [ApiKey.from_doc(_load(r[0])) for r in rows]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute("SELECT doc FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                c.execute("COMMIT")
                return False
            key = ApiKey.from_doc(_load(row[0]))
            if key.revoked_at is not None:
                c.execute("COMMIT")
                return False
            key.revoked_at = at
            c.execute("UPDATE api_keys SET doc = ? WHERE id = ?", (_dump(key.to_doc()), key_id))
            c.execute("COMMIT")
            return True

        return await self._run(op)

    # Idempotency

    async def claim_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        def op(c: sqlite3.Connection) -> IdempotencyRecord | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT doc, expires_at FROM idempotency WHERE org_id = ? AND key = ?",
                (record.org_id, record.key),
            ).fetchone()
            if row is not None:
                existing = IdempotencyRecord.from_doc(_load(row[0]))
                if existing.holds_key(record.created_at):
                    c.execute("COMMIT")
                    return existing
            c.execute(
                "INSERT OR REPLACE INTO idempotency (org_id, key, expires_at, doc)"
                " VALUES (?, ?, ?, ?)",
                (record.org_id, record.key, _ms(record.expires_at), _dump(record.to_doc())),
            )
            # Expired records are only ever replaced or swept here, a few at a time.
            c.execute(
                "DELETE FROM idempotency WHERE rowid IN"
                " (SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT 100)",
                (_ms(record.created_at),),
            )
            c.execute("COMMIT")
            return None

        return await self._run(op)

    async def complete_idempotency(
        self, org_id: str, key: str, status_code: int, body: bytes
    ) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT doc FROM idempotency WHERE org_id = ? AND key = ?", (org_id, key)
            ).fetchone()
            if row is not None:
                record = IdempotencyRecord.from_doc(_load(row[0]))
                record.status_code = status_code
                record.body = body
                c.execute(
                    "UPDATE idempotency SET doc = ? WHERE org_id = ? AND key = ?",
                    (_dump(record.to_doc()), org_id, key),
                )
            c.execute("COMMIT")

        await self._run(op)

    async def release_idempotency(self, org_id: str, key: str) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM idempotency WHERE org_id = ? AND key = ?", (org_id, key)
            )
        )
