"""The SQLite backend's connections: the writer, its readers, and the batch of new links."""

from __future__ import annotations

import queue
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio
import anyio.to_thread

from edge_onboard.storage.base import DuplicateError, StorageError
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.codec import load_doc as _load
from edge_onboard.storage.paging import Page, Window
from edge_onboard.storage.sqlite.paging import Arm, window_docs
from edge_onboard.storage.sqlite.schema import migrate as _migrate
from edge_onboard.storage.sqlite.schema import owner_only as _owner_only

T = TypeVar("T")
# Ids per ``IN (...)`` query, well under SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500

# Connections kept for reads beside the one that writes (files only: WAL lets them read
# while it writes, so a list never waits behind, or holds up, the writer).
READERS = 2


class SQLiteBase:
    """What every record kind's methods share: the connection they run on, one call at a
    time, and the reader connections that lists use."""

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
    def from_url(cls, url: str) -> Self:
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
