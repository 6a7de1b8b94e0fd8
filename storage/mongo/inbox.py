"""MongoDB: Meta's inbound bodies, recorded before they are acknowledged (the inbox).

Each call is one single-document write (an insert, a conditional update, a delete): no
transaction, so a process killed mid-write leaves nothing held on the server."""

from __future__ import annotations

from datetime import datetime

from bson import Binary
from pymongo import ASCENDING, ReturnDocument

from edge_onboard.storage.base import DuplicateError
from edge_onboard.storage.models import InboxItem
from edge_onboard.storage.mongo.connection import Doc, MongoBase
from edge_onboard.storage.mongo.docs import writing as _writing


def _item(doc: Doc) -> InboxItem:
    return InboxItem(
        id=doc["_id"],
        body=bytes(doc["body"]),
        livemode=doc.get("livemode"),
        received_at=doc["received_at"],
        lease_until=doc["lease_until"],
    )


class InboxStore(MongoBase):
    # Meta's inbound

    async def put_inbox(self, item: InboxItem) -> bool:
        doc = {
            "_id": item.id,
            "body": Binary(item.body),
            "livemode": item.livemode,
            "received_at": item.received_at,
            "lease_until": item.lease_until,
        }
        try:
            with _writing():
                await self.inbox.insert_one(doc)
        except DuplicateError:
            return False
        return True

    async def claim_inbox(self, now: datetime, until: datetime, limit: int) -> list[InboxItem]:
        claimed: list[InboxItem] = []
        with _writing():
            while len(claimed) < limit:
                doc = await self.inbox.find_one_and_update(
                    {"lease_until": {"$lte": now}, "_id": {"$nin": [i.id for i in claimed]}},
                    {"$set": {"lease_until": until}},
                    sort=[("lease_until", ASCENDING)],
                    return_document=ReturnDocument.AFTER,
                )
                if doc is None:
                    break
                claimed.append(_item(doc))
        return claimed

    async def delete_inbox(self, item_id: str) -> None:
        with _writing():
            await self.inbox.delete_one({"_id": item_id})
