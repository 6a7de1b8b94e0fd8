from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol


class DeliveryQueue(Protocol):
    """Due-time scheduling with leases. Every method is atomic on its own."""

    async def enqueue(self, delivery_id: str, due: datetime) -> None:
        """Schedule (or reschedule) a delivery; a no-op while someone holds its lease."""

    async def enqueue_many(self, items: Sequence[tuple[str, datetime]]) -> None:
        """``enqueue`` for each (delivery id, due), in one round trip."""

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[str]:
        """Take up to ``limit`` due deliveries, each leased until ``now + lease``."""

    async def ack(self, delivery_id: str) -> None:
        """Done with it (delivered, or given up): drop the lease."""

    async def ack_many(self, delivery_ids: Sequence[str]) -> None:
        """``ack`` for each, in one round trip."""

    async def retry(self, delivery_id: str, due: datetime) -> None:
        """Drop the lease and schedule the next attempt."""

    async def sweep(self, now: datetime) -> int:
        """Put deliveries whose lease expired (a worker died) back on the schedule."""

    async def wait_for_work(self, timeout: float) -> bool:
        """Until any process queues deliveries (True: claim now), or ``timeout`` seconds
        pass (False)."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
