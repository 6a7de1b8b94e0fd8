"""SQLite: phone numbers, WABAs, and the partner grants that bring WABAs in."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.models import Delivery, Event, PartnerGrant, Phone, PhoneStatus, Waba
from edge_onboard.storage.paging import Page, Window, page_of
from edge_onboard.storage.sqlite.connection import SQLiteBase
from edge_onboard.storage.sqlite.paging import Arm
from edge_onboard.storage.sqlite.rows import insert_event as _insert_event
from edge_onboard.storage.sqlite.rows import phone_by_meta_id as _phone_by_meta_id
from edge_onboard.storage.sqlite.rows import put_grant as _put_grant
from edge_onboard.storage.sqlite.rows import put_phone as _put_phone
from edge_onboard.storage.sqlite.rows import transaction as _transaction


class PhoneStore(SQLiteBase):
    # Phone numbers, WABAs and partner grants

    async def put_grant(self, grant: PartnerGrant) -> None:
        await self._run(lambda c: _put_grant(c, grant))

    async def open_grants(self, now: datetime, limit: int) -> list[PartnerGrant]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM grants WHERE closed = 0 ORDER BY received_at LIMIT ?", (limit * 4,)
            ).fetchall()
        )
        grants = [PartnerGrant.from_doc(_load(r[0])) for r in rows]
        return [g for g in grants if g.retry_at is None or g.retry_at <= now][:limit]

    async def update_grant(self, grant_id: str, changes: Mapping[str, Any]) -> None:
        def op(c: sqlite3.Connection) -> None:
            with _transaction(c):
                row = c.execute("SELECT doc FROM grants WHERE id = ?", (grant_id,)).fetchone()
                if row is not None:
                    doc = _load(row[0])
                    doc.update(changes)
                    _put_grant(c, PartnerGrant.from_doc(doc))

        await self._run(op)

    async def wabas_by_meta_id(self, meta_waba_id: str) -> list[Waba]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM wabas WHERE meta_waba_id = ?", (meta_waba_id,)
            ).fetchall()
        )
        return [Waba.from_doc(_load(r[0])) for r in rows]

    async def update_waba(
        self,
        waba_id: str,
        changes: Mapping[str, Any],
        *,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Waba | None:
        def op(c: sqlite3.Connection) -> Waba | None:
            with _transaction(c):
                row = c.execute("SELECT doc FROM wabas WHERE id = ?", (waba_id,)).fetchone()
                if row is None:
                    return None
                doc = _load(row[0])
                doc.update(changes)
                waba = Waba.from_doc(doc)
                c.execute("UPDATE wabas SET doc = ? WHERE id = ?", (_dump(waba.to_doc()), waba.id))
                if event is not None:
                    _insert_event(c, event, deliveries)
                return waba

        return await self._run(op)

    async def find_phone_by_meta_id(self, org_id: str, meta_phone_number_id: str) -> Phone | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM phones WHERE org_id = ? AND meta_phone_number_id = ?",
                (org_id, meta_phone_number_id),
            ).fetchone()
        )
        return Phone.from_doc(_load(row[0])) if row else None

    async def phones_by_meta_id(self, meta_phone_number_id: str) -> list[Phone]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM phones WHERE meta_phone_number_id = ?", (meta_phone_number_id,)
            ).fetchall()
        )
        return [Phone.from_doc(_load(r[0])) for r in rows]

    async def get_phone(self, phone_id: str) -> Phone | None:
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM phones WHERE id = ?", (phone_id,)).fetchone()
        )
        return Phone.from_doc(_load(row[0])) if row else None

    async def list_phones(self, org_id: str, window: Window, *, livemode: bool) -> Page[Phone]:
        arms = [Arm("org_id = ? AND livemode = ?", [org_id, int(livemode)])]
        return await self._page("phones", arms, window, Phone.from_doc)

    async def get_waba(self, waba_id: str) -> Waba | None:
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM wabas WHERE id = ?", (waba_id,)).fetchone()
        )
        return Waba.from_doc(_load(row[0])) if row else None

    async def list_wabas(self, org_id: str, window: Window, *, livemode: bool) -> Page[Waba]:
        # An organisation has a handful of WABAs: no index in list order (no created_at
        # column), so they are windowed here.
        rows = await self._read(
            lambda c: c.execute(
                "SELECT doc FROM wabas WHERE org_id = ? AND livemode = ?", (org_id, int(livemode))
            ).fetchall()
        )
        wabas = sorted(
            (Waba.from_doc(_load(r[0])) for r in rows),
            key=lambda w: (w.created_at, w.id),
            reverse=True,
        )
        return page_of(wabas, window, lambda w: (w.created_at, w.id))

    async def phones_of_wabas(self, waba_ids: Sequence[str]) -> list[Phone]:
        if not waba_ids:
            return []
        marks = ",".join("?" * len(waba_ids))
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT doc FROM phones WHERE json_extract(doc, '$.waba_id') IN ({marks})",
                tuple(waba_ids),
            ).fetchall()
        )
        return [Phone.from_doc(_load(r[0])) for r in rows]

    async def insert_phone(
        self, phone: Phone, event: Event | None = None, deliveries: Sequence[Delivery] = ()
    ) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                if _phone_by_meta_id(c, phone.org_id, phone.meta_phone_number_id) is not None:
                    return False
                _put_phone(c, phone, replace=False)
                if event is not None:
                    _insert_event(c, event, deliveries)
                return True

        return await self._run(op)

    async def update_phone(
        self,
        phone_id: str,
        changes: Mapping[str, Any],
        *,
        statuses: Collection[PhoneStatus] | None = None,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Phone | None:
        def op(c: sqlite3.Connection) -> Phone | None:
            with _transaction(c):
                row = c.execute("SELECT doc FROM phones WHERE id = ?", (phone_id,)).fetchone()
                phone = Phone.from_doc(_load(row[0])) if row else None
                if phone is None or (statuses is not None and phone.status not in statuses):
                    return None
                doc = phone.to_doc()
                doc.update(changes)
                updated = Phone.from_doc(doc)
                _put_phone(c, updated, replace=True)
                if event is not None:
                    _insert_event(c, event, deliveries)
                return updated

        return await self._run(op)
