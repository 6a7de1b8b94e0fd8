"""MongoDB: events and their deliveries to outgoing webhooks."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from edge_onboard.storage.base import EventFilter
from edge_onboard.storage.models import Delivery, Event
from edge_onboard.storage.mongo import events as mongo_events
from edge_onboard.storage.mongo.connection import Doc, MongoBase, window_page
from edge_onboard.storage.mongo.docs import WRITE_TIMEOUT
from edge_onboard.storage.mongo.docs import Write as _Write
from edge_onboard.storage.mongo.docs import bulk as _bulk
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import native as _native
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.docs import writing as _writing
from edge_onboard.storage.mongo.paging import merged_window_docs
from edge_onboard.storage.paging import Key, Page, Window


class EventStore(MongoBase):
    # Events and deliveries

    async def record_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        """The event, then its deliveries: two idempotent writes, no transaction. A
        transaction a killed process left open holds its documents until the server's
        transaction lifetime (a minute) runs out, and every retry of that event fails
        against it meanwhile; these writes hold nothing. A writer killed between the two
        left an event without deliveries: the retry of the same event (same id) finds it
        so and writes them, then reports the duplicate; their ids are derived from the
        event's and the endpoint's (edge_onboard/webhooks/endpoints.py), so two racing
        retries write each once. Raises ``DuplicateError`` when the event was there."""
        with _writing():
            try:
                await self.events.insert_one(_to_mongo(event.to_doc()))
            except DuplicateKeyError:
                if deliveries and not await self.deliveries.find_one(
                    {"event_id": event.id}, {"_id": 1}
                ):
                    await _insert_missing(self.deliveries, deliveries)
                raise
            if deliveries:
                await _insert_missing(self.deliveries, deliveries)

    async def get_event(self, event_id: str) -> Event | None:
        with _errors():
            doc = await self.events.find_one({"_id": event_id})
        return Event.from_doc(_from_mongo(doc)) if doc else None

    async def list_events(self, org_id: str, flt: EventFilter, window: Window) -> Page[Event]:
        branches = mongo_events.event_branches(org_id, flt)
        if not branches:
            return Page([], False, 0)
        with _errors():
            docs, more, total, estimate = await merged_window_docs(self.events, branches, window)
        return Page([Event.from_doc(_from_mongo(d)) for d in docs], more, total, estimate)

    async def delete_events_before(self, before: datetime, limit: int) -> int:
        with _writing():
            return await mongo_events.delete_events_before(
                self.events, self.deliveries, before, limit
            )

    async def failed_deliveries(
        self, webhook_id: str, since: datetime, until: datetime, after: Key | None, limit: int
    ) -> list[Delivery]:
        with _errors():
            docs = await mongo_events.failed_delivery_docs(
                self.deliveries, webhook_id, since, until, after, limit
            )
        return [Delivery.from_doc(_from_mongo(d)) for d in docs]

    async def requeue_failed(
        self, delivery_ids: Collection[str], failed_by: datetime, recovery_id: str, now: datetime
    ) -> list[Delivery]:
        with _writing():
            docs = await mongo_events.requeue_failed(
                self.deliveries, delivery_ids, failed_by, recovery_id, now
            )
        return [Delivery.from_doc(_from_mongo(d)) for d in docs]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        with _errors():
            doc = await self.deliveries.find_one({"_id": delivery_id})
        return Delivery.from_doc(_from_mongo(doc)) if doc else None

    async def get_events(self, event_ids: Collection[str]) -> list[Event]:
        with _errors():
            docs = await self.events.find({"_id": {"$in": list(set(event_ids))}}).to_list(None)
        return [Event.from_doc(_from_mongo(d)) for d in docs]

    async def get_deliveries(self, delivery_ids: Collection[str]) -> list[Delivery]:
        wanted = list(set(delivery_ids))
        with _errors():
            docs = await self.deliveries.find({"_id": {"$in": wanted}}).to_list(None)
        return [Delivery.from_doc(_from_mongo(d)) for d in docs]

    async def list_deliveries(self, webhook_id: str, window: Window) -> Page[Delivery]:
        query = {"webhook_id": webhook_id}
        return await window_page(self.deliveries, query, window, Delivery.from_doc)

    async def update_delivery(
        self, delivery_id: str, changes: Mapping[str, Any], *, expect_attempts: int | None = None
    ) -> Delivery | None:
        query: Doc = {"_id": delivery_id}
        if expect_attempts is not None:
            query["attempts"] = expect_attempts
        with _writing():
            doc = await self.deliveries.find_one_and_update(
                query,
                {"$set": {k: _native(v) for k, v in changes.items()}},
                return_document=ReturnDocument.AFTER,
            )
        return Delivery.from_doc(_from_mongo(doc)) if doc else None

    async def finish_deliveries(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any]]]
    ) -> None:
        writes: list[_Write] = [
            UpdateOne(
                {"_id": delivery_id, "attempts": attempts},
                {"$set": {k: _native(v) for k, v in changes.items()}},
            )
            for delivery_id, attempts, changes in updates
        ]
        for outcome in await _bulk(self.deliveries, WRITE_TIMEOUT, writes):
            if outcome is not None:
                raise outcome

    async def due_deliveries(self, before: datetime, limit: int) -> list[Delivery]:
        with _errors():
            docs = await (
                self.deliveries.find({"status": "pending", "next_attempt_at": {"$lte": before}})
                .sort([("next_attempt_at", ASCENDING), ("_id", ASCENDING)])
                .limit(limit)
                .to_list(None)
            )
        return [Delivery.from_doc(_from_mongo(d)) for d in docs]


async def _insert_missing(collection: AsyncCollection[Doc], deliveries: Sequence[Delivery]) -> None:
    """Insert the deliveries, those already there (by id) left as they are."""
    try:
        await collection.insert_many([_to_mongo(d.to_doc()) for d in deliveries], ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
            raise
