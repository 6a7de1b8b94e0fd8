"""The hot layer: what every request reads (API keys, onboarding links) kept close.

Two tiers in front of the durable store: a small in-process cache whose entries live
one second (so a change made by another process shows within a second, with no
messaging between processes), then Redis, whose copies expire after a few seconds.
Redis being down or hung is never an error: each Redis call has a deadline of tens of
milliseconds, and after a few failures in a row Redis is skipped for a second
(edge_onboard/core/breaker.py): reads go to the store meanwhile.

A record read from the store is copied to Redis for the other processes. A change
replaces that copy with a short-lived tombstone, written through before the change is
answered, and copies read from the store are added only where there is none (``SET
NX``): so a request that read the store just before a change cannot put the old record
back when it finishes after it (the classic cache-aside race). A record just created
is kept in-process only: no copy of it can be stale, and the first read elsewhere
copies it to Redis.

Concurrent misses on one key in a process share one read (of Redis, then the store):
when an entry turns a second old under load, one request refreshes it, not all of
them. A change made meanwhile is not undone by that read: its result then goes only
to the requests that were already waiting for it.

Each in-process entry carries a ``memo`` for what is derived from it (the decoded
record, the rendered API response, the hosted page): derived once, dropped with the
entry. Redis writes from concurrent requests go out as one pipeline
(``edge_onboard/storage/batch.py``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

from edge_onboard.core import redis_keys as keys
from edge_onboard.core.breaker import COOL_DOWN, Breaker
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.codec import dump_doc, load_doc

log = logging.getLogger("edge_onboard.core.hot")

LOCAL_TTL = 1.0  # seconds an entry is trusted in-process
LOCAL_SIZE = 10_000
REDIS_RETRY_AFTER = COOL_DOWN  # seconds Redis is skipped once it failed
TOMBSTONE = b"-"  # "changed just now": read the store, and do not cache what it says
# Seconds after a read began within which its copy may still go to Redis: well inside a
# tombstone's life, so a read from before a change never outlives that change's tombstone.
FILL_WINDOW = keys.HOT_TOMBSTONE_MS / 2000


class Entry:
    """One record held in-process: its document, and what was derived from it."""

    __slots__ = ("doc", "memo", "stored_at")

    def __init__(self, stored_at: float, doc: dict[str, Any]) -> None:
        self.stored_at = stored_at
        self.doc = doc  # read-only: callers build records from it
        self.memo: dict[Any, Any] = {}

    def record(self, decode: Callable[[dict[str, Any]], R]) -> R:
        """The document decoded, once per entry."""
        record: R | None = self.memo.get("record")
        if record is None:
            record = self.memo["record"] = decode(self.doc)
        return record


R = TypeVar("R")


class _Read:
    """A read of one key in progress, shared by the requests that miss it meanwhile."""

    __slots__ = ("done", "entry", "finished", "stale")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.entry: Entry | None = None
        self.finished = False
        self.stale = False  # the record changed during the read


# A Redis write: ("fill", key, value, deadline) adds a copy read from the store unless
# the key holds one or a tombstone, if it is written before the deadline (monotonic);
# ("tombstone", key, None, 0.0) marks a change.
_Write = tuple[str, str, str | None, float]


class HotCache:
    def __init__(
        self,
        redis: Any = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        writable: bool = True,
        breaker: Breaker | None = None,
    ):
        # ``writable=False``: ``redis`` is a read-only replica (a region other than the
        # primary): it is read, never written; the primary's own reads fill it.
        self._redis = redis
        self._writable = writable
        self._monotonic = monotonic
        self._breaker = breaker or Breaker(monotonic=monotonic)
        self._local: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        # Tombstones Redis missed while it was down, written once it answers again.
        self._owed: set[str] = set()
        self._writes: Coalescer[_Write, None] = Coalescer(self._write_batch)
        self._reads: dict[tuple[str, str], _Read] = {}

    def peek(self, kind: str, key: str) -> Entry | None:
        """This process's fresh entry for the record, if any: no I/O."""
        return self._fresh(kind, key)

    def _fresh(self, kind: str, key: str) -> Entry | None:
        entry = self._local.get((kind, key))
        if entry is not None:
            if self._monotonic() - entry.stored_at < LOCAL_TTL:
                return entry
            self._evict(self._monotonic())  # what it memoised goes with it
        return None

    async def _from_redis(self, kind: str, key: str) -> dict[str, Any] | None:
        if self._redis is None:
            return None
        name = keys.hot(kind, key)

        async def read() -> Any:
            await self._settle()
            return await self._redis.get(name)

        try:
            raw = await self._breaker.call(read)
        except Exception as exc:  # down or hung: the store answers
            log.debug("hot layer: Redis read skipped (%s); reading the store", exc)
            return None
        if raw is not None and raw != TOMBSTONE:
            return load_doc(raw)
        return None

    async def load(
        self, kind: str, key: str, fetch: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> Entry | None:
        """The record's entry through both tiers, else from ``fetch`` (the store's
        document, or None), which is then kept for the next reads."""
        entry = self._fresh(kind, key)
        if entry is not None:
            return entry
        while (read := self._reads.get((kind, key))) is not None:
            await read.done.wait()
            if read.finished:
                return read.entry
            # That read failed or was cancelled: join the next one, or make it.
        read = self._reads[(kind, key)] = _Read()
        # Stamped with the time the read began: what it brings is no newer than that.
        started = self._monotonic()
        try:
            doc = await self._from_redis(kind, key)
            from_store = doc is None
            if from_store:
                doc = await fetch()
            if doc is not None:
                entry = Entry(started, doc)
                if not read.stale:
                    self._remember(kind, key, entry)
                    if from_store:  # unless a change got there first (its tombstone)
                        deadline = started + FILL_WINDOW
                        await self._write(("fill", keys.hot(kind, key), dump_doc(doc), deadline))
            read.entry, read.finished = entry, True
            return entry
        finally:
            if self._reads.get((kind, key)) is read:
                del self._reads[(kind, key)]
            read.done.set()

    def keep(self, kind: str, key: str, doc: dict[str, Any]) -> Entry:
        """Keep a record just created here, in this process only: no other copy can be
        stale yet, and the first read elsewhere adds it to Redis."""
        entry = Entry(self._monotonic(), doc)
        self._remember(kind, key, entry)
        return entry

    async def forget(self, kind: str, key: str) -> bool:
        """The record changed: every process reads the store within a second. False if
        Redis was unreachable: its copy then lives out its few seconds, and the tombstone
        is written once Redis answers this process again."""
        self._local.pop((kind, key), None)
        read = self._reads.pop((kind, key), None)
        if read is not None:  # what it brings may predate this change: not to be kept
            read.stale = True
        if self._redis is None:
            return True
        name = keys.hot(kind, key)
        if not await self._write(("tombstone", name, None, 0.0)):
            self._owed.add(name)  # written once Redis answers; copies expire meanwhile
            return False
        return True

    async def _write(self, write: _Write) -> bool:
        if not self._writable:
            return True  # the primary region writes the copies this replica holds
        if self._redis is None or self._breaker.is_open:
            return False
        try:
            await self._writes.submit(write)
        except Exception as exc:  # counted by the breaker in the batch's flush
            log.debug("hot layer: Redis write skipped (%s)", exc)
            return False
        return True

    async def _settle(self) -> None:
        if self._owed:
            owed = list(self._owed)
            pipe = self._redis.pipeline(transaction=False)
            for name in owed:
                pipe.set(name, TOMBSTONE, px=keys.HOT_TOMBSTONE_MS)
            await pipe.execute()
            self._owed.difference_update(owed)

    async def _write_batch(self, writes: Sequence[_Write]) -> list[Exception | None]:
        """The writes of concurrent requests, as one pipeline, within the deadline (the
        batch's leader is shielded from its request's cancellation: the deadline is not)."""
        await self._breaker.call(lambda: self._pipeline(writes))
        return [None] * len(writes)

    async def _pipeline(self, writes: Sequence[_Write]) -> None:
        await self._settle()
        pipe = self._redis.pipeline(transaction=False)
        now = self._monotonic()
        for op, name, value, deadline in writes:
            if op == "tombstone":
                pipe.set(name, TOMBSTONE, px=keys.HOT_TOMBSTONE_MS)
            elif now < deadline:  # a later fill might outlive a tombstone it should meet
                pipe.set(name, value, ex=keys.HOT_TTL, nx=True)
        await pipe.execute()

    def _remember(self, kind: str, key: str, entry: Entry) -> None:
        self._local[(kind, key)] = entry
        self._local.move_to_end((kind, key))
        self._evict(self._monotonic())

    def _evict(self, now: float) -> None:
        # Oldest first: drop what is past its second (useless) or beyond the size cap, so
        # memory (and what entries memoised) follows the last second's traffic only.
        while self._local:
            stored_at = next(iter(self._local.values())).stored_at
            if now - stored_at < LOCAL_TTL and len(self._local) <= LOCAL_SIZE:
                break
            self._local.popitem(last=False)
