"""In-process queue for the embedded default (one process; recovered from storage at start)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import anyio


class MemoryQueue:
    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}
        self._leases: dict[str, datetime] = {}
        self._queued = anyio.Event()

    async def enqueue(self, delivery_id: str, due: datetime) -> None:
        if delivery_id not in self._leases:
            self._due[delivery_id] = due
            self._queued.set()

    async def enqueue_many(self, items: Sequence[tuple[str, datetime]]) -> None:
        for delivery_id, due in items:
            await self.enqueue(delivery_id, due)

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[str]:
        ready = sorted((due, ident) for ident, due in self._due.items() if due <= now)[:limit]
        for _, ident in ready:
            del self._due[ident]
            self._leases[ident] = now + lease
        return [ident for _, ident in ready]

    async def ack(self, delivery_id: str) -> None:
        self._leases.pop(delivery_id, None)

    async def ack_many(self, delivery_ids: Sequence[str]) -> None:
        for delivery_id in delivery_ids:
            self._leases.pop(delivery_id, None)

    async def retry(self, delivery_id: str, due: datetime) -> None:
        self._leases.pop(delivery_id, None)
        self._due[delivery_id] = due

    async def sweep(self, now: datetime) -> int:
        expired = [ident for ident, until in self._leases.items() if until <= now]
        for ident in expired:
            del self._leases[ident]
            self._due[ident] = now
        return len(expired)

    async def wait_for_work(self, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            await self._queued.wait()
            self._queued = anyio.Event()
            return True
        return False

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def next_due(self) -> datetime | None:
        return min(self._due.values(), default=None)
