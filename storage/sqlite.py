"""SQLite backend (``sqlite:///path``): the embedded default.

stdlib ``sqlite3`` on one connection, driven from anyio worker threads one call at
a time. WAL lets other processes (the CLI) read and write the same file meanwhile.
Records are stored as a JSON document beside the columns that are queried or
constrained; read-modify-write updates run inside ``BEGIN IMMEDIATE`` so they are
atomic across threads and processes.
"""

from __future__ import annotations

import dataclasses
import queue
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from edge_onboard.storage import sqlite_events
from edge_onboard.storage.base import (
    Completed,
    Completion,
    DuplicateError,
    EventFilter,
    LinkCondition,
    LinkFilter,
    StorageError,
)
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.codec import dump_doc as _dump
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.models import (
    ApiKey,
    Delivery,
    Event,
    IdempotencyRecord,
    LinkStatus,
    OnboardingLink,
    Organization,
    OutgoingWebhook,
    PartnerGrant,
    Phone,
    PhoneStatus,
    Waba,
)
from edge_onboard.storage.paging import Key, Page, Window, page_of
from edge_onboard.storage.sqlite_paging import Arm, window_docs
from edge_onboard.storage.sqlite_rows import insert_event as _insert_event
from edge_onboard.storage.sqlite_rows import insert_webhook as _insert_webhook
from edge_onboard.storage.sqlite_rows import link_row as _link_row
from edge_onboard.storage.sqlite_rows import phone_by_meta_id as _phone_by_meta_id
from edge_onboard.storage.sqlite_rows import put_grant as _put_grant
from edge_onboard.storage.sqlite_rows import put_phone as _put_phone
from edge_onboard.storage.sqlite_rows import transaction as _transaction
from edge_onboard.storage.sqlite_rows import update_delivery as _update_delivery
from edge_onboard.storage.sqlite_schema import migrate as _migrate
from edge_onboard.storage.sqlite_schema import owner_only as _owner_only

T = TypeVar("T")
# Ids per ``IN (...)`` query, well under SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500

# Connections kept for reads beside the one that writes (files only: WAL lets them read
# while it writes, so a list never waits behind, or holds up, the writer).
READERS = 2


class SQLiteStorage:
    def __init__(
        self, path: str | Path | None = None, *, connection: sqlite3.Connection | None = None
    ):
        if path is None and connection is None:
            raise ValueError("SQLiteStorage needs a path or a connection")
        self.path = Path(path) if path is not None else None
        self._conn = connection
        # One call at a time on the shared connection.
        self._limiter = anyio.CapacityLimiter(1)
        # Concurrent new links go in one transaction (see edge_onboard/storage/batch.py).
        self._link_inserts: Coalescer[tuple[Any, ...], None] = Coalescer(self._insert_links)
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._reader_limiter = anyio.CapacityLimiter(READERS)
        self._reader_count = 0

    @classmethod
    def from_url(cls, url: str) -> SQLiteStorage:
        # sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ValueError("sqlite URL needs a path: sqlite:///./edge_onboard.db")
        return cls(path)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError("storage is not open")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.IntegrityError as exc:
                raise DuplicateError(str(exc)) from exc
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite: {exc}") from exc
            finally:
                # Whatever went wrong, never leave the shared connection mid-transaction.
                if conn.in_transaction:
                    conn.rollback()

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on a reader connection (the writer's when there are none): it
        neither waits for nor blocks the shared connection."""
        if not self._reader_count:
            return await self._run(fn)

        def call() -> T:
            conn = self._readers.get_nowait()  # the limiter leaves one free for each thread
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite: {exc}") from exc
            finally:
                if conn.in_transaction:
                    conn.rollback()
                self._readers.put(conn)

        return await anyio.to_thread.run_sync(call, limiter=self._reader_limiter)

    async def _open_readers(self) -> None:
        if self.path is None or str(self.path) == ":memory:":
            return

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10
            )
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA busy_timeout=10000")
            return conn

        for _ in range(READERS):
            try:
                self._readers.put(await anyio.to_thread.run_sync(connect))
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite: cannot open {self.path}: {exc}") from exc
            self._reader_count += 1

    async def open(self) -> None:
        if self._conn is None:
            assert self.path is not None
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)

            def connect() -> sqlite3.Connection:
                _owner_only(self.path)
                conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False, timeout=10
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=10000")
                return conn

            try:
                self._conn = await anyio.to_thread.run_sync(connect)
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite: cannot open {self.path}: {exc}") from exc
        await self._run(_migrate)
        await self._open_readers()

    async def close(self) -> None:
        while self._reader_count:
            reader = self._readers.get_nowait()
            self._reader_count -= 1
            await anyio.to_thread.run_sync(reader.close)
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

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

    # Onboarding links

    async def insert_link(self, link: OnboardingLink) -> None:
        await self._link_inserts.submit(_link_row(link))

    async def _insert_links(self, rows: Sequence[tuple[Any, ...]]) -> list[Exception | None]:
        """One transaction (one thread hop) for the batch; each link gets its own outcome."""

        def insert(c: sqlite3.Connection) -> list[Exception | None]:
            outcomes: list[Exception | None] = []
            c.execute("BEGIN")
            for row in rows:
                try:
                    c.execute(
                        "INSERT INTO links (id, org_id, status, external_id, created_at,"
                        " expires_at, doc, livemode) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                except sqlite3.IntegrityError as exc:  # this row only; the others stand
                    outcomes.append(DuplicateError(str(exc)))
                else:
                    outcomes.append(None)
            c.execute("COMMIT")
            return outcomes

        return await self._run(insert)

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

    async def _page(
        self,
        table: str,
        arms: Sequence[Arm],
        window: Window,
        decode: Callable[[dict[str, Any]], T],
    ) -> Page[T]:
        docs, more, total, estimate = await self._read(
            lambda c: window_docs(c, table, arms, window)
        )
        return Page([decode(_load(d)) for d in docs], more, total, estimate)

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

    async def _docs_by_id(self, table: str, ids: Collection[str]) -> list[dict[str, Any]]:
        """The documents of ``table`` (a name of ours) with these ids, in one read."""
        wanted = list(set(ids))

        def op(c: sqlite3.Connection) -> list[dict[str, Any]]:
            rows: list[Any] = []
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT doc FROM {table} WHERE id IN ({marks})"
                rows += c.execute(query, chunk).fetchall()
            return [_load(row[0]) for row in rows]

        return await self._run(op)

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
