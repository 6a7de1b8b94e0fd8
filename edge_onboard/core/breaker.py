"""A deadline and a circuit breaker for Redis calls on the request path.

Redis is a helper there (the hot layer, rate limits, queueing a delivery): when it does
not answer, each caller has a fallback (the store, an in-process limit, the recovery
sweep). A Redis that refuses connections fails fast; a hung one (stopped, partitioned,
stuck on a slow command) does not: each call would wait out the driver's socket
timeout. So every call here gets a short deadline, and after ``threshold`` failures in
a row the breaker opens: callers skip Redis at once, for ``cool_down`` seconds. Then one
call is let through as a probe: if it answers the breaker closes, else it opens again.
A hung Redis so costs the deployment one deadline per cool-down, not one per request.

One breaker per Redis client, shared by everything in the process that uses it on the
request path: a hang seen by the rate limiter spares the hot layer its own timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

log = logging.getLogger("edge_onboard.core.breaker")

T = TypeVar("T")

DEADLINE = 0.05  # seconds a request-path Redis call may take
THRESHOLD = 3  # failures in a row that open the breaker
COOL_DOWN = 1.0  # seconds Redis is skipped once the breaker is open


class Unavailable(Exception):
    """Redis is skipped (the breaker is open) or did not answer in time."""


class Breaker:
    """Deadline and circuit breaker for one dependency (see the module's docstring)."""

    def __init__(
        self,
        name: str = "Redis",
        *,
        deadline: float = DEADLINE,
        threshold: int = THRESHOLD,
        cool_down: float = COOL_DOWN,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.deadline = deadline
        self.threshold = threshold
        self.cool_down = cool_down
        self._monotonic = monotonic
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        """True while calls are being skipped (the cool-down, or a probe in flight)."""
        if self._failures < self.threshold:
            return False
        return self._probing or self._monotonic() < self._open_until

    def allows(self) -> bool:
        """Whether a call may go to Redis now; past the cool-down, the first caller to
        ask becomes the probe and the others keep skipping until it has answered."""
        if self._failures < self.threshold:
            return True
        if self._probing or self._monotonic() < self._open_until:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        if self._failures >= self.threshold:
            log.warning("%s answers again; using it", self.name)
        self._failures = 0
        self._probing = False

    def failed(self, exc: BaseException | None = None) -> None:
        self._failures += 1
        self._probing = False
        if self._failures >= self.threshold:
            if self._open_until <= self._monotonic():  # one line per opening, not per call
                log.warning(
                    "%s unavailable (%s); skipped for %.1f s",
                    self.name,
                    exc or "no answer in time",
                    self.cool_down,
                )
            self._open_until = self._monotonic() + self.cool_down

    async def call(self, func: Callable[[], Awaitable[T]], *, deadline: float | None = None) -> T:
        """``func()`` within the deadline; raises ``Unavailable`` when the breaker is open
        or the deadline passed, and whatever ``func`` raised (counted as a failure)."""
        if not self.allows():
            raise Unavailable(f"{self.name} skipped after failures")
        try:
            with anyio.fail_after(self.deadline if deadline is None else deadline):
                result = await func()
        except TimeoutError as exc:
            self.failed(exc)
            raise Unavailable(f"{self.name} did not answer in time") from exc
        except Exception as exc:
            self.failed(exc)
            raise
        except BaseException:  # cancelled from outside: not Redis's fault
            self._probing = False
            raise
        self.succeeded()
        return result
