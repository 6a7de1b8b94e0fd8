"""The MongoDB backend's client, its collections and indexes, and what every kind shares."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, Self, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from edge_onboard.storage.base import UnsupportedServerError
from edge_onboard.storage.batch import Coalescer
from edge_onboard.storage.models import Delivery, Event
from edge_onboard.storage.mongo import events as mongo_events
from edge_onboard.storage.mongo.docs import WRITE_TIMEOUT
from edge_onboard.storage.mongo.docs import Write as _Write
from edge_onboard.storage.mongo.docs import bulk as _bulk
from edge_onboard.storage.mongo.docs import errors as _errors
from edge_onboard.storage.mongo.docs import from_mongo as _from_mongo
from edge_onboard.storage.mongo.docs import to_mongo as _to_mongo
from edge_onboard.storage.mongo.livemode import backfill_livemode
from edge_onboard.storage.mongo.paging import Hint, window_docs
from edge_onboard.storage.mongo.replicas import region_reads, replica_staleness
from edge_onboard.storage.paging import Page, Window

Doc = dict[str, Any]
DEFAULT_DATABASE = "edge_onboard"


# Every list is of one mode (test or live): livemode follows org_id in each index.
_SCOPE = [("org_id", ASCENDING), ("livemode", ASCENDING)]
LINK_LIST_INDEXES: tuple[tuple[list[tuple[str, int]], list[tuple[str, int]]], ...] = (
    (_SCOPE, [("status", ASCENDING)]),
    ([*_SCOPE, ("status", ASCENDING)], [("expires_at", ASCENDING)]),
    ([*_SCOPE, ("external_id", ASCENDING)], [("status", ASCENDING)]),
)
BY_DUE = [*_SCOPE, ("status", ASCENDING), ("expires_at", ASCENDING)]
NEWEST = [*_SCOPE, ("created_at", DESCENDING), ("_id", DESCENDING)]


T = TypeVar("T")


def link_list_hint(by_external_id: bool, plain_or_status: int) -> list[tuple[str, int]]:
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


class MongoBase:
    """What every record kind's methods share: the client, the collections, their indexes
    (created at ``open``) and the batched writes on the hot path."""

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
        self.inbox = self.db["inbox"]  # Meta's inbound, recorded before it is acknowledged
        # The writes on the hot path (a new link; an Idempotency-Key's claim and its
        # stored response): concurrent ones go to the server as one bulk write.
        self._link_writes: Coalescer[_Write, None] = Coalescer(
            functools.partial(_bulk, self.links, write_timeout)
        )
        self._idem_writes: Coalescer[_Write, None] = Coalescer(
            functools.partial(_bulk, self.idem, write_timeout)
        )

    @classmethod
    def from_url(cls, url: str, *, max_staleness: int | None = None) -> Self:
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
            # Lists are index ranges (storage/mongo/paging.py): one index in list order per
            # filter, holding what the bounded count tests.
            for prefix, suffix in LINK_LIST_INDEXES:
                await self.links.create_index(
                    [*prefix, ("created_at", DESCENDING), ("_id", DESCENDING), *suffix]
                )
            await self.links.create_index([("status", ASCENDING), ("expires_at", ASCENDING)])
            await self.links.create_index(BY_DUE)
            await self.idem.create_index([("org_id", ASCENDING), ("key", ASCENDING)], unique=True)
            await self.wabas.create_index(
                [("org_id", ASCENDING), ("meta_waba_id", ASCENDING)], unique=True
            )
            await self.phones.create_index(
                [("org_id", ASCENDING), ("meta_phone_number_id", ASCENDING)], unique=True
            )
            await self.phones.create_index(NEWEST)
            await self.phones.create_index("meta_phone_number_id")
            await self.phones.create_index("waba_id")
            await self.wabas.create_index("meta_waba_id")
            await self.links.create_index("session_report.waba_id", sparse=True)
            await self.grants.create_index([("closed_at", ASCENDING), ("received_at", ASCENDING)])
            await self.wabas.create_index(NEWEST)
            await self.webhooks.create_index(NEWEST)
            await self.deliveries.create_index(
                [("webhook_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
            )
            await self.deliveries.create_index(
                [("status", ASCENDING), ("next_attempt_at", ASCENDING)]
            )
            await mongo_events.create_indexes(self.events, self.deliveries)
            await self.inbox.create_index("lease_until")
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

    async def _insert_event(
        self, event: Event, deliveries: Sequence[Delivery], session: AsyncClientSession
    ) -> None:
        await self.events.insert_one(_to_mongo(event.to_doc()), session=session)
        if deliveries:
            await self.deliveries.insert_many(
                [_to_mongo(d.to_doc()) for d in deliveries], session=session
            )
