"""MongoDB failover on a real 3-member replica set (three mongod processes).

Clients create links, complete signups (against the sandbox's fake Meta) and post
Meta's inbound messages without pause, while the primary is first stepped down
(``replSetStepDown``, as in a maintenance) and then the new primary killed (SIGKILL, as
when its machine dies). The service uses the driver as it intends: retryable writes,
and transactions through ``with_transaction`` (which retries on
TransientTransactionError and UnknownTransactionCommitResult), all within the store's
5 s operation timeout. Clients do what the answers tell them: after a 503 they wait
Retry-After and send the same request again (the same Idempotency-Key; Meta resends
the same message; the end-user signs up again in the popup).

Then: every acknowledged write is there, no completion is half-made, nothing is stored
twice, and clients saw no error but 503 with Retry-After, and only during an election.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import orjson
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET, SandboxMeta
from edge_onboard.storage.mongo import MongoStorage
from tests import services
from tests.conftest import AppClient, FakeClock, make_settings, running_app
from tests.meta.test_inbound import messages_payload

pytestmark = [pytest.mark.anyio, pytest.mark.mongo]
# A request "during an election" overlaps one: from the failure until a primary is
# elected, plus the time the driver takes to find it (it probes every 0.5 s meanwhile).
FIND_PRIMARY = 1.0
WORKERS = {"create": 3, "complete": 2, "inbound": 2}
# What a completion's transaction writes besides the link, the WABA and the phone.
COMPLETION_EVENTS = ("waba.connected", "phone_number.connected")
Request = Callable[[], Awaitable[httpx.Response]]


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    stream: str
    path: str
    started: float
    ended: float
    status: int
    retry_after: str | None
    code: str | None  # the error's code, if any


class Clients:
    """What every client saw, and what the service acknowledged to them."""

    def __init__(self, client: AppClient, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth
        self.answers: list[Answer] = []
        self.created: dict[str, str] = {}  # externalId → link id, from each 201
        self.completed: set[str] = set()  # link ids whose callback said success
        self.attempted: set[str] = set()  # link ids a signup was tried on
        self.received: set[str] = set()  # Meta message ids answered 200
        self.stop = anyio.Event()

    async def send(self, stream: str, request: Request) -> int:
        """Send until the answer is not a 503, waiting Retry-After between; the status."""
        while True:
            started = time.monotonic()
            response = await request()
            retry_after = response.headers.get("retry-after")
            status = response.status_code
            code = _error_code(response) if status >= 300 else None
            path = response.request.url.path
            self.answers.append(
                Answer(stream, path, started, time.monotonic(), status, retry_after, code)
            )
            if status != 503:
                return status
            await anyio.sleep(float(retry_after or 1))  # the page: the end-user tries again

    async def create(self, name: str, stream: str = "create") -> str | None:
        """A link, created once whatever the retries (its Idempotency-Key)."""
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        body = {"name": name, "externalId": name}
        answer: dict[str, Any] = {}

        async def post() -> httpx.Response:
            response = await self.client.post("/v1/onboarding-links", json=body, headers=headers)
            answer.update(response.json() if response.status_code == 201 else {})
            return response

        if await self.send(stream, post) != 201:
            return None
        self.created[name] = answer["data"]["id"]
        return str(answer["data"]["id"])

    async def creating(self, worker: int) -> None:
        n = 0
        while not self.stop.is_set():
            await self.create(f"c{worker}-{n}")
            n += 1

    async def completing(self, worker: int, sandbox: SandboxMeta) -> None:
        n = 0
        while not self.stop.is_set():
            link_id = await self.create(f"s{worker}-{n}", stream="complete")
            n += 1
            if link_id is not None:
                self.attempted.add(link_id)
                if await self.send("complete", self.signup(sandbox, link_id)) == 200:
                    self.completed.add(link_id)

    def signup(self, sandbox: SandboxMeta, link_id: str) -> Request:
        async def callback() -> httpx.Response:
            # Each try is a new signup in the popup: Meta's codes are single-use.
            session = sandbox.finish("ok")
            data = session["data"]
            body = {
                "code": session["code"],
                "wabaId": data["waba_id"],
                "phoneNumberId": data["phone_number_id"],
            }
            return await self.client.post(f"/signup/{link_id}/callback", json=body)

        return callback

    async def posting(self, worker: int, phone_id: str, meta_phone: str) -> None:
        n = 0
        while not self.stop.is_set():
            message_id = f"wamid.F{worker}-{n}"
            n += 1
            raw = orjson.dumps(messages_payload(meta_phone, message_id=message_id))
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign_body(APP_SECRET, raw),
            }
            post = functools.partial(
                self.client.post, f"/webhook/phone/{phone_id}", content=raw, headers=headers
            )
            if await self.send("inbound", post) == 200:  # Meta resends the same body
                self.received.add(message_id)


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except ValueError:
        return response.text[:40]
    return error.get("code") if isinstance(error, dict) else None


@contextlib.contextmanager
def replica_set() -> Iterator[services.ReplicaSetMembers]:
    try:
        with services.mongo_replica_set() as members:
            yield members
    except services.ServiceUnavailable as exc:
        services.unavailable(f"test service missing: {exc}")


@contextlib.asynccontextmanager
async def app_on(url: str) -> AsyncIterator[tuple[AppClient, MongoStorage]]:
    store = MongoStorage(url, database="edge_failover")
    await store.open()
    settings = make_settings(
        EDGE_SANDBOX="1",
        EDGE_RATE_LIMIT_API="100000",
        EDGE_RATE_LIMIT_PUBLIC="100000",
        EDGE_RATE_LIMIT_INBOUND="100000",
    )
    try:
        async with running_app(store, FakeClock(datetime.now(UTC)), settings) as client:
            yield client, store
    finally:
        await store.close()


async def connect_phone(client: AppClient, auth: dict[str, str]) -> tuple[str, str]:
    """A completed signup: the phone's id and its Meta id, for inbound messages."""
    created = await client.post("/v1/onboarding-links", json={"name": "inbound"}, headers=auth)
    link_id = created.json()["data"]["id"]
    sandbox = client.services.sandbox
    assert sandbox is not None
    session = sandbox.finish("ok")
    data = session["data"]
    done = await client.post(
        f"/signup/{link_id}/callback",
        json={
            "code": session["code"],
            "wabaId": data["waba_id"],
            "phoneNumberId": data["phone_number_id"],
        },
    )
    assert done.status_code == 200, done.text
    link = (await client.get(f"/v1/onboarding-links/{link_id}", headers=auth)).json()["data"]
    return str(link["phoneNumberId"]), str(data["phone_number_id"])


async def test_failover_loses_no_acknowledged_write() -> None:
    with replica_set() as members:
        async with app_on(members.url) as (client, store):
            _, _, key = await create_key(store, "acme", datetime.now(UTC))
            clients = Clients(client, {"Authorization": f"Bearer {key}"})
            sandbox = client.services.sandbox
            assert sandbox is not None
            phone_id, meta_phone = await connect_phone(client, clients.auth)
            elections: list[tuple[float, float]] = []

            async def failover(fail: Callable[[], object]) -> None:
                started = time.monotonic()
                await anyio.to_thread.run_sync(fail)
                await anyio.to_thread.run_sync(members.wait_for_primary)
                elections.append((started, time.monotonic()))

            began = time.monotonic()
            async with anyio.create_task_group() as tg:
                for worker in range(WORKERS["create"]):
                    tg.start_soon(clients.creating, worker)
                for worker in range(WORKERS["complete"]):
                    tg.start_soon(clients.completing, worker, sandbox)
                for worker in range(WORKERS["inbound"]):
                    tg.start_soon(clients.posting, worker, phone_id, meta_phone)
                await anyio.sleep(2)
                await failover(members.step_down)  # a maintenance: the primary steps down
                await anyio.sleep(3)
                primary = await anyio.to_thread.run_sync(members.wait_for_primary)
                await failover(lambda: members.kill(primary))  # its machine dies
                await anyio.sleep(3)
                clients.stop.set()
            ran = time.monotonic() - began

            await check_answers(clients, elections)
            await check_store(clients, store)
    report(clients, elections, ran)


async def check_answers(clients: Clients, elections: list[tuple[float, float]]) -> None:
    errors = [a for a in clients.answers if a.status >= 300]
    wrong = [a for a in errors if a.status != 503 or a.code != "storage_unavailable"]
    assert not wrong, f"errors other than 503 storage_unavailable: {wrong[:5]}"
    # The hosted page's callback answers in the page's own shape, which carries no
    # Retry-After (edge_onboard/hosted/routes.py): the page offers the end-user a retry.
    unpaced = [a for a in errors if a.retry_after is None and not a.path.endswith("/callback")]
    assert not unpaced, f"503s without Retry-After: {unpaced[:5]}"

    def during_an_election(answer: Answer) -> bool:
        return any(
            answer.started <= end + FIND_PRIMARY and answer.ended >= start
            for start, end in elections
        )

    outside = [a for a in errors if not during_an_election(a)]
    assert not outside, f"503s outside the elections {elections}: {outside[:5]}"


async def check_store(clients: Clients, store: MongoStorage) -> None:
    # Every acknowledged link is there, once: retries with the Idempotency-Key made none twice.
    names = list(clients.created)
    found: dict[str, list[str]] = {}
    async for doc in store.links.find({"external_id": {"$in": names}}, {"external_id": 1}):
        found.setdefault(doc["external_id"], []).append(doc["_id"])
    assert {name: [clients.created[name]] for name in names} == found

    # A completion is all there (link completed, WABA, phone, each event once) or not at
    # all; and a link whose attempt failed is free again (no claim left behind).
    async for doc in store.links.find({"_id": {"$in": list(clients.attempted)}}):
        events: dict[str, int] = {}
        async for event in store.events.find({"data.onboardingLinkId": doc["_id"]}, {"type": 1}):
            events[event["type"]] = events.get(event["type"], 0) + 1
        made = {kind: events.get(kind, 0) for kind in COMPLETION_EVENTS}
        if doc["status"] == "completed":
            assert await store.wabas.count_documents({"_id": doc["waba_id"]}) == 1
            assert await store.phones.count_documents({"_id": doc["phone_number_id"]}) == 1
            assert made == dict.fromkeys(COMPLETION_EVENTS, 1), (doc["_id"], events)
        else:
            assert doc["_id"] not in clients.completed, "an acknowledged completion was lost"
            assert doc["status"] == "pending" and doc.get("claim_id") is None, doc
            assert made == dict.fromkeys(COMPLETION_EVENTS, 0), (doc["_id"], events)
            assert await store.phones.count_documents({"onboarding_link_id": doc["_id"]}) == 0

    # Every message Meta got a 200 for is one event.
    counts: dict[str, int] = {}
    query = {"type": "message.received", "data.metaMessageId": {"$in": list(clients.received)}}
    async for event in store.events.find(query, {"data.metaMessageId": 1}):
        message_id = event["data"]["metaMessageId"]
        counts[message_id] = counts.get(message_id, 0) + 1
    assert counts == dict.fromkeys(clients.received, 1)


def report(clients: Clients, elections: list[tuple[float, float]], ran: float) -> None:
    ok = sorted(a.ended for a in clients.answers if a.status < 300)
    gap = max(later - earlier for earlier, later in itertools.pairwise(ok))
    unavailable = sum(1 for a in clients.answers if a.status == 503)
    by_stream = {
        stream: sum(1 for a in clients.answers if a.stream == stream and a.status == 503)
        for stream in WORKERS
    }
    step_down, kill = (f"{end - start:.1f} s" for start, end in elections)
    print(
        f"\n{len(clients.answers)} requests in {ran:.0f} s: {len(clients.created)} links created, "
        f"{len(clients.completed)} signups completed, {len(clients.received)} inbound messages; "
        f"{unavailable} answered 503 ({by_stream}); new primary after the step-down in "
        f"{step_down}, after the kill in {kill}; longest gap between successful answers "
        f"{gap:.1f} s"
    )
