"""Group commit: writes that arrive together go to the server as one round trip.

Under load many requests reach the same kind of write within one turn of the event
loop. Sent one by one, each pays the driver's whole per-operation cost (server
selection, connection checkout, command framing, a network round trip); sent as one
``insert_many`` or one pipeline, they pay it once. Nothing waits on a timer: the first
caller leads: it yields once so the requests already running can join, and waits
while the previous batch is still being written (all the while others join), then
writes the batch; every caller gets its own outcome. So batches grow with the load on
their own: under no load a batch holds one write, which goes out at once; under heavy
load the store sees one write in flight per ``Coalescer``, carrying all that queued
behind it.

The leader writes inside a shielded scope, so a leader whose request is cancelled
(the client went away) still finishes the batch the others are waiting on. So a flush
must bound its own time (driver timeouts), as cancellation cannot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


class _Batch(Generic[T, R]):
    __slots__ = ("done", "items", "outcomes")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.outcomes: Sequence[R | Exception] = ()
        self.done = anyio.Event()


class Coalescer(Generic[T, R]):
    """Calls ``flush(items)`` with the items submitted together; ``submit`` returns or
    raises that item's outcome. ``flush`` must return one outcome per item, in order;
    if it raises instead, every caller of the batch raises that error."""

    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]],
        *,
        max_size: int = 256,
        in_flight: int = 1,
    ) -> None:
        self._flush = flush
        self._max_size = max_size
        self._slots = anyio.Semaphore(in_flight)
        self._open: _Batch[T, R] | None = None

    async def submit(self, item: T) -> R:
        batch = self._open
        if batch is not None and len(batch.items) < self._max_size:
            index = len(batch.items)
            batch.items.append(item)
            await batch.done.wait()
        else:
            batch = self._open = _Batch()
            index = 0
            batch.items.append(item)
            await self._lead(batch)
        outcome = batch.outcomes[index]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _lead(self, batch: _Batch[T, R]) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await anyio.sleep(0)  # the requests already running may join
                async with self._slots:  # others keep joining while the last batch is out
                    if self._open is batch:
                        self._open = None
                    outcomes = await self._flush(batch.items)
                if len(outcomes) != len(batch.items):
                    raise RuntimeError(
                        f"flush returned {len(outcomes)} outcomes for {len(batch.items)} items"
                    )
                batch.outcomes = outcomes
            except Exception as exc:
                batch.outcomes = [exc] * len(batch.items)
            finally:
                if len(batch.outcomes) != len(batch.items):  # interrupted: never hang the others
                    batch.outcomes = [RuntimeError("the batch was abandoned")] * len(batch.items)
                if self._open is batch:
                    self._open = None
                batch.done.set()
