"""SQLite: Meta's inbound bodies, recorded before they are acknowledged (the inbox)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from edge_onboard.storage.base import DuplicateError
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import InboxItem
from edge_onboard.storage.sqlite.connection import SQLiteBase

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(milliseconds: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=milliseconds)


def _item(row: tuple[str, int, int, int | None, bytes]) -> InboxItem:
    ident, lease_until, received_at, livemode, body = row
    return InboxItem(
        id=ident,
        body=bytes(body),
        livemode=None if livemode is None else bool(livemode),
        received_at=_at(received_at),
        lease_until=_at(lease_until),
    )


class InboxStore(SQLiteBase):
    # Meta's inbound

    async def put_inbox(self, item: InboxItem) -> bool:
        livemode = None if item.livemode is None else int(item.livemode)
        row = (item.id, _ms(item.lease_until), _ms(item.received_at), livemode, item.body)
        try:
            await self._run(
                lambda c: c.execute(
                    "INSERT INTO inbox (id, lease_until, received_at, livemode, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    row,
                )
            )
        except DuplicateError:
            return False
        return True

    async def claim_inbox(self, now: datetime, until: datetime, limit: int) -> list[InboxItem]:
        def op(c: sqlite3.Connection) -> list[InboxItem]:
            c.execute("BEGIN IMMEDIATE")
            rows = c.execute(
                "SELECT id, lease_until, received_at, livemode, body FROM inbox"
                " WHERE lease_until <= ? ORDER BY lease_until LIMIT ?",
                (_ms(now), limit),
            ).fetchall()
            c.executemany(
                "UPDATE inbox SET lease_until = ? WHERE id = ?",
                [(_ms(until), row[0]) for row in rows],
            )
            c.execute("COMMIT")
            return [_item((*row[:1], _ms(until), *row[2:])) for row in rows]

        return await self._run(op)

    async def delete_inbox(self, item_id: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM inbox WHERE id = ?", (item_id,)))
