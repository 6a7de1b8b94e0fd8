"""Rate limits: per API key on ``/v1``, per client address on the public pages.

GCRA (a token bucket kept as one timestamp per key): ``rate`` requests per second on
average, bursts of ``burst``. In Redis when configured, so every process shares the
budget; in-process otherwise, and whenever Redis does not answer, so an outage never
turns into errors.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_onboard.errors import ApiError

log = logging.getLogger("edge_onboard.ratelimit")

# KEYS[1] = the key's theoretical arrival time (ms). ARGV: now (ms), interval (ms per
# request), tolerance (ms of burst). Returns 0, or the ms to wait before retrying.
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local now = tonumber(ARGV[1])
if tat < now then tat = now end
local allowed_at = tat - tonumber(ARGV[3])
if now < allowed_at then return allowed_at - now end
local new_tat = tat + tonumber(ARGV[2])
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""
MEMORY_KEYS = 100_000
REDIS_RETRY_AFTER = 1.0  # seconds


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # requests per second, on average
    burst: int  # requests allowed at once

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.rate

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst - 1)


class RateLimiter:
    def __init__(self, redis: Any = None, *, now: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA) if redis is not None else None
        self._now = now
        self._tat: OrderedDict[str, float] = OrderedDict()
        # After a Redis failure, limit in-process for a moment instead of waiting on it.
        self._skip_redis_until = 0.0

    async def check(self, key: str, limit: Limit, what: str) -> None:
        """Raise 429 ``rate_limited`` (with ``Retry-After``) when ``key`` is over ``limit``."""
        wait_ms = await self._wait_ms(key, limit)
        if wait_ms > 0:
            seconds = max(1, int(wait_ms / 1000 + 0.999))
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests {what}; retry in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )

    async def _wait_ms(self, key: str, limit: Limit) -> float:
        now_ms = self._now() * 1000
        if self._script is not None and time.monotonic() >= self._skip_redis_until:
            try:
                waited: Any = await self._script(
                    keys=[f"{{edge}}:ratelimit:{key}"],
                    args=[int(now_ms), limit.interval_ms, limit.tolerance_ms],
                )
                return float(waited)
            except Exception as exc:  # Redis is down: limit in this process meanwhile
                self._skip_redis_until = time.monotonic() + REDIS_RETRY_AFTER
                log.warning("rate limiter: Redis unavailable (%s); limiting in-process", exc)
        return self._memory(key, limit, now_ms)

    def _memory(self, key: str, limit: Limit, now_ms: float) -> float:
        tat = max(self._tat.get(key, now_ms), now_ms)
        allowed_at = tat - limit.tolerance_ms
        if now_ms < allowed_at:
            return allowed_at - now_ms
        self._tat[key] = tat + limit.interval_ms
        self._tat.move_to_end(key)
        while len(self._tat) > MEMORY_KEYS:
            self._tat.popitem(last=False)
        return 0.0
