"""The delivery queue: which webhook deliveries are due, and who is working on which.

Storage holds the truth (each delivery's status, attempts and next attempt); the
queue only dispatches. Losing it (a Redis restart) loses no delivery: the engine
re-queues due ones from storage.
"""

from __future__ import annotations

from typing import Any

from edge_onboard.webhooks.queue.base import DeliveryQueue

__all__ = ["DeliveryQueue", "for_client"]


def for_client(redis: Any) -> DeliveryQueue:
    """On the service's Redis client (shared, not owned), or in-process without one."""
    if redis is None:
        from edge_onboard.webhooks.queue.memory import MemoryQueue

        return MemoryQueue()
    from edge_onboard.webhooks.queue.redis import RedisQueue

    return RedisQueue(redis)
