"""MongoDB: phone numbers, WABAs, and the partner grants that bring WABAs in."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from edge_onboard.storage.base import DuplicateError
from edge_onboard.storage.models import Delivery, Event, PartnerGrant, Phone, PhoneStatus, Waba
from edge_onboard.storage.mongo.connection import NEWEST, Doc, MongoBase, window_page
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import native as _native
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.docs import writing as _writing
from edge_onboard.storage.paging import Page, Window


class PhoneStore(MongoBase):
    # Phone numbers, WABAs and partner grants

    async def put_grant(self, grant: PartnerGrant) -> None:
        with _writing():
            await self.grants.replace_one({"_id": grant.id}, _to_mongo(grant.to_doc()), upsert=True)

    async def open_grants(self, now: datetime, limit: int) -> list[PartnerGrant]:
        query = {"closed_at": None, "$or": [{"retry_at": None}, {"retry_at": {"$lte": now}}]}
        with _errors():
            docs = (
                await self.grants.find(query).sort("received_at", ASCENDING).limit(limit).to_list()
            )
        return [PartnerGrant.from_doc(_from_mongo(d)) for d in docs]

    async def update_grant(self, grant_id: str, changes: Mapping[str, Any]) -> None:
        with _writing():
            await self.grants.update_one(
                {"_id": grant_id}, {"$set": {k: _native(v) for k, v in changes.items()}}
            )

    async def wabas_by_meta_id(self, meta_waba_id: str) -> list[Waba]:
        with _errors():
            docs = await self.wabas.find({"meta_waba_id": meta_waba_id}).to_list()
        return [Waba.from_doc(_from_mongo(d)) for d in docs]

    async def update_waba(
        self,
        waba_id: str,
        changes: Mapping[str, Any],
        *,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Waba | None:
        update = {"$set": {k: _native(v) for k, v in changes.items()}}

        async def apply(session: AsyncClientSession) -> Waba | None:
            doc = await self.wabas.find_one_and_update(
                {"_id": waba_id}, update, return_document=ReturnDocument.AFTER, session=session
            )
            if doc is None:
                return None
            if event is not None:
                await self._insert_event(event, deliveries, session)
            return Waba.from_doc(_from_mongo(doc))

        with _writing():
            async with self.client.start_session() as session:
                return await session.with_transaction(apply)

    async def find_phone_by_meta_id(self, org_id: str, meta_phone_number_id: str) -> Phone | None:
        with _errors():
            doc = await self.phones.find_one(
                {"org_id": org_id, "meta_phone_number_id": meta_phone_number_id}
            )
        return Phone.from_doc(_from_mongo(doc)) if doc else None

    async def phones_by_meta_id(self, meta_phone_number_id: str) -> list[Phone]:
        with _errors():
            docs = await self.phones.find({"meta_phone_number_id": meta_phone_number_id}).to_list(
                None
            )
        return [Phone.from_doc(_from_mongo(d)) for d in docs]

    async def get_phone(self, phone_id: str) -> Phone | None:
        with _errors():
            doc = await self.phones.find_one({"_id": phone_id})
        return Phone.from_doc(_from_mongo(doc)) if doc else None

    async def list_phones(self, org_id: str, window: Window, *, livemode: bool) -> Page[Phone]:
        query = {"org_id": org_id, "livemode": livemode}
        return await window_page(self.phones, query, window, Phone.from_doc, NEWEST)

    async def get_waba(self, waba_id: str) -> Waba | None:
        with _errors():
            doc = await self.wabas.find_one({"_id": waba_id})
        return Waba.from_doc(_from_mongo(doc)) if doc else None

    async def list_wabas(self, org_id: str, window: Window, *, livemode: bool) -> Page[Waba]:
        query = {"org_id": org_id, "livemode": livemode}
        return await window_page(self.wabas, query, window, Waba.from_doc, NEWEST)

    async def phones_of_wabas(self, waba_ids: Sequence[str]) -> list[Phone]:
        with _errors():
            docs = await self.phones.find({"waba_id": {"$in": list(waba_ids)}}).to_list()
        return [Phone.from_doc(_from_mongo(d)) for d in docs]

    async def insert_phone(
        self, phone: Phone, event: Event | None = None, deliveries: Sequence[Delivery] = ()
    ) -> bool:
        known = {"org_id": phone.org_id, "meta_phone_number_id": phone.meta_phone_number_id}

        async def apply(session: AsyncClientSession) -> bool:
            if await self.phones.find_one(known, {"_id": 1}, session=session) is not None:
                return False
            await self.phones.insert_one(_to_mongo(phone.to_doc()), session=session)
            if event is not None:
                await self._insert_event(event, deliveries, session)
            return True

        try:
            with _writing():
                async with self.client.start_session() as session:
                    return await session.with_transaction(apply)
        except DuplicateError:
            if await self.find_phone_by_meta_id(phone.org_id, phone.meta_phone_number_id):
                return False  # another request recorded the same number meanwhile
            raise

    async def update_phone(
        self,
        phone_id: str,
        changes: Mapping[str, Any],
        *,
        statuses: Collection[PhoneStatus] | None = None,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Phone | None:
        query: Doc = {"_id": phone_id}
        if statuses is not None:
            query["status"] = {"$in": [PhoneStatus(s).value for s in statuses]}
        update = {"$set": {k: _native(v) for k, v in changes.items()}}

        async def apply(session: AsyncClientSession) -> Phone | None:
            doc = await self.phones.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER, session=session
            )
            if doc is None:
                return None
            if event is not None:
                await self._insert_event(event, deliveries, session)
            return Phone.from_doc(_from_mongo(doc))

        with _writing():
            async with self.client.start_session() as session:
                return await session.with_transaction(apply)
