"""Admission at the door: at most so many requests of one costly kind at a time in this
process. The rest wait their turn for a bounded time and are then refused before any of
their work has begun, so an overloaded process answers "busy, try again" instead of
failing a request half-way (a signup whose single-use code was already spent)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio


class Busy(Exception):
    """No turn came within the wait: nothing of the request was done."""


class Admission:
    """``slots`` requests at a time; a request waits at most ``wait`` seconds for one."""

    def __init__(self, slots: int, wait: float) -> None:
        self._limiter = anyio.CapacityLimiter(slots)
        self.wait = wait

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``; ``Busy`` if none came in time."""
        acquired = False
        with anyio.move_on_after(self.wait):
            await self._limiter.acquire()
            acquired = True  # no await between the grant and this line
        if not acquired:
            raise Busy
        try:
            yield
        finally:
            self._limiter.release()
