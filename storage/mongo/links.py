"""MongoDB: onboarding links, their sweep to expired, and the completion that closes one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, InsertOne, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from edge_onboard.storage.base import Completed, Completion, LinkCondition, LinkFilter
from edge_onboard.storage.models import LinkStatus, OnboardingLink, Phone, Waba
from edge_onboard.storage.mongo.connection import (
    BY_DUE,
    Doc,
    MongoBase,
    link_list_hint,
    window_page,
)
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import native as _native
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.docs import writing as _writing
from edge_onboard.storage.mongo.paging import Branch, merged_window_docs
from edge_onboard.storage.paging import Page, Window


class _ClaimLost(Exception):
    """Aborts a completion transaction whose link claim is gone."""


def _add_condition(query: Doc, condition: LinkCondition) -> None:
    query["status"] = {"$in": [LinkStatus(s).value for s in condition.statuses]}
    if condition.unexpired_at is not None:
        query["expires_at"] = {"$gt": condition.unexpired_at}
    if condition.unclaimed_at is not None:
        query["$or"] = [
            {"claimed_until": None},
            {"claimed_until": {"$lte": condition.unclaimed_at}},
        ]
    if condition.claim_id is not None:
        query["claim_id"] = condition.claim_id
    if condition.unopened:
        query["opened_at"] = None


def _upsert(doc: Doc) -> Doc:
    """Update by a natural key, keeping the record id and creation time of an existing one."""
    fields = {k: v for k, v in doc.items() if k not in {"_id", "created_at"}}
    return {"$set": fields, "$setOnInsert": {"_id": doc["_id"], "created_at": doc["created_at"]}}


class LinkStore(MongoBase):
    # Onboarding links

    async def insert_link(self, link: OnboardingLink) -> None:
        doc = link.to_doc()  # plain values already: only the id needs renaming
        doc["_id"] = doc.pop("id")
        with _errors():  # encoded here, so a value BSON cannot hold fails this link only
            raw = RawBSONDocument(bson.encode(doc))
        await self._link_writes.submit(InsertOne(raw))

    async def get_link(self, link_id: str) -> OnboardingLink | None:
        with _errors():
            doc = await self.links.find_one({"_id": link_id})
        return OnboardingLink.from_doc(_from_mongo(doc)) if doc else None

    async def list_links(
        self, org_id: str, flt: LinkFilter, window: Window
    ) -> Page[OnboardingLink]:
        query: Doc = {"org_id": org_id, "livemode": flt.livemode}
        if flt.external_id is not None:
            query["external_id"] = flt.external_id
        if flt.status is None:
            query["status"] = {"$ne": LinkStatus.DELETED.value}
        elif flt.as_of is None or flt.status is LinkStatus.COMPLETED:
            query["status"] = flt.status.value
        else:
            # Past due but claimed by a completion: still pending. Two branches: one an
            # index range in list order, one the few links past their expiry (the sweep
            # stores them as expired), read by (org_id, status, expires_at).
            pending = {**query, "status": LinkStatus.PENDING.value}
            due = {**pending, "expires_at": {"$lte": flt.as_of}}
            ordered = link_list_hint(flt.external_id is not None, 1)
            by_due = BY_DUE
            branches: list[Branch]
            if flt.status is LinkStatus.PENDING:
                branches = [
                    ({**pending, "expires_at": {"$gt": flt.as_of}}, ordered),
                    ({**due, "claimed_until": {"$gt": flt.as_of}}, by_due),
                ]
            else:
                branches = [
                    ({**query, "status": LinkStatus.EXPIRED.value}, ordered),
                    ({**due, "claimed_until": {"$not": {"$gt": flt.as_of}}}, by_due),
                ]
            with _errors():
                docs, more, total, estimate = await merged_window_docs(self.links, branches, window)
            return Page(
                [OnboardingLink.from_doc(_from_mongo(d)) for d in docs], more, total, estimate
            )
        hint = link_list_hint(flt.external_id is not None, 0 if flt.status is None else 1)
        return await window_page(self.links, query, window, OnboardingLink.from_doc, hint)

    async def update_link(
        self,
        org_id: str,
        link_id: str,
        condition: LinkCondition,
        changes: Mapping[str, Any],
    ) -> OnboardingLink | None:
        query: Doc = {"_id": link_id, "org_id": org_id}
        _add_condition(query, condition)
        with _writing():
            doc = await self.links.find_one_and_update(
                query,
                {"$set": {k: _native(v) for k, v in changes.items()}},
                return_document=ReturnDocument.AFTER,
            )
        return OnboardingLink.from_doc(_from_mongo(doc)) if doc else None

    async def expire_due_links(self, now: datetime, limit: int) -> list[OnboardingLink]:
        return await self._expire({}, now, limit)

    async def _expire(self, scope: Doc, now: datetime, limit: int) -> list[OnboardingLink]:
        due: Doc = {
            **scope,
            "status": LinkStatus.PENDING.value,
            "expires_at": {"$lte": now},
            "$or": [{"claimed_until": None}, {"claimed_until": {"$lte": now}}],
        }
        moved: list[OnboardingLink] = []
        with _writing():
            docs = (
                await self.links.find(due, {"_id": 1})
                .sort("expires_at", ASCENDING)
                .limit(limit)
                .to_list()
            )
            for doc in docs:
                # One by one, conditionally: only the request that moves a link reports it.
                updated = await self.links.find_one_and_update(
                    {**due, "_id": doc["_id"]},
                    {"$set": {"status": LinkStatus.EXPIRED.value, "updated_at": now}},
                    return_document=ReturnDocument.AFTER,
                )
                if updated is not None:
                    moved.append(OnboardingLink.from_doc(_from_mongo(updated)))
        return moved

    async def pending_links_by_session_waba(self, meta_waba_id: str) -> list[OnboardingLink]:
        query = {"session_report.waba_id": meta_waba_id, "status": LinkStatus.PENDING.value}
        with _errors():
            docs = await self.links.find(query).to_list()
        return [OnboardingLink.from_doc(_from_mongo(d)) for d in docs]

    async def complete_link(self, completion: Completion) -> Completed | None:
        async def apply(session: AsyncClientSession) -> Completed:
            waba_doc = _to_mongo(completion.waba.to_doc())
            waba = await self.wabas.find_one_and_update(
                {"org_id": completion.org_id, "meta_waba_id": completion.waba.meta_waba_id},
                _upsert(waba_doc),
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            assert waba is not None
            phone = None
            if completion.phone is not None:
                phone_doc = _to_mongo(completion.phone.to_doc())
                phone_doc["waba_id"] = waba["_id"]
                phone = await self.phones.find_one_and_update(
                    {
                        "org_id": completion.org_id,
                        "meta_phone_number_id": completion.phone.meta_phone_number_id,
                    },
                    _upsert(phone_doc),
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                assert phone is not None
            query: Doc = {"_id": completion.link_id, "org_id": completion.org_id}
            _add_condition(
                query,
                LinkCondition(statuses={LinkStatus.PENDING}, claim_id=completion.claim_id),
            )
            changes = {k: _native(v) for k, v in completion.link_changes.items()}
            changes.update(phone_number_id=phone["_id"] if phone else None, waba_id=waba["_id"])
            link = await self.links.find_one_and_update(
                query, {"$set": changes}, return_document=ReturnDocument.AFTER, session=session
            )
            if link is None:
                raise _ClaimLost
            if completion.webhook is not None:
                await self.webhooks.insert_one(
                    _to_mongo(completion.webhook.to_doc()), session=session
                )
            for event in completion.events:
                await self._insert_event(event, completion.deliveries_of(event), session)
            return Completed(
                OnboardingLink.from_doc(_from_mongo(link)),
                Waba.from_doc(_from_mongo(waba)),
                Phone.from_doc(_from_mongo(phone)) if phone else None,
            )

        try:
            with _writing():
                async with self.client.start_session() as session:
                    return await session.with_transaction(apply)
        except _ClaimLost:
            return None
