"""MongoDB side of storage/paging.py: one window over a collection as index ranges.

Each list's query is served by an index ordered ``created_at`` descending then ``_id``
descending (the caller names it as ``hint``, so the planner never sorts in memory);
the count and the walk to an offset read index keys only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from edge_onboard.storage.paging import Key, Window, bounded_total

Doc = dict[str, Any]
Hint = Sequence[tuple[str, int]] | None
# One part of a list: its query and the index that serves it.
Branch = tuple[Doc, Hint]


def _older(at: Any, ident: str, *, inclusive: bool) -> Doc:
    # created_at bounds the index range; the _id test only trims the boundary instant.
    return {
        "created_at": {"$lte": at},
        "$nor": [{"created_at": at, "_id": {"$gt" if inclusive else "$gte": ident}}],
    }


def _newer(key: Key) -> Doc:
    at, ident = key
    return {"created_at": {"$gte": at}, "$nor": [{"created_at": at, "_id": {"$lte": ident}}]}


async def window_docs(
    collection: AsyncCollection[Doc], query: Doc, window: Window, hint: Hint = None
) -> tuple[list[Doc], bool, int, bool]:
    """The documents of ``window`` (newest first), whether more lie beyond, and the
    bounded total."""
    options: Doc = {"hint": list(hint)} if hint else {}
    counted = await collection.count_documents(query, limit=window.count_cap + 1, **options)
    total, estimate = bounded_total(counted, window.count_cap)
    direction = DESCENDING
    bound: Doc | None = None
    if window.before is not None:
        bound, direction = _newer(window.before), ASCENDING
    elif window.after is not None:
        bound = _older(window.after[0], window.after[1], inclusive=False)
    elif window.offset:
        # Walk the index keys (a covered query: no document is read) to the first key.
        keys = (
            await collection.find(query, {"created_at": 1}, **options)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(window.offset)
            .limit(1)
            .to_list()
        )
        if not keys:
            return [], False, total, estimate
        bound = _older(keys[0]["created_at"], keys[0]["_id"], inclusive=True)
    filtered = {"$and": [query, bound]} if bound else query
    docs = (
        await collection.find(filtered, **options)
        .sort([("created_at", direction), ("_id", direction)])
        .limit(window.limit + 1)
        .to_list()
    )
    more = len(docs) > window.limit
    docs = docs[: window.limit]
    if direction == ASCENDING:
        docs.reverse()
    return docs, more, total, estimate


def _sort_key(doc: Doc) -> tuple[Any, str]:
    return doc["created_at"], doc["_id"]


async def merged_window_docs(
    collection: AsyncCollection[Doc], branches: Sequence[Branch], window: Window
) -> tuple[list[Doc], bool, int, bool]:
    """``window_docs`` over the union of disjoint ``branches``, each read by its own index
    (the planner, given one ``$or``, may pick an index out of list order and sort a
    whole status in memory). Each branch reads at most ``limit`` + 1 documents, or
    ``offset`` + 1 covered keys, so the cost stays bounded as for one branch."""
    counted = 0
    for query, hint in branches:
        options: Doc = {"hint": list(hint)} if hint else {}
        counted += await collection.count_documents(
            query, limit=window.count_cap + 1 - counted, **options
        )
        if counted > window.count_cap:
            break
    total, estimate = bounded_total(counted, window.count_cap)
    descending = window.before is None
    bound: Doc | None = None
    if window.before is not None:
        bound = _newer(window.before)
    elif window.after is not None:
        bound = _older(window.after[0], window.after[1], inclusive=False)
    elif window.offset:
        keys: list[Doc] = []
        for query, hint in branches:
            keys += await _read(collection, query, hint, True, window.offset + 1, {"created_at": 1})
        keys.sort(key=_sort_key, reverse=True)
        if len(keys) <= window.offset:
            return [], False, total, estimate
        first = keys[window.offset]
        bound = _older(first["created_at"], first["_id"], inclusive=True)
    docs: list[Doc] = []
    for query, hint in branches:
        filtered = {"$and": [query, bound]} if bound else query
        docs += await _read(collection, filtered, hint, descending, window.limit + 1)
    docs.sort(key=_sort_key, reverse=descending)
    more = len(docs) > window.limit
    docs = docs[: window.limit]
    if not descending:
        docs.reverse()
    return docs, more, total, estimate


async def _read(
    collection: AsyncCollection[Doc],
    query: Doc,
    hint: Hint,
    descending: bool,
    limit: int,
    projection: Doc | None = None,
) -> list[Doc]:
    direction = DESCENDING if descending else ASCENDING
    options: Doc = {"hint": list(hint)} if hint else {}
    return (
        await collection.find(query, projection, **options)
        .sort([("created_at", direction), ("_id", direction)])
        .limit(limit)
        .to_list()
    )
