"""Rate limits: per API key on ``/v1``, per client address on the public pages.

GCRA (a token bucket kept as one timestamp per key): ``rate`` requests per second on
average, bursts of ``burst``. Each process enforces the limit exactly for its own
requests; with Redis, processes also share one budget per key. They charge it in small
batches (every few requests or every 50 ms per key) rather than once per request, so
the hot path rarely waits on Redis; a key found over its shared budget is refused in
every process until it recovers. When Redis does not answer, or not within tens of
milliseconds (a hung Redis: edge_onboard/core/breaker.py), limits stay in-process: an
outage never turns into errors, nor into waits.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_onboard.core import redis_keys
from edge_onboard.core.breaker import Breaker
from edge_onboard.core.errors import ApiError

log = logging.getLogger("edge_onboard.core.ratelimit")

# KEYS[1] = the key's theoretical arrival time (ms). ARGV: now (ms), interval (ms per
# request), tolerance (ms of burst), cost (requests charged). Returns 0 when charged,
# else the ms until the budget allows it.
_GCRA = """
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[2]) * tonumber(ARGV[4])
local allowed_at = new_tat - tonumber(ARGV[2]) - tonumber(ARGV[3])
if now < allowed_at then return math.ceil(allowed_at - now) end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""
MEMORY_KEYS = 100_000
BATCH = 8  # requests per key charged to Redis at once, at most
FLUSH_AFTER = 0.05  # seconds: a key's pending requests are charged at least this often


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # requests per second, on average
    burst: int  # requests allowed at once

    @staticmethod
    @functools.cache  # one per configured rate, not one per request
    def per_second(rate: float) -> Limit:
        """``rate`` requests per second on average, bursts of two seconds' worth."""
        return Limit(rate, int(rate * 2))

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.rate

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst - 1)


@dataclass(slots=True)
class _KeyState:
    tat_ms: float = 0.0  # this process's bucket
    pending: int = 0  # requests not yet charged to the shared budget
    flushed_at: float = 0.0
    blocked_until: float = 0.0  # the shared budget said no until then


class RateLimiter:
    def __init__(
        self,
        redis: Any = None,
        *,
        now: Callable[[], float] = time.time,
        breaker: Breaker | None = None,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA) if redis is not None else None
        self._now = now
        self._breaker = breaker or Breaker()
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()

    async def check(self, key: str, limit: Limit, what: str) -> None:
        """Raise 429 ``rate_limited`` (with ``Retry-After``) when ``key`` is over ``limit``."""
        now = self._now()
        state = self._state(key)
        wait = max(state.blocked_until - now, self._local(state, limit, now * 1000) / 1000)
        if wait <= 0 and self._script is not None:
            state.pending += 1
            # A busy key is charged every FLUSH_AFTER (its pending requests at once); a
            # quiet one every BATCH requests at most: either way, rarely once per request.
            if (
                state.pending >= max(BATCH, limit.rate * FLUSH_AFTER)
                or now - state.flushed_at >= FLUSH_AFTER
            ):
                wait = await self._charge(key, state, limit, now)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests {what}; retry in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )

    def waiting(self, key: str, limit: Limit) -> float:
        """Seconds ``key`` must wait before ``limit`` lets it through, charging nothing
        (this process's view, which the shared budget only ever makes stricter)."""
        state = self._keys.get(key)
        if state is None:
            return 0.0
        now = self._now()
        allowed_at = max(state.tat_ms, now * 1000) - limit.tolerance_ms
        return max(state.blocked_until - now, (allowed_at - now * 1000) / 1000, 0.0)

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            while len(self._keys) > MEMORY_KEYS:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        return state

    @staticmethod
    def _local(state: _KeyState, limit: Limit, now_ms: float) -> float:
        """GCRA in this process: ms to wait, or 0 (and the request counted)."""
        tat = max(state.tat_ms, now_ms)
        allowed_at = tat - limit.tolerance_ms
        if now_ms < allowed_at:
            return allowed_at - now_ms
        state.tat_ms = tat + limit.interval_ms
        return 0.0

    async def _charge(self, key: str, state: _KeyState, limit: Limit, now: float) -> float:
        """Charge the pending requests to the shared budget: seconds to wait, or 0."""
        script = self._script
        if script is None or self._breaker.is_open:
            return 0.0
        cost, state.pending, state.flushed_at = state.pending, 0, now
        try:
            waited: Any = await self._breaker.call(
                lambda: script(
                    keys=[redis_keys.rate_limit(key)],
                    args=[int(now * 1000), limit.interval_ms, limit.tolerance_ms, cost],
                )
            )
        except Exception as exc:  # Redis is down or hung: limit in this process meanwhile
            log.debug("rate limiter: Redis skipped (%s); limiting in-process", exc)
            return 0.0
        wait = float(waited) / 1000
        if wait > 0:
            state.blocked_until = now + wait
        return wait
