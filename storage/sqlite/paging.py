"""SQLite side of storage/paging.py: one window over a table as index ranges.

A list is one or more *arms* (``WHERE`` clauses, each served by an index ordered by
``created_at DESC, id DESC``); several arms are merged by SQLite's ``UNION ALL`` merge
(each arm read in index order), which is how "expired" includes the pending links past
their expiry that the sweep has not stored as expired yet.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from edge_onboard.storage.codec import ms as _ms
from edge_onboard.storage.paging import Key, Window, bounded_total


class Arm(NamedTuple):
    where: str
    params: Sequence[Any]
    # The index to read it by, when the planner might pick one that is not in list order.
    by: str | None = None


def _union(
    table: str, columns: str, arms: Sequence[Arm], extra: str, extra_params: list[Any]
) -> tuple[str, list[Any]]:
    sql = " UNION ALL ".join(
        f"SELECT {columns} FROM {table}{f' INDEXED BY {a.by}' if a.by else ''}"
        f" WHERE {a.where}{extra}"
        for a in arms
    )
    params: list[Any] = []
    for arm in arms:
        params += [*arm.params, *extra_params]
    return sql, params


def _older(at: int, ident: str, inclusive: bool) -> tuple[str, list[Any]]:
    # created_at bounds the index range; the id test only trims the boundary instant.
    op = "<=" if inclusive else "<"
    return f" AND created_at <= ? AND (created_at < ? OR id {op} ?)", [at, at, ident]


def _newer(key: Key) -> tuple[str, list[Any]]:
    at, ident = _ms(key[0]), key[1]
    return " AND created_at >= ? AND (created_at > ? OR id > ?)", [at, at, ident]


def window_docs(
    c: sqlite3.Connection, table: str, arms: Sequence[Arm], window: Window
) -> tuple[list[str], bool, int, bool]:
    """The documents of ``window`` (newest first), whether more lie beyond, and the
    bounded total. Each statement reads one index range of at most ``count_cap``,
    ``offset`` + 1 or ``limit`` + 1 keys."""
    counted_sql, counted_params = _union(table, "1", arms, "", [])
    (counted,) = c.execute(
        f"SELECT COUNT(*) FROM ({counted_sql} LIMIT ?)", [*counted_params, window.count_cap + 1]
    ).fetchone()
    total, estimate = bounded_total(int(counted), window.count_cap)
    order = "DESC"
    extra, extra_params = "", list[Any]()
    if window.before is not None:
        extra, extra_params = _newer(window.before)
        order = "ASC"
    elif window.after is not None:
        extra, extra_params = _older(_ms(window.after[0]), window.after[1], inclusive=False)
    elif window.offset:
        # Walk the index keys (covered: no document is read) to the page's first key.
        keys_sql, keys_params = _union(table, "created_at, id", arms, "", [])
        row = c.execute(
            f"{keys_sql} ORDER BY 1 DESC, 2 DESC LIMIT 1 OFFSET ?", [*keys_params, window.offset]
        ).fetchone()
        if row is None:
            return [], False, total, estimate
        extra, extra_params = _older(row[0], row[1], inclusive=True)
    sql, params = _union(table, "doc, created_at, id", arms, extra, extra_params)
    rows = c.execute(
        f"{sql} ORDER BY 2 {order}, 3 {order} LIMIT ?", [*params, window.limit + 1]
    ).fetchall()
    docs = [r[0] for r in rows[: window.limit]]
    if window.before is not None:
        docs.reverse()
    return docs, len(rows) > window.limit, total, estimate
