"""The hot layer: what every request reads (API keys, onboarding links) kept close.

Two tiers in front of the durable store: a small in-process cache whose entries live
one second (so a change made by another process shows within a second, with no
messaging between processes), then Redis (written through on every change, entries
expire after a few minutes). Redis being down is never an error: reads go to the store
and Redis is left alone for a second before it is tried again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from edge_onboard import redis_keys as keys
from edge_onboard.storage.codec import dump_doc, load_doc

log = logging.getLogger("edge_onboard.hot")

LOCAL_TTL = 1.0  # seconds an entry is trusted in-process
LOCAL_SIZE = 10_000
REDIS_RETRY_AFTER = 1.0


class HotCache:
    def __init__(self, redis: Any = None, *, monotonic: Callable[[], float] = time.monotonic):
        self._redis = redis
        self._monotonic = monotonic
        self._local: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._skip_redis_until = 0.0
        # Deletes Redis missed while it was down, retried once it answers again.
        self._owed: set[str] = set()

    def _redis_usable(self) -> bool:
        return self._redis is not None and self._monotonic() >= self._skip_redis_until

    async def _settle(self) -> None:
        if self._owed:
            owed = list(self._owed)
            await self._redis.delete(*owed)
            self._owed.difference_update(owed)

    def _redis_failed(self, exc: Exception) -> None:
        self._skip_redis_until = self._monotonic() + REDIS_RETRY_AFTER
        log.warning("hot layer: Redis unavailable (%s); reading the store", exc)

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        entry = self._local.get((kind, key))
        if entry is not None and self._monotonic() - entry[0] < LOCAL_TTL:
            return entry[1]  # read-only: callers build records from it
        if self._redis_usable():
            try:
                await self._settle()
                raw = await self._redis.get(keys.hot(kind, key))
            except Exception as exc:
                self._redis_failed(exc)
            else:
                if raw is not None:
                    doc = load_doc(raw.decode() if isinstance(raw, bytes) else raw)
                    self._remember(kind, key, doc)
                    return doc
        return None

    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self._remember(kind, key, doc)
        if self._redis_usable():
            try:
                await self._settle()
                await self._redis.set(keys.hot(kind, key), dump_doc(doc), ex=keys.HOT_TTL)
            except Exception as exc:
                self._redis_failed(exc)

    async def forget(self, kind: str, key: str) -> None:
        self._local.pop((kind, key), None)
        if self._redis is None:
            return
        self._owed.add(keys.hot(kind, key))
        if self._redis_usable():
            try:
                await self._settle()
            except Exception as exc:
                self._redis_failed(exc)  # still owed; Redis's copy expires with REDIS_TTL

    def _remember(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        now = self._monotonic()
        self._local[(kind, key)] = (now, doc)
        self._local.move_to_end((kind, key))
        # Oldest first: drop what is past its second (useless) or beyond the size cap, so
        # memory follows the last second's traffic, not everything ever read.
        while self._local:
            stored_at, _ = next(iter(self._local.values()))
            if now - stored_at < LOCAL_TTL and len(self._local) <= LOCAL_SIZE:
                break
            self._local.popitem(last=False)
