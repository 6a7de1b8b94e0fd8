"""What ``/readyz`` says about regions: this process's region and role, whether its
Redis replica answers, and how far behind the primary its replicas are.

The Redis replica's lag is read from a heartbeat the primary region writes every
second (``redis_keys.REGION_BEAT``): the age of the newest beat the replica holds is
the replication lag plus up to a second. MongoDB's is the driver's own estimate from
its members' heartbeats (``storage/mongo/replicas.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio

from edge_onboard.core import redis_keys as keys
from edge_onboard.core.regions import Region

log = logging.getLogger("edge_onboard.core.regions")


class RegionStatus:
    """The region's part of ``/readyz``."""

    def __init__(
        self,
        region: Region,
        *,
        replica: Any = None,
        store: Any = None,
        shared_limits: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.region = region
        self.replica = replica  # a read-only Redis replica client, outside the primary
        self.store = store
        self.shared_limits = shared_limits
        self._now = now

    async def report(self, timeout: float) -> tuple[dict[str, Any], str | None]:
        """The region's fields, and the replica's check (None without a replica)."""
        out: dict[str, Any] = {
            "name": self.region.name,
            "primary": self.region.primary,
            "role": self.region.role,
            "rateLimits": "redis" if self.shared_limits else "in-process",
        }
        check = None
        if self.replica is not None:
            out["redisReplicaLagMs"] = None
            try:
                with anyio.fail_after(timeout):
                    beat = await self.replica.get(keys.REGION_BEAT)
                check = "ok"
            except Exception as exc:  # the name says which part failed
                check = f"error: {type(exc).__name__}"
            else:
                if beat is not None:
                    out["redisReplicaLagMs"] = max(0, int(self._now() * 1000) - int(beat))
        staleness = getattr(self.store, "replica_staleness", None)
        if staleness is not None and not self.region.is_primary:
            lag = staleness()
            out["mongoReplicaLagSeconds"] = None if lag is None else round(lag, 3)
        return out, check


async def beat_forever(redis: Any, now: Callable[[], float] = time.time) -> None:
    """The primary region's heartbeat for replicas to measure their lag by; a failed
    write is retried at the next beat (Redis being down is reported elsewhere)."""
    while True:
        try:
            await redis.set(keys.REGION_BEAT, int(now() * 1000), ex=keys.REGION_BEAT_TTL)
        except Exception as exc:
            log.debug("region heartbeat not written: %s", exc)
        await anyio.sleep(keys.REGION_BEAT_INTERVAL)
