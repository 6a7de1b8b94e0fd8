"""SQLite: onboarding links, their sweep to expired, and the completion that closes one."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge_onboard.storage.base import Completed, Completion, LinkCondition, LinkFilter
from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import LinkStatus, OnboardingLink, Waba
from edge_onboard.storage.paging import Page, Window
from edge_onboard.storage.sqlite.connection import SQLiteBase
from edge_onboard.storage.sqlite.paging import Arm
from edge_onboard.storage.sqlite.rows import insert_event as _insert_event
from edge_onboard.storage.sqlite.rows import insert_webhook as _insert_webhook
from edge_onboard.storage.sqlite.rows import link_row as _link_row
from edge_onboard.storage.sqlite.rows import phone_by_meta_id as _phone_by_meta_id
from edge_onboard.storage.sqlite.rows import put_phone as _put_phone
from edge_onboard.storage.sqlite.rows import transaction as _transaction


class LinkStore(SQLiteBase):
    # Onboarding links

    async def insert_link(self, link: OnboardingLink) -> None:
        await self._link_inserts.submit(_link_row(link))

    async def get_link(self, link_id: str) -> OnboardingLink | None:
        row = await self._read(
            lambda c: c.execute("SELECT doc FROM links WHERE id = ?", (link_id,)).fetchone()
        )
        return OnboardingLink.from_doc(_load(row[0])) if row else None

    async def list_links(
        self, org_id: str, flt: LinkFilter, window: Window
    ) -> Page[OnboardingLink]:
        scope, params = "org_id = ? AND livemode = ?", [org_id, int(flt.livemode)]
        if flt.external_id is not None:
            scope, params = scope + " AND external_id = ?", [*params, flt.external_id]
        arms: list[Arm]
        if flt.status is None:
            arms = [Arm(f"{scope} AND status != 'deleted'", params)]
        elif flt.as_of is None or flt.status is LinkStatus.COMPLETED:
            arms = [Arm(f"{scope} AND status = ?", [*params, flt.status.value])]
        else:
            # Past due: read by links_org_due (few rows: the sweep stores them as expired),
            # the doc only for them; a link claimed by a completion is still pending.
            at = _ms(flt.as_of)
            due = f"{scope} AND status = 'pending' AND expires_at <= ?"
            claimed = f"json_extract(doc, '$.claimed_until.\"$date\"') > {at:d}"
            ordered = "links_org_external_list" if flt.external_id else "links_org_status_list"
            if flt.status is LinkStatus.PENDING:
                arms = [
                    Arm(
                        f"{scope} AND status = 'pending' AND expires_at > ?", [*params, at], ordered
                    ),
                    Arm(f"{due} AND {claimed}", [*params, at], "links_org_due"),
                ]
            else:  # expired, stored or not yet
                arms = [
                    Arm(f"{scope} AND status = 'expired'", params, ordered),
                    Arm(f"{due} AND NOT coalesce({claimed}, 0)", [*params, at], "links_org_due"),
                ]
        return await self._page("links", arms, window, OnboardingLink.from_doc)

    async def update_link(
        self,
        org_id: str,
        link_id: str,
        condition: LinkCondition,
        changes: Mapping[str, Any],
    ) -> OnboardingLink | None:
        def op(c: sqlite3.Connection) -> OnboardingLink | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT doc FROM links WHERE id = ? AND org_id = ?", (link_id, org_id)
            ).fetchone()
            link = OnboardingLink.from_doc(_load(row[0])) if row else None
            if link is None or not condition.holds(link):
                c.execute("COMMIT")
                return None
            doc = link.to_doc()
            doc.update(changes)
            updated = OnboardingLink.from_doc(doc)
            _, _, status, external_id, _, expires_at, body, _ = _link_row(updated)
            c.execute(
                "UPDATE links SET status = ?, external_id = ?, expires_at = ?, doc = ?"
                " WHERE id = ?",
                (status, external_id, expires_at, body, link_id),
            )
            c.execute("COMMIT")
            return updated

        return await self._run(op)

    async def expire_due_links(self, now: datetime, limit: int) -> list[OnboardingLink]:
        return await self._expire(
            "SELECT doc FROM links WHERE status = 'pending' AND expires_at <= ?"
            " ORDER BY expires_at LIMIT ?",
            (_ms(now), limit),
            now,
        )

    async def _expire(
        self, query: str, params: tuple[Any, ...], now: datetime
    ) -> list[OnboardingLink]:
        def op(c: sqlite3.Connection) -> list[OnboardingLink]:
            moved: list[OnboardingLink] = []
            with _transaction(c):
                for (text,) in c.execute(query, params).fetchall():
                    link = OnboardingLink.from_doc(_load(text))
                    if link.claimed_until is not None and link.claimed_until > now:
                        continue  # being completed: the claim holder decides
                    link.status = LinkStatus.EXPIRED
                    link.updated_at = now
                    c.execute(
                        "UPDATE links SET status = 'expired', doc = ? WHERE id = ?",
                        (_dump(link.to_doc()), link.id),
                    )
                    moved.append(link)
            return moved

        return await self._run(op)

    async def pending_links_by_session_waba(self, meta_waba_id: str) -> list[OnboardingLink]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM links WHERE json_extract(doc, '$.session_report.waba_id') = ?"
                " AND status = 'pending'",
                (meta_waba_id,),
            ).fetchall()
        )
        return [OnboardingLink.from_doc(_load(r[0])) for r in rows]

    async def complete_link(self, completion: Completion) -> Completed | None:
        def op(c: sqlite3.Connection) -> Completed | None:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT doc FROM links WHERE id = ? AND org_id = ?",
                (completion.link_id, completion.org_id),
            ).fetchone()
            link = OnboardingLink.from_doc(_load(row[0])) if row else None
            condition = LinkCondition(statuses={LinkStatus.PENDING}, claim_id=completion.claim_id)
            if link is None or not condition.holds(link):
                c.execute("COMMIT")
                return None
            waba, phone = completion.waba, completion.phone
            found = c.execute(
                "SELECT doc FROM wabas WHERE org_id = ? AND meta_waba_id = ?",
                (waba.org_id, waba.meta_waba_id),
            ).fetchone()
            if found:
                old = Waba.from_doc(_load(found[0]))
                waba = dataclasses.replace(waba, id=old.id, created_at=old.created_at)
            c.execute(
                "INSERT OR REPLACE INTO wabas (id, org_id, meta_waba_id, doc, livemode)"
                " VALUES (?, ?, ?, ?, ?)",
                (waba.id, waba.org_id, waba.meta_waba_id, _dump(waba.to_doc()), int(waba.livemode)),
            )
            if phone is not None:
                known = _phone_by_meta_id(c, phone.org_id, phone.meta_phone_number_id)
                if known is not None:
                    phone = dataclasses.replace(phone, id=known.id, created_at=known.created_at)
                phone = dataclasses.replace(phone, waba_id=waba.id)
                _put_phone(c, phone, replace=True)
            doc = link.to_doc()
            doc.update(completion.link_changes)
            doc.update(phone_number_id=phone.id if phone else None, waba_id=waba.id)
            updated = OnboardingLink.from_doc(doc)
            _, _, status, external_id, _, expires_at, body, _ = _link_row(updated)
            c.execute(
                "UPDATE links SET status = ?, external_id = ?, expires_at = ?, doc = ?"
                " WHERE id = ?",
                (status, external_id, expires_at, body, updated.id),
            )
            if completion.webhook is not None:
                _insert_webhook(c, completion.webhook)
            for event in completion.events:
                _insert_event(c, event, completion.deliveries_of(event))
            c.execute("COMMIT")
            return Completed(updated, waba, phone)

        return await self._run(op)
