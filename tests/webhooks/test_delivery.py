"""Outgoing webhooks: the API, fan-out, signing and the delivery engine (fake clock)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from edge_onboard.api.auth import create_key, hash_key
from edge_onboard.services import Services
from edge_onboard.storage import DeliveryStatus, Storage
from edge_onboard.webhooks.delivery import SCHEDULE, Sender, parse_retry_after, sign
from edge_onboard.webhooks.queue.memory import MemoryQueue
from tests.api.test_links_api import assert_error
from tests.conftest import FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


class Receiver:
    """Records what the engine sends; answers with the scripted statuses (200 after)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: dict[str, list[int | httpx.Response]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.script.get(request.headers["host"].split(":")[0] + request.url.path, [])
        if answers:
            answer = answers.pop(0)
            return answer if isinstance(answer, httpx.Response) else httpx.Response(answer)
        return httpx.Response(200, text="ok")

    def to(self, host_path: str) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.headers["host"].split(":")[0] + r.url.path == host_path
        ]


class Harness:
    def __init__(
        self, client: httpx.AsyncClient, services: Services, clock: FakeClock, receiver: Receiver
    ) -> None:
        self.client = client
        self.services = services
        self.clock = clock
        self.receiver = receiver
        self.auth: dict[str, str] = {}

    async def webhook(
        self, url: str, events: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"url": url, "events": events or ["phone_number.connected"], **extra}
        response = await self.client.post("/v1/outgoing-webhooks", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def emit(self, data: dict[str, Any] | None = None, waba_id: str | None = None) -> str:
        key = await self.services.storage.get_api_key_by_hash(
            hash_key(self.auth["Authorization"][7:])
        )
        assert key is not None
        event = await self.services.webhooks.emit(
            key.org_id, "phone_number.connected", data or {"n": 1}, waba_id=waba_id, livemode=True
        )
        assert event is not None
        return event.id

    async def drain(self) -> int:
        return await self.services.engine.drain()

    async def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/outgoing-webhooks/{webhook_id}/deliveries", headers=self.auth
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["data"]
        return items


@pytest.fixture
async def hooks(storage: Storage) -> AsyncIterator[Harness]:
    clock = FakeClock(datetime.now(UTC))  # real time: receivers check signature freshness
    receiver = Receiver()
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        services.engine._jitter = lambda: 0.5  # no jitter: delays are exactly the schedule
        harness = Harness(client, services, clock, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        harness.auth = {"Authorization": f"Bearer {key}"}
        yield harness


def reference(secret: str) -> Webhook:
    """The reference library set up as a customer would: a ``whsec_`` secret in its
    default mode, any other secret as its UTF-8 bytes (raw mode)."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def verify(request: httpx.Request, secret: str) -> dict[str, Any]:
    """The reference verifier; it also checks the timestamp against the real clock."""
    payload: dict[str, Any] = reference(secret).verify(request.content, dict(request.headers))
    return payload


def verify_at_any_time(request: httpx.Request, secret: str) -> None:
    """The reference signature for a request sent at a (fake) time far from now."""
    sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=UTC)
    expected = reference(secret).sign(
        request.headers["webhook-id"], sent_at, request.content.decode()
    )
    assert request.headers["webhook-signature"] == expected


async def test_webhook_api(hooks: Harness) -> None:
    created = await hooks.webhook(
        "http://127.0.0.1:9/hook", ["phone_number.connected", "message.received"]
    )
    assert created["secret"].startswith("whsec_")
    assert set(created) == {
        "id",
        "url",
        "events",
        "wabaId",
        "status",
        "createdAt",
        "livemode",
        "secret",
    }
    assert created["status"] == "active" and created["wabaId"] is None
    path = f"/v1/outgoing-webhooks/{created['id']}"
    got = (await hooks.client.get(path, headers=hooks.auth)).json()["data"]
    assert "secret" not in got and got["id"] == created["id"]
    listing = (await hooks.client.get("/v1/outgoing-webhooks", headers=hooks.auth)).json()
    assert listing["pagination"]["total"] == 1

    patched = await hooks.client.patch(
        path, json={"events": ["message.received"], "status": "disabled"}, headers=hooks.auth
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["events"] == ["message.received"]
    assert patched.json()["data"]["status"] == "disabled"

    _, _, other_key = await create_key(hooks.services.storage, "globex", hooks.clock())
    other = {"Authorization": f"Bearer {other_key}"}
    assert_error(await hooks.client.get(path, headers=other), 404, "resource_missing")
    assert_error(await hooks.client.delete(path, headers=other), 404, "resource_missing")

    deleted = await hooks.client.delete(path, headers=hooks.auth)
    assert deleted.json() == {"data": {"id": created["id"], "deleted": True}}
    assert_error(await hooks.client.get(path, headers=hooks.auth), 404, "resource_missing")

    own = await hooks.webhook("http://127.0.0.1:9/x", secret="my-own-secret-0123")
    assert own["secret"] == "my-own-secret-0123"


@pytest.mark.parametrize(
    ("body", "param", "code", "status"),
    [
        ({}, "url", "parameter_missing", 400),
        ({"url": "http://127.0.0.1:9/x"}, "events", "parameter_missing", 400),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "events", "parameter_invalid", 400),
        ({"url": "http://127.0.0.1:9/x", "events": ["nope"]}, "events", "parameter_invalid", 400),
        ({"url": "ftp://x", "events": ["message.sent"]}, "url", "parameter_invalid", 400),
        (
            {"url": "http://169.254.169.254/", "events": ["message.sent"]},
            "url",
            "url_not_allowed",
            400,
        ),
        (
            {"url": "http://127.0.0.1:9/x", "events": ["message.sent"], "secret": "short"},
            "secret",
            "parameter_invalid",
            400,
        ),
        (
            {"url": "http://127.0.0.1:9/x", "events": ["message.sent"], "x": 1},
            "x",
            "unknown_parameter",
            400,
        ),
        (
            {
                "url": "http://127.0.0.1:9/x",
                "events": ["message.sent"],
                "wabaId": str(uuid.uuid4()),
            },
            "wabaId",
            "resource_missing",
            404,
        ),
    ],
)
async def test_webhook_validation(
    hooks: Harness, body: dict[str, Any], param: str, code: str, status: int
) -> None:
    response = await hooks.client.post("/v1/outgoing-webhooks", json=body, headers=hooks.auth)
    assert_error(response, status, code, param)
    listing = (await hooks.client.get("/v1/outgoing-webhooks", headers=hooks.auth)).json()
    assert listing["pagination"]["total"] == 0


async def test_signed_delivery_verifies_with_standardwebhooks(hooks: Harness) -> None:
    given = await hooks.webhook("http://localhost:9/given", secret="a-secret-of-16-chars")
    generated = await hooks.webhook("http://127.0.0.1:9/generated")
    event_id = await hooks.emit({"hello": "world"})
    assert await hooks.drain() == 2
    for hook, path in ((given, "localhost/given"), (generated, "127.0.0.1/generated")):
        (request,) = hooks.receiver.to(path)
        payload = verify(request, hook["secret"])
        assert payload["id"] == event_id and payload["event"] == "phone_number.connected"
        assert payload["data"] == {"hello": "world"}
        assert payload["timestamp"].endswith("Z") and payload["organizationId"]
        assert request.headers["webhook-id"] == event_id
        assert request.headers["content-type"] == "application/json"
    # The request keeps the name (the connection pool keys by it; the address a connection
    # goes to is checked when it is made: tests/test_delivery_connections.py).
    (request,) = hooks.receiver.to("localhost/given")
    assert request.url.host == "localhost" and request.headers["host"] == "localhost:9"
    (delivery,) = await hooks.deliveries(given["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
    assert delivery["lastStatusCode"] == 200 and len(delivery["attemptLog"]) == 1


async def test_failing_receiver_recovers_with_the_same_webhook_id(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/flaky")
    hooks.receiver.script["127.0.0.1/flaky"] = [
        500,
        503,
        httpx.Response(302, headers={"location": "http://127.0.0.1:9/elsewhere"}),
    ]
    event_id = await hooks.emit()
    assert await hooks.drain() == 1
    (delivery,) = await hooks.deliveries(hook["id"])
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    # Not due before its backoff: nothing happens.
    hooks.clock.advance(seconds=SCHEDULE[1] - 1)
    assert await hooks.drain() == 0
    for delay in SCHEDULE[1:4]:
        hooks.clock.advance(seconds=delay)
        await hooks.drain()
    requests = hooks.receiver.to("127.0.0.1/flaky")
    assert len(requests) == 4  # 500, 503, a redirect (not followed), then 200
    assert {r.headers["webhook-id"] for r in requests} == {event_id}
    assert hooks.receiver.to("127.0.0.1/elsewhere") == []
    for request in requests:
        verify_at_any_time(request, hook["secret"])
    (delivery,) = await hooks.deliveries(hook["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 4
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [500, 503, 302, 200]


async def test_retry_after_is_honoured(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/busy")
    hooks.receiver.script["127.0.0.1/busy"] = [httpx.Response(429, headers={"Retry-After": "120"})]
    await hooks.emit()
    await hooks.drain()
    (delivery,) = await hooks.deliveries(hook["id"])
    due = datetime.fromisoformat(delivery["nextAttemptAt"].replace("Z", "+00:00"))
    assert due - hooks.clock() >= timedelta(seconds=119)
    hooks.clock.advance(seconds=60)
    assert await hooks.drain() == 0
    hooks.clock.advance(seconds=61)
    assert await hooks.drain() == 1
    assert (await hooks.deliveries(hook["id"]))[0]["status"] == "succeeded"


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:00 GMT", now) == 60
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


async def test_gone_disables_the_endpoint(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/gone")
    hooks.receiver.script["127.0.0.1/gone"] = [410]
    hooks.services.engine.per_endpoint = 1  # one at a time: the second waits for the first
    await hooks.emit()
    await hooks.emit()
    await hooks.drain()
    hooks.clock.advance(seconds=2)
    await hooks.drain()
    got = (
        await hooks.client.get(f"/v1/outgoing-webhooks/{hook['id']}", headers=hooks.auth)
    ).json()["data"]
    assert got["status"] == "disabled"
    deliveries = await hooks.deliveries(hook["id"])
    assert sorted(d["status"] for d in deliveries) == ["failed", "failed"]
    assert len(hooks.receiver.to("127.0.0.1/gone")) == 1
    # No more events for it; a manual retry needs it enabled first.
    await hooks.emit()
    assert len(await hooks.deliveries(hook["id"])) == 2
    retry = await hooks.client.post(
        f"/v1/webhook-deliveries/{deliveries[0]['id']}/retry", headers=hooks.auth
    )
    assert_error(retry, 409, "webhook_disabled")
    await hooks.client.patch(
        f"/v1/outgoing-webhooks/{hook['id']}", json={"status": "active"}, headers=hooks.auth
    )
    retry = await hooks.client.post(
        f"/v1/webhook-deliveries/{deliveries[0]['id']}/retry", headers=hooks.auth
    )
    assert retry.status_code == 202 and retry.json()["data"]["status"] == "pending"
    assert await hooks.drain() == 1
    statuses = sorted(d["status"] for d in await hooks.deliveries(hook["id"]))
    assert statuses == ["failed", "succeeded"]


async def test_retry_of_a_delivery_removed_meanwhile_is_404(
    hooks: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retention sweep may remove a delivery between the retry's read and its
    update: a 404, never a 500."""
    hook = await hooks.webhook("http://127.0.0.1:9/swept")
    hooks.receiver.script["127.0.0.1/swept"] = [500] * len(SCHEDULE)
    await hooks.emit()
    await hooks.drain()
    (delivery,) = await hooks.deliveries(hook["id"])
    storage = hooks.services.storage
    update = storage.update_delivery

    async def swept_first(*args: Any, **kwargs: Any) -> Any:
        await storage.delete_events_before(hooks.clock() + timedelta(days=1), 100)
        return await update(*args, **kwargs)

    monkeypatch.setattr(storage, "update_delivery", swept_first)
    retry = await hooks.client.post(
        f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=hooks.auth
    )
    assert_error(retry, 404, "resource_missing")


async def test_gives_up_after_the_schedule(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/down")
    hooks.receiver.script["127.0.0.1/down"] = [500] * len(SCHEDULE)
    await hooks.emit()
    for delay in SCHEDULE:
        hooks.clock.advance(seconds=delay)
        await hooks.drain()
    (delivery,) = await hooks.deliveries(hook["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == len(SCHEDULE)
    assert delivery["nextAttemptAt"] is None and delivery["lastError"] == "HTTP 500"
    total = sum(SCHEDULE)
    assert 2.9 * 86400 < total < 3.2 * 86400  # about three days


async def test_fan_out_follows_subscription_and_scope(hooks: Harness) -> None:
    everything = await hooks.webhook("http://127.0.0.1:9/all")
    await hooks.webhook("http://127.0.0.1:9/messages", ["message.received"])
    waba = str(uuid.uuid4())
    scoped = await hooks.webhook("http://127.0.0.1:9/scoped")
    # Scope it to a WABA (through storage: the API checks the WABA exists).
    stored = await hooks.services.storage.get_webhook(scoped["id"])
    assert stored is not None
    await hooks.services.storage.update_webhook(stored.org_id, scoped["id"], {"waba_id": waba})
    await hooks.emit(waba_id=None)
    await hooks.emit(waba_id=waba)
    await hooks.drain()
    assert len(hooks.receiver.to("127.0.0.1/all")) == 2
    assert len(hooks.receiver.to("127.0.0.1/scoped")) == 1
    assert hooks.receiver.to("127.0.0.1/messages") == []
    assert len(await hooks.deliveries(everything["id"])) == 2


async def test_send_time_address_check(hooks: Harness) -> None:
    strict = Sender(allow_private=False, transport=httpx.MockTransport(hooks.receiver.handler))
    now = hooks.clock()
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        "https://[::1]/x",
    ):
        result = await strict.send(url, b"{}", {}, now)
        assert result.status_code is None and result.error and "refused" in result.error
    lenient = Sender(allow_private=True, transport=httpx.MockTransport(hooks.receiver.handler))
    result = await lenient.send("http://169.254.169.254/latest", b"{}", {}, now)
    assert result.error and "metadata" in result.error
    assert hooks.receiver.requests == []


async def test_per_endpoint_concurrency_is_bounded(hooks: Harness) -> None:
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def slow(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        in_flight[path] = in_flight.get(path, 0) + 1
        peak[path] = max(peak.get(path, 0), in_flight[path])
        await anyio.sleep(0.05 if path == "/slow" else 0)
        in_flight[path] -= 1
        return httpx.Response(200)

    hooks.services.engine.sender = Sender(allow_private=True, transport=httpx.MockTransport(slow))
    hooks.services.engine.per_endpoint = 2
    await hooks.webhook("http://127.0.0.1:9/slow")
    await hooks.webhook("http://127.0.0.1:9/fast")
    for _ in range(8):
        await hooks.emit()
    for _ in range(20):
        await hooks.drain()
        hooks.clock.advance(seconds=1)
    assert peak["/slow"] <= 2 and peak["/fast"] >= 1
    done = {
        d.status
        for d in [
            await hooks.services.storage.get_delivery(x.id)
            for x in await hooks.services.storage.due_deliveries(hooks.clock(), 100)
        ]
        if d
    }
    assert done <= {DeliveryStatus.SUCCEEDED}


async def test_lease_expiry_hands_a_dead_workers_delivery_to_another(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/lease")
    await hooks.emit()
    engine = hooks.services.engine
    # A worker claims it and dies before sending (no ack, no retry).
    claimed = await engine.queue.claim(hooks.clock(), 10, engine.lease)
    assert len(claimed) == 1
    assert await hooks.drain() == 0  # leased: nobody else takes it yet
    hooks.clock.advance(seconds=engine.lease.total_seconds() + 1)
    assert await hooks.drain() == 1  # swept back and delivered
    (delivery,) = await hooks.deliveries(hook["id"])
    assert delivery["status"] == "succeeded"


async def test_restarted_in_process_engine_recovers_pending_deliveries(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/restart")
    hooks.receiver.script["127.0.0.1/restart"] = [500]
    await hooks.emit()
    await hooks.emit()
    await hooks.drain()  # one failed attempt each... and a fresh process forgets its queue
    hooks.services.engine.queue = MemoryQueue()
    hooks.clock.advance(seconds=SCHEDULE[1] + 1)
    assert await hooks.drain() == 0
    assert await hooks.services.engine.recover() == 1
    assert await hooks.drain() == 1
    assert sorted(d["status"] for d in await hooks.deliveries(hook["id"])) == [
        "succeeded",
        "succeeded",
    ]


async def test_duplicate_claims_count_one_attempt(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/dup")
    await hooks.emit()
    engine = hooks.services.engine
    (delivery,) = await hooks.services.storage.due_deliveries(hooks.clock(), 10)
    # Two workers process the same delivery at once (a lease lapsed mid-send).
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.process, delivery.id)
        tg.start_soon(engine.process, delivery.id)
    (stored,) = await hooks.deliveries(hook["id"])
    assert stored["attempts"] == 1 and stored["status"] == "succeeded"
    requests = hooks.receiver.to("127.0.0.1/dup")
    assert 1 <= len(requests) <= 2
    assert len({r.headers["webhook-id"] for r in requests}) == 1


def test_signature_matches_the_reference() -> None:
    body = b'{"a":1}'
    header = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1614265330, body)
    expected = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign(
        "msg_1", datetime.fromtimestamp(1614265330, tz=UTC), body.decode()
    )
    assert header == expected


async def test_phone_connected_reaches_org_and_link_webhooks(hooks: Harness) -> None:
    org_hook = await hooks.webhook("http://127.0.0.1:9/org")
    created = await hooks.client.post(
        "/v1/onboarding-links",
        headers=hooks.auth,
        json={
            "name": "Acme",
            "externalId": "customer_123",
            "redirectUrl": "https://app.example.com/done",
            "webhookUrl": "http://localhost:9/link",
            "webhookEvents": ["phone_number.connected", "message.received"],
        },
    )
    link = created.json()["data"]
    sandbox = hooks.services.sandbox
    assert sandbox is not None
    session = sandbox.finish("ok")
    data = session["data"]
    done = await hooks.client.post(
        f"/signup/{link['id']}/callback",
        json={
            "code": session["code"],
            "wabaId": data["waba_id"],
            "phoneNumberId": data["phone_number_id"],
            "businessId": data["business_id"],
        },
    )
    assert done.status_code == 200, done.text
    completed = (
        await hooks.client.get(f"/v1/onboarding-links/{link['id']}", headers=hooks.auth)
    ).json()["data"]
    assert await hooks.drain() == 2
    (to_org,) = hooks.receiver.to("127.0.0.1/org")
    (to_link,) = hooks.receiver.to("localhost/link")
    expected_data = {
        "onboardingLinkId": link["id"],
        "externalId": "customer_123",
        "phoneNumberId": completed["phoneNumberId"],
        "phoneNumber": completed["phoneNumber"],
        "wabaId": completed["wabaId"],
        "metaWabaId": data["waba_id"],
        "isPhoneRegistered": True,
        "status": "connected",
        "platform": "cloud_api",
    }
    for request, secret in ((to_org, org_hook["secret"]), (to_link, link["webhookSecret"])):
        payload = verify(request, secret)
        assert set(payload) == {"id", "event", "timestamp", "organizationId", "livemode", "data"}
        assert payload["livemode"] is True
        assert payload["event"] == "phone_number.connected"
        assert payload["data"] == expected_data
    assert to_org.headers["webhook-id"] == to_link.headers["webhook-id"]

    # The link's webhook became an outgoing webhook, scoped to the connected WABA.
    auto = (
        await hooks.client.get(
            f"/v1/outgoing-webhooks/{completed['outgoingWebhookId']}", headers=hooks.auth
        )
    ).json()["data"]
    assert auto["url"] == "http://localhost:9/link" and auto["wabaId"] == completed["wabaId"]
    assert auto["events"] == ["phone_number.connected", "message.received"]
    body = orjson.loads(to_link.content)
    stored_link = await hooks.services.storage.get_link(link["id"])
    assert stored_link is not None and body["organizationId"] == stored_link.org_id
