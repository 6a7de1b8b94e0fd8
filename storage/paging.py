"""Pages of a list whose cost does not grow with the list.

Every list is ordered newest first by ``(created_at, id)``, the key of one index per
list in each backend. A page is asked for in one of three ways (``Window``):

- ``after``: the objects older than an object's key (Stripe's ``starting_after``);
- ``before``: the objects newer than an object's key (``ending_before``), still
  returned newest first;
- ``offset``: the seed's ``page``; the backend walks the index keys (never documents)
  to the boundary key and then reads one index range. Offsets are bounded by
  ``MAX_OFFSET`` above this layer, so that walk is bounded too.

``total`` counts matching index keys up to ``COUNT_CAP`` and stops there: past it the
page says ``total_is_estimate`` and ``total`` is a lower bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")
Key = tuple[datetime, str]

# How far a count goes before it says "at least this many".
COUNT_CAP = 1_000
# The deepest offset a ``page`` may reach; past it, cursors (which cost the same anywhere).
MAX_OFFSET = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    limit: int
    offset: int = 0
    after: Key | None = None
    before: Key | None = None
    count_cap: int = COUNT_CAP

    def __post_init__(self) -> None:
        if self.after is not None and self.before is not None:
            raise ValueError("a window is after a key or before one, not both")
        if (self.after is not None or self.before is not None) and self.offset:
            raise ValueError("a cursor window has no offset")


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    # More objects beyond this page in the direction of travel (older, or newer for
    # ``before``).
    has_more: bool
    total: int
    total_is_estimate: bool = False


def bounded_total(counted: int, cap: int) -> tuple[int, bool]:
    """A count that stopped at ``cap + 1`` as (total, is_estimate)."""
    return (cap, True) if counted > cap else (counted, False)


def page_of(rows: Sequence[T], window: Window, key: Callable[[T], Key]) -> Page[T]:
    """The window over ``rows`` (every match, newest first) in memory: the reference
    the database backends must agree with."""
    total, estimate = bounded_total(len(rows), window.count_cap)
    if window.before is not None:
        before = window.before
        newer = [r for r in rows if key(r) > before]
        chosen = newer[max(0, len(newer) - window.limit) :]
        return Page(list(chosen), len(newer) > window.limit, total, estimate)
    if window.after is not None:
        after = window.after
        rest = [r for r in rows if key(r) < after]
    else:
        rest = list(rows[window.offset :])
    return Page(rest[: window.limit], len(rest) > window.limit, total, estimate)
