"""MongoDB side of the events API: the event list's branches and indexes, the retention
sweep and the failed deliveries a recovery re-sends (storage/mongo/deliveries.py calls these).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from edge_onboard.storage.base import EventFilter, requeued
from edge_onboard.storage.models import DeliveryStatus
from edge_onboard.storage.mongo.paging import Branch
from edge_onboard.storage.paging import Key

Doc = dict[str, Any]
# The event list's indexes, in list order: all of an organisation's events, and by type.
EVENTS_BY_ORG = [
    ("org_id", ASCENDING),
    ("livemode", ASCENDING),
    ("created_at", DESCENDING),
    ("_id", DESCENDING),
]
EVENTS_BY_TYPE = [
    ("org_id", ASCENDING),
    ("livemode", ASCENDING),
    ("type", ASCENDING),
    ("created_at", DESCENDING),
    ("_id", DESCENDING),
]
# The retention sweep reads the oldest first; a recovery reads one endpoint's failures.
EVENTS_BY_AGE = [("created_at", ASCENDING), ("_id", ASCENDING)]
DELIVERIES_FAILED = [
    ("webhook_id", ASCENDING),
    ("status", ASCENDING),
    ("created_at", ASCENDING),
    ("_id", ASCENDING),
]


async def create_indexes(events: AsyncCollection[Doc], deliveries: AsyncCollection[Doc]) -> None:
    for keys in (EVENTS_BY_ORG, EVENTS_BY_TYPE, EVENTS_BY_AGE):
        await events.create_index(keys)
    await deliveries.create_index("event_id")
    await deliveries.create_index(DELIVERIES_FAILED)


def event_branches(org_id: str, flt: EventFilter) -> list[Branch]:
    """One branch per type, each read by its own index in list order (merged above), or
    one over the organisation's events when any type goes."""
    created: Doc = {}
    if flt.created_gte is not None:
        created["$gte"] = flt.created_gte
    if flt.created_lte is not None:
        created["$lte"] = flt.created_lte
    scope: Doc = {
        "org_id": org_id,
        "livemode": flt.livemode,
        **({"created_at": created} if created else {}),
    }
    if flt.types is None:
        return [(scope, EVENTS_BY_ORG)]
    return [({**scope, "type": kind}, EVENTS_BY_TYPE) for kind in sorted(flt.types)]


async def delete_events_before(
    events: AsyncCollection[Doc], deliveries: AsyncCollection[Doc], before: datetime, limit: int
) -> int:
    """Deliveries first, then their events: a sweep cut short leaves events without
    deliveries (the next sweep takes them), never a delivery without its event."""
    docs = (
        await events.find({"created_at": {"$lt": before}}, {"_id": 1})
        .sort(EVENTS_BY_AGE)
        .hint(EVENTS_BY_AGE)
        .limit(limit)
        .to_list(None)
    )
    ids = [d["_id"] for d in docs]
    if ids:
        await deliveries.delete_many({"event_id": {"$in": ids}})
        await events.delete_many({"_id": {"$in": ids}})
    return len(ids)


async def failed_delivery_docs(
    deliveries: AsyncCollection[Doc],
    webhook_id: str,
    since: datetime,
    until: datetime,
    after: Key | None,
    limit: int,
) -> list[Doc]:
    query: Doc = {
        "webhook_id": webhook_id,
        "status": DeliveryStatus.FAILED.value,
        "created_at": {"$gte": since, "$lt": until},
    }
    if after is not None:
        at, ident = after
        query["$nor"] = [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lte": ident}}]
    return (
        await deliveries.find(query)
        .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        .hint(DELIVERIES_FAILED)
        .limit(limit)
        .to_list(None)
    )


async def requeue_failed(
    deliveries: AsyncCollection[Doc],
    delivery_ids: Collection[str],
    failed_by: datetime,
    recovery_id: str,
    now: datetime,
) -> list[Doc]:
    """One conditional update (the filter carries the condition, so the server decides a
    race per delivery), then the ones marked with this recovery's id."""
    ids = list(set(delivery_ids))
    changes = {k: getattr(v, "value", v) for k, v in requeued(recovery_id, now).items()}
    await deliveries.update_many(
        {
            "_id": {"$in": ids},
            "status": DeliveryStatus.FAILED.value,
            "updated_at": {"$lte": failed_by},
        },
        {"$set": changes},
    )
    # A recovery's id is its own: what carries it is what this update changed.
    return await deliveries.find({"_id": {"$in": ids}, "recovery_id": recovery_id}).to_list(None)
