"""MongoDB: an organisation's outgoing webhooks."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pymongo import ReturnDocument

from edge_onboard.storage.models import OutgoingWebhook
from edge_onboard.storage.mongo.connection import NEWEST, Doc, MongoBase, window_page
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import native as _native
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.docs import writing as _writing
from edge_onboard.storage.paging import Page, Window


class WebhookStore(MongoBase):
    # Outgoing webhooks

    async def insert_webhook(self, webhook: OutgoingWebhook) -> None:
        with _writing():
            await self.webhooks.insert_one(_to_mongo(webhook.to_doc()))

    async def get_webhook(self, webhook_id: str) -> OutgoingWebhook | None:
        with _errors():
            doc = await self.webhooks.find_one({"_id": webhook_id})
        return OutgoingWebhook.from_doc(_from_mongo(doc)) if doc else None

    async def get_webhooks(self, webhook_ids: Collection[str]) -> list[OutgoingWebhook]:
        with _errors():
            docs = await self.webhooks.find({"_id": {"$in": list(set(webhook_ids))}}).to_list(None)
        return [OutgoingWebhook.from_doc(_from_mongo(d)) for d in docs]

    async def list_webhooks(
        self, org_id: str, window: Window, *, livemode: bool
    ) -> Page[OutgoingWebhook]:
        query = {"org_id": org_id, "livemode": livemode, "deleted_at": None}
        return await window_page(self.webhooks, query, window, OutgoingWebhook.from_doc, NEWEST)

    async def active_webhooks(self, org_id: str, *, livemode: bool) -> list[OutgoingWebhook]:
        with _errors():
            docs = await self.webhooks.find(
                {"org_id": org_id, "livemode": livemode, "deleted_at": None, "status": "active"}
            ).to_list(None)
        return [OutgoingWebhook.from_doc(_from_mongo(d)) for d in docs]

    async def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        changes: Mapping[str, Any],
        *,
        expect_secret_enc: str | None = None,
    ) -> OutgoingWebhook | None:
        query: Doc = {"_id": webhook_id, "org_id": org_id, "deleted_at": None}
        if expect_secret_enc is not None:
            query["secret_enc"] = expect_secret_enc
        with _writing():
            doc = await self.webhooks.find_one_and_update(
                query,
                {"$set": {k: _native(v) for k, v in changes.items()}},
                return_document=ReturnDocument.AFTER,
            )
        return OutgoingWebhook.from_doc(_from_mongo(doc)) if doc else None
