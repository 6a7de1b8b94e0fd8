"""MongoDB backend (``mongodb://…/db``): production, through PyMongo's native async API.

Indexes and unique constraints are created at ``open``. Conditional updates are
single ``find_one_and_update`` calls whose filter carries the condition, so the
store decides the race, not Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from edge_onboard.storage import mongo_events
from edge_onboard.storage.base import (
    Completed,
    Completion,
    DuplicateError,
    EventFilter,
    LinkCondition,
    LinkFilter,
    StorageError,
    UnsupportedServerError,
)
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.models import (
    ApiKey,
    Delivery,
    Event,
    IdempotencyRecord,
    LinkStatus,
    OnboardingLink,
    Organization,
    OutgoingWebhook,
    PartnerGrant,
    Phone,
    PhoneStatus,
    Waba,
)
from edge_onboard.storage.mongo_docs import WRITE_TIMEOUT
from edge_onboard.storage.mongo_docs import Write as _Write
from edge_onboard.storage.mongo_docs import bulk as _bulk
from edge_onboard.storage.mongo_docs import errors as _errors
from edge_onboard.storage.mongo_docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo_docs import native as _native
from edge_onboard.storage.mongo_docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo_docs import writing as _writing
from edge_onboard.storage.mongo_livemode import backfill_livemode
from edge_onboard.storage.mongo_paging import Branch, Hint, merged_window_docs, window_docs
from edge_onboard.storage.mongo_replicas import region_reads, replica_staleness
from edge_onboard.storage.paging import Key, Page, Window

Doc = dict[str, Any]
DEFAULT_DATABASE = "edge_onboard"


# Every list is of one mode (test or live): livemode follows org_id in each index.
_SCOPE = [("org_id", ASCENDING), ("livemode", ASCENDING)]
LINK_LIST_INDEXES: tuple[tuple[list[tuple[str, int]], list[tuple[str, int]]], ...] = (
    (_SCOPE, [("status", ASCENDING)]),
    ([*_SCOPE, ("status", ASCENDING)], [("expires_at", ASCENDING)]),
    ([*_SCOPE, ("external_id", ASCENDING)], [("status", ASCENDING)]),
)
_BY_DUE = [*_SCOPE, ("status", ASCENDING), ("expires_at", ASCENDING)]
_NEWEST = [*_SCOPE, ("created_at", DESCENDING), ("_id", DESCENDING)]


T = TypeVar("T")


def _link_list_hint(by_external_id: bool, plain_or_status: int) -> list[tuple[str, int]]:
    """The LINK_LIST_INDEXES entry serving a list: by externalId, else plain or by status."""
    prefix, suffix = LINK_LIST_INDEXES[2 if by_external_id else plain_or_status]
    return [*prefix, ("created_at", DESCENDING), ("_id", DESCENDING), *suffix]


async def window_page(
    collection: AsyncCollection[Doc],
    query: Doc,
    window: Window,
    decode: Callable[[Doc], T],
    hint: Hint = None,
) -> Page[T]:
    with _errors():
        docs, more, total, estimate = await window_docs(collection, query, window, hint)
    return Page([decode(_from_mongo(d)) for d in docs], more, total, estimate)


def _timeouts(url: str) -> dict[str, Any]:
    """Defaults that keep a request from hanging on a stopped or unreachable server: an
    operation (server selection, connecting and the reply included) gives up after 5 s,
    and the request answers 503. Options the URL sets itself win."""
    query = url.partition("?")[2].lower()
    defaults = {"timeoutMS": 5000, "serverSelectionTimeoutMS": 5000}
    return {name: ms for name, ms in defaults.items() if f"{name.lower()}=" not in query}


def _server_name(client: AsyncMongoClient[Doc]) -> str:
    """host:port of the server(s) the client was given, never the credentials."""
    nodes = client.topology_description.server_descriptions()
    return ", ".join(f"{host}:{port}" for host, port in nodes) or "the configured URL"


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


class MongoStorage:
    def __init__(
        self,
        url: str | None = None,
        *,
        client: AsyncMongoClient[Doc] | None = None,
        database: str | None = None,
        write_timeout: float = WRITE_TIMEOUT,
        max_staleness: int | None = None,
    ) -> None:
        # ``max_staleness``: a region other than the primary. It reads from the nearest
        # member no staler than that many seconds, and leaves the schema to the primary.
        self.replica_reads = max_staleness is not None
        if client is None:
            if url is None:
                raise ValueError("MongoStorage needs a URL or a client")
            client = AsyncMongoClient(
                url,
                tz_aware=True,
                tzinfo=UTC,
                appname="edge-onboard",
                **_timeouts(url),
                **region_reads(url, max_staleness),
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self.client: AsyncMongoClient[Doc] = client
        self.db: AsyncDatabase[Doc] = (
            client[database] if database else client.get_default_database(DEFAULT_DATABASE)
        )
        self.orgs = self.db["organizations"]
        self.keys = self.db["api_keys"]
        self.links = self.db["onboarding_links"]
        self.idem = self.db["idempotency_records"]
        self.wabas = self.db["wabas"]
        self.phones = self.db["phones"]
        self.webhooks = self.db["outgoing_webhooks"]
        self.events = self.db["events"]
        self.deliveries = self.db["webhook_deliveries"]
        self.grants = self.db["partner_grants"]
        # The writes on the hot path (a new link; an Idempotency-Key's claim and its
        # stored response): concurrent ones go to the server as one bulk write.
        self._link_writes: Coalescer[_Write, None] = Coalescer(
            functools.partial(_bulk, self.links, write_timeout)
        )
        self._idem_writes: Coalescer[_Write, None] = Coalescer(
            functools.partial(_bulk, self.idem, write_timeout)
        )

    @classmethod
    def from_url(cls, url: str, *, max_staleness: int | None = None) -> MongoStorage:
        return cls(url, max_staleness=max_staleness)

    def replica_staleness(self) -> float | None:
        """Seconds the nearest secondary lags the primary, as the driver estimates it
        for ``maxStalenessSeconds`` from the members' last heartbeats; None when no
        primary or no secondary is known."""
        return replica_staleness(self.client.topology_description)

    async def open(self) -> None:
        with _errors():
            hello = await self.client.admin.command("hello")
        # Completions are transactions: a standalone server would fail every signup
        # with 503, after Meta was already called. mongos ("isdbgrid") has them.
        if not hello.get("setName") and hello.get("msg") != "isdbgrid":
            raise UnsupportedServerError(
                f"MongoDB at {_server_name(self.client)} is a standalone server; edge-onboard "
                "needs a replica set (it uses transactions). Start mongod with --replSet rs0 "
                "and run rs.initiate() once (a one-node replica set will do), or use a "
                "managed cluster"
            )
        if self.replica_reads:
            return  # indexes and backfills are the primary region's to make
        with _errors():
            await self.orgs.create_index("name", unique=True)
            await self.keys.create_index("key_hash", unique=True)
            await self.keys.create_index("prefix")
            # Lists are index ranges (storage/mongo_paging.py): one index in list order per
            # filter, holding what the bounded count tests.
            for prefix, suffix in LINK_LIST_INDEXES:
                await self.links.create_index(
                    [*prefix, ("created_at", DESCENDING), ("_id", DESCENDING), *suffix]
                )
            await self.links.create_index([("status", ASCENDING), ("expires_at", ASCENDING)])
            await self.links.create_index(_BY_DUE)
            await self.idem.create_index([("org_id", ASCENDING), ("key", ASCENDING)], unique=True)
            await self.wabas.create_index(
                [("org_id", ASCENDING), ("meta_waba_id", ASCENDING)], unique=True
            )
            await self.phones.create_index(
                [("org_id", ASCENDING), ("meta_phone_number_id", ASCENDING)], unique=True
            )
            await self.phones.create_index(_NEWEST)
            await self.phones.create_index("meta_phone_number_id")
            await self.phones.create_index("waba_id")
            await self.wabas.create_index("meta_waba_id")
            await self.links.create_index("session_report.waba_id", sparse=True)
            await self.grants.create_index([("closed_at", ASCENDING), ("received_at", ASCENDING)])
            await self.wabas.create_index(_NEWEST)
            await self.webhooks.create_index(_NEWEST)
            await self.deliveries.create_index(
                [("webhook_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
            )
            await self.deliveries.create_index(
                [("status", ASCENDING), ("next_attempt_at", ASCENDING)]
            )
            await mongo_events.create_indexes(self.events, self.deliveries)
            # MongoDB removes expired idempotency records by itself.
            await self.idem.create_index("expires_at", expireAfterSeconds=0)
            await backfill_livemode(
                self.db,
                [self.links, self.phones, self.wabas, self.webhooks, self.events, self.grants],
            )

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()

    async def ping(self) -> None:
        with _errors():
            await self.db.command("ping")

    # Organisations

    async def get_or_create_org(self, org: Organization) -> Organization:
        for _ in range(3):
            try:
                with _writing():
                    doc = await self.orgs.find_one_and_update(
                        {"name": org.name},
                        {"$setOnInsert": _to_mongo(org.to_doc())},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
            except DuplicateError:
                continue  # two upserts raced on the unique name: the other one won
            assert doc is not None
            return Organization.from_doc(_from_mongo(doc))
        raise StorageError("mongodb: could not create the organisation")

    async def get_org(self, org_id: str) -> Organization | None:
        with _errors():
            doc = await self.orgs.find_one({"_id": org_id})
        return Organization.from_doc(_from_mongo(doc)) if doc else None

    async def update_org(self, org_id: str, changes: Mapping[str, Any]) -> Organization | None:
        with _writing():
            doc = await self.orgs.find_one_and_update(
                {"_id": org_id},
                {"$set": _to_mongo(changes)},
                return_document=ReturnDocument.AFTER,
            )
        return Organization.from_doc(_from_mongo(doc)) if doc else None

    # API keys

    async def insert_api_key(self, key: ApiKey) -> None:
        with _writing():
            await self.keys.insert_one(_to_mongo(key.to_doc()))

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with _errors():
            doc = await self.keys.find_one({"key_hash": key_hash})
        return ApiKey.from_doc(_from_mongo(doc)) if doc else None

    async def find_api_keys(self, id_or_prefix: str) -> list[ApiKey]:
        import re

        query = {
            "$or": [{"_id": id_or_prefix}, {"prefix": {"$regex": "^" + re.escape(id_or_prefix)}}]
        }
        with _errors():
            docs = await self.keys.find(query).to_list(None)
        return [ApiKey.from_doc(_from_mongo(d)) for d in docs]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        with _writing():
            result = await self.keys.update_one(
                {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
            )
        return result.modified_count == 1

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
            ordered = _link_list_hint(flt.external_id is not None, 1)
            by_due = _BY_DUE
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
        hint = _link_list_hint(flt.external_id is not None, 0 if flt.status is None else 1)
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

    async def get_phone(self, phone_id: str) -> Phone | None:
        with _errors():
            doc = await self.phones.find_one({"_id": phone_id})
        return Phone.from_doc(_from_mongo(doc)) if doc else None

    async def list_phones(self, org_id: str, window: Window, *, livemode: bool) -> Page[Phone]:
        query = {"org_id": org_id, "livemode": livemode}
        return await window_page(self.phones, query, window, Phone.from_doc, _NEWEST)

    async def get_waba(self, waba_id: str) -> Waba | None:
        with _errors():
            doc = await self.wabas.find_one({"_id": waba_id})
        return Waba.from_doc(_from_mongo(doc)) if doc else None

    async def list_wabas(self, org_id: str, window: Window, *, livemode: bool) -> Page[Waba]:
        query = {"org_id": org_id, "livemode": livemode}
        return await window_page(self.wabas, query, window, Waba.from_doc, _NEWEST)

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
        return await window_page(self.webhooks, query, window, OutgoingWebhook.from_doc, _NEWEST)

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

    # Events and deliveries

    async def _insert_event(
        self, event: Event, deliveries: Sequence[Delivery], session: AsyncClientSession
    ) -> None:
        await self.events.insert_one(_to_mongo(event.to_doc()), session=session)
        if deliveries:
            await self.deliveries.insert_many(
                [_to_mongo(d.to_doc()) for d in deliveries], session=session
            )

    async def record_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        async def apply(session: AsyncClientSession) -> None:
            await self._insert_event(event, deliveries, session)

        with _writing():
            async with self.client.start_session() as session:
                await session.with_transaction(apply)

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

    # Idempotency

    async def claim_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        doc = record.to_doc()
        for _ in range(5):
            try:
                await self._idem_writes.submit(InsertOne(dict(doc)))
                return None
            except DuplicateError:
                pass
            with _writing():
                # An expired record (not yet swept by the TTL monitor) is taken over.
                replaced = await self.idem.find_one_and_replace(
                    {
                        "org_id": record.org_id,
                        "key": record.key,
                        "$or": [
                            {"expires_at": {"$lte": record.created_at}},
                            {"status_code": None, "locked_until": {"$lte": record.created_at}},
                        ],
                    },
                    dict(doc),
                )
                if replaced is not None:
                    return None
                existing = await self.idem.find_one({"org_id": record.org_id, "key": record.key})
            if existing is not None:
                return IdempotencyRecord.from_doc(_from_mongo(existing))
        raise StorageError("mongodb: idempotency record kept changing")

    async def complete_idempotency(
        self, org_id: str, key: str, status_code: int, body: bytes
    ) -> None:
        await self._idem_writes.submit(
            UpdateOne(
                {"org_id": org_id, "key": key},
                {"$set": {"status_code": status_code, "body": body}},
            )
        )

    async def release_idempotency(self, org_id: str, key: str) -> None:
        with _writing():
            await self.idem.delete_one({"org_id": org_id, "key": key})
