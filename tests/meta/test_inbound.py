"""Meta's webhooks become message events; messages go out through connected numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET
from edge_onboard.services import Services
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import Sender
from tests.api.test_links_api import assert_error
from tests.conftest import FakeClock, make_settings, running_app
from tests.webhooks.test_delivery import Receiver

pytestmark = pytest.mark.anyio
# Every event Meta's webhooks become.
EVENTS = [
    "message.received",
    "message.reaction",
    "message.edited",
    "message.deleted",
    "message.echo",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.played",
    "message.failed",
    "contact.changed",
    "phone_number.error",
]


class World:
    events: ClassVar[list[str]] = EVENTS  # what the connected link's webhook subscribes to

    def __init__(self, client: httpx.AsyncClient, services: Services, receiver: Receiver) -> None:
        self.client = client
        self.services = services
        self.receiver = receiver
        self.auth: dict[str, str] = {}
        assert services.sandbox is not None
        self.sandbox = services.sandbox

    async def connect(self, scenario: str = "ok") -> dict[str, Any]:
        """A completed link, with a webhook subscribed to the message events."""
        created = await self.client.post(
            "/v1/onboarding-links",
            headers=self.auth,
            json={
                "name": "Acme",
                "webhookUrl": "http://127.0.0.1:9/events",
                "webhookEvents": self.events,
            },
        )
        link = created.json()["data"]
        session = self.sandbox.finish(scenario)
        data = session["data"]
        done = await self.client.post(
            f"/signup/{link['id']}/callback",
            json={
                "code": session["code"],
                "wabaId": data["waba_id"],
                "phoneNumberId": data["phone_number_id"],
            },
        )
        assert done.status_code == 200, done.text
        view = (
            await self.client.get(f"/v1/onboarding-links/{link['id']}", headers=self.auth)
        ).json()["data"]
        return {**view, "metaPhoneNumberId": data["phone_number_id"], "metaWabaId": data["waba_id"]}

    async def meta_post(
        self, phone_id: str, payload: Any, *, secret: str = APP_SECRET, signature: str | None = None
    ) -> httpx.Response:
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        if signature is not None or secret:
            headers["X-Hub-Signature-256"] = signature or sign_body(secret, raw)
        return await self.client.post(f"/webhook/phone/{phone_id}", content=raw, headers=headers)

    async def delivered(self) -> list[dict[str, Any]]:
        await self.services.engine.drain()
        return [orjson.loads(r.content) for r in self.receiver.to("127.0.0.1/events")]


def messages_payload(meta_phone: str, *, message_id: str = "wamid.A1", **value: Any) -> Any:
    body = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100000", "phone_number_id": meta_phone},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551234567"}],
        "messages": [
            {
                "from": "15551234567",
                "id": message_id,
                "timestamp": "1795569813",
                "type": "text",
                "text": {"body": "Olá!"},
            }
        ],
    }
    body.update(value)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": body}]}],
    }


def statuses_payload(meta_phone: str, *statuses: tuple[str, str]) -> Any:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "W",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "1",
                                "phone_number_id": meta_phone,
                            },
                            "statuses": [
                                {
                                    "id": mid,
                                    "status": status,
                                    "timestamp": "1795569813",
                                    "recipient_id": "15551234567",
                                    **(
                                        {
                                            "errors": [
                                                {
                                                    "code": 131026,
                                                    "title": "Undeliverable",
                                                    "message": "Message undeliverable",
                                                    "error_data": {"details": "not on WhatsApp"},
                                                }
                                            ]
                                        }
                                        if status == "failed"
                                        else {}
                                    ),
                                }
                                for mid, status in statuses
                            ],
                        },
                    }
                ],
            }
        ],
    }


@pytest.fixture
async def world(storage: Storage) -> AsyncIterator[World]:
    clock = FakeClock(datetime.now(UTC))
    receiver = Receiver()
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        world = World(client, services, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        yield world


async def test_a_signed_message_becomes_one_event(world: World) -> None:
    phone = await world.connect()
    await world.delivered()  # the phone_number.connected event, out of the way
    world.receiver.requests.clear()
    payload = messages_payload(phone["metaPhoneNumberId"])
    first = await world.meta_post(phone["phoneNumberId"], payload)
    again = await world.meta_post(phone["phoneNumberId"], payload)  # Meta retries
    assert (first.status_code, again.status_code) == (200, 200)
    (event,) = await world.delivered()
    assert event["event"] == "message.received"
    assert event["data"] == {
        "phoneNumberId": phone["phoneNumberId"],
        "wabaId": phone["wabaId"],
        # Whose it is: the link that connected the number (it has no externalId).
        "onboardingLinkId": phone["id"],
        "externalId": None,
        "metaMessageId": "wamid.A1",
        "from": "15551234567",
        "contactName": "Ana",
        "userId": None,
        "parentUserId": None,
        "username": None,
        "groupId": None,
        "type": "text",
        "timestamp": "2026-11-25T01:23:33.000Z",
        "context": None,
        "referral": None,
        "errors": [],
        "text": "Olá!",
        "media": None,
        "location": None,
        "contacts": None,
        "interactive": None,
        "button": None,
        "order": None,
        "unsupported": None,
        "raw": payload["entry"][0]["changes"][0]["value"]["messages"][0],
    }


async def test_forged_and_unsigned_payloads_produce_nothing(world: World) -> None:
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    payload = messages_payload(phone["metaPhoneNumberId"])
    forged = await world.meta_post(phone["phoneNumberId"], payload, secret="not-the-app-secret")
    unsigned = await world.meta_post(phone["phoneNumberId"], payload, secret="")
    wrong = await world.meta_post(phone["phoneNumberId"], payload, signature="sha1=abc")
    assert [r.status_code for r in (forged, unsigned, wrong)] == [401, 401, 401]
    assert await world.delivered() == []


async def test_unusable_payloads_are_accepted_and_ignored(world: World) -> None:
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    for raw in (
        b"not json",
        b"[]",
        b'{"entry": 5}',
        b'{"entry": [{"changes": [1, {}]}]}',
        orjson.dumps(messages_payload("999999")),
    ):  # a number nobody connected
        response = await world.meta_post(phone["phoneNumberId"], raw)
        assert response.status_code == 200
    assert await world.delivered() == []
    assert (await world.client.post("/webhook/phone/nope", content=b"{}")).status_code == 404


async def test_batches_route_by_phone_and_statuses_arrive_in_any_order(world: World) -> None:
    one, two = await world.connect(), await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    batch = messages_payload(one["metaPhoneNumberId"], message_id="wamid.ONE")
    batch["entry"] += messages_payload(two["metaPhoneNumberId"], message_id="wamid.TWO")["entry"]
    assert (await world.meta_post(one["phoneNumberId"], batch)).status_code == 200
    statuses = statuses_payload(
        two["metaPhoneNumberId"],
        ("wamid.OUT", "read"),
        ("wamid.OUT", "delivered"),
        ("wamid.OUT", "sent"),
        ("wamid.BAD", "failed"),
        ("wamid.OUT", "read"),
    )
    assert (await world.meta_post(two["phoneNumberId"], statuses)).status_code == 200
    events = await world.delivered()
    received = {
        e["data"]["metaMessageId"]: e["data"]["phoneNumberId"]
        for e in events
        if e["event"] == "message.received"
    }
    assert received == {"wamid.ONE": one["phoneNumberId"], "wamid.TWO": two["phoneNumberId"]}
    kinds = sorted(e["event"] for e in events if e["data"]["metaMessageId"] == "wamid.OUT")
    assert kinds == ["message.delivered", "message.read", "message.sent"]  # read once
    (failed,) = [e for e in events if e["event"] == "message.failed"]
    assert failed["data"]["errors"] == [
        {
            "code": 131026,
            "title": "Undeliverable",
            "message": "Message undeliverable",
            "details": "not on WhatsApp",
            "href": None,
        }
    ]


def _message(message_id: str, kind: str, **content: Any) -> dict[str, Any]:
    return {
        "from": "15551234567",
        "id": message_id,
        "timestamp": "1795569813",
        "type": kind,
        **content,
    }


async def test_each_kind_of_change_becomes_its_own_event_once(world: World) -> None:
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    meta = phone["metaPhoneNumberId"]
    target = {"message_id": "wamid.OUT"}
    bodies = [
        messages_payload(
            meta,
            messages=[
                _message("wamid.R1", "reaction", reaction={**target, "emoji": "👍"}),
                _message("wamid.R2", "reaction", reaction={**target, "emoji": ""}),
                _message(
                    "wamid.E1",
                    "edit",
                    edit={
                        "original_message_id": "wamid.T1",
                        "message": {"type": "text", "text": {"body": "Olá de novo"}},
                    },
                ),
                _message("wamid.D1", "revoke", revoke={"original_message_id": "wamid.T1"}),
                _message(
                    "wamid.S1",
                    "system",
                    system={
                        "body": "User changed from 15551234567 to 15557654321",
                        "wa_id": "15557654321",
                        "type": "user_changed_number",
                    },
                ),
            ],
        ),
        messages_payload(
            meta,
            messages=[],
            message_echoes=[
                {
                    "from": "15550100000",
                    "to": "15551234567",
                    "id": "wamid.ECHO",
                    "timestamp": "1795569813",
                    "type": "text",
                    "text": {"body": "Sent from the app"},
                }
            ],
        ),
        messages_payload(
            meta,
            messages=[],
            statuses=[
                {
                    "id": "wamid.VOICE",
                    "status": "played",
                    "timestamp": "1795569813",
                    "recipient_id": "15551234567",
                    "pricing": {
                        "billable": False,
                        "pricing_model": "PMP",
                        "category": "service",
                        "type": "free_customer_service",
                    },
                }
            ],
            errors=[
                {
                    "code": 131000,
                    "title": "Something went wrong",
                    "message": "Something went wrong",
                    "error_data": {"details": "Unsupported webhook payload"},
                }
            ],
        ),
    ]
    for body in bodies * 2:  # and Meta's retries add nothing
        assert (await world.meta_post(phone["phoneNumberId"], body)).status_code == 200
    events = {
        e["event"] + ":" + (e["data"].get("metaMessageId") or ""): e
        for e in await world.delivered()
    }
    assert sorted(events) == [
        "contact.changed:wamid.S1",
        "message.deleted:wamid.D1",
        "message.echo:wamid.ECHO",
        "message.edited:wamid.E1",
        "message.played:wamid.VOICE",
        "message.reaction:wamid.R1",
        "message.reaction:wamid.R2",
        "phone_number.error:",
    ]
    added, removed = events["message.reaction:wamid.R1"], events["message.reaction:wamid.R2"]
    assert (added["data"]["action"], added["data"]["reaction"]) == (
        "added",
        {"messageId": "wamid.OUT", "emoji": "👍"},
    )
    assert (removed["data"]["action"], removed["data"]["reaction"]["emoji"]) == ("removed", "")
    edited = events["message.edited:wamid.E1"]["data"]
    assert (edited["originalMessageId"], edited["type"], edited["text"]) == (
        "wamid.T1",
        "text",
        "Olá de novo",
    )
    assert events["message.deleted:wamid.D1"]["data"]["originalMessageId"] == "wamid.T1"
    changed = events["contact.changed:wamid.S1"]["data"]
    assert (changed["from"], changed["system"]["type"], changed["system"]["waId"]) == (
        "15551234567",
        "user_changed_number",
        "15557654321",
    )
    echo = events["message.echo:wamid.ECHO"]["data"]
    assert (echo["from"], echo["to"], echo["contactName"], echo["text"]) == (
        "15550100000",
        "15551234567",
        "Ana",
        "Sent from the app",
    )
    played = events["message.played:wamid.VOICE"]["data"]
    assert played["pricing"] == {
        "billable": False,
        "category": "service",
        "pricingModel": "PMP",
        "type": "free_customer_service",
    }
    assert played["conversation"] is None
    error = events["phone_number.error:"]["data"]
    assert (error["phoneNumberId"], error["code"], error["details"]) == (
        phone["phoneNumberId"],
        131000,
        "Unsupported webhook payload",
    )


async def test_a_sender_known_by_user_id_only_and_a_type_yet_unknown(world: World) -> None:
    """Meta's usernames: a customer may come with a business-scoped user id and no
    number; and a type Meta adds later arrives whole under raw."""
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    message = {
        "from_user_id": "US.1349",
        "id": "wamid.NEW",
        "timestamp": "1795569813",
        "type": "hologram",
        "hologram": {"frames": [1, 2, 3]},
    }
    body = messages_payload(
        phone["metaPhoneNumberId"],
        contacts=[{"profile": {"name": "Bia"}, "user_id": "US.1349", "parent_user_id": "US.ENT.1"}],
        messages=[message],
    )
    assert (await world.meta_post(phone["phoneNumberId"], body)).status_code == 200
    (event,) = await world.delivered()
    data = event["data"]
    assert (event["event"], data["from"], data["userId"], data["parentUserId"]) == (
        "message.received",
        None,
        "US.1349",
        "US.ENT.1",
    )
    assert (data["contactName"], data["type"], data["raw"]) == ("Bia", "hologram", message)


async def test_send_then_status_events_in_the_sandbox(world: World) -> None:
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    path = f"/v1/phones/{phone['phoneNumberId']}/messages"
    body = {"to": "+15551234567", "type": "text", "text": {"body": "Hello from edge"}}
    headers = {**world.auth, "Idempotency-Key": "send-1"}
    sent = await world.client.post(path, json=body, headers=headers)
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    assert data["metaMessageId"].startswith("wamid.") and data["to"] == "+15551234567"
    assert data["status"] == "accepted" and data["type"] == "text"
    replay = await world.client.post(path, json=body, headers=headers)
    assert replay.json() == sent.json() and replay.headers["idempotent-replayed"] == "true"
    sends = [p for m, p in world.sandbox.calls if p.endswith("/messages")]
    assert len(sends) == 1
    assert await world.sandbox.flush(world.client) == 3  # Meta's status webhooks, signed
    events = await world.delivered()
    assert sorted(e["event"] for e in events) == [
        "message.delivered",
        "message.read",
        "message.sent",
    ]
    assert {e["data"]["metaMessageId"] for e in events} == {data["metaMessageId"]}

    template = await world.client.post(
        path,
        headers=world.auth,
        json={
            "to": "15551234567",
            "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"}},
        },
    )
    assert template.status_code == 201, template.text


async def test_send_to_a_business_scoped_user_id(world: World) -> None:
    """A customer with a username may give no number: Meta takes their BSUID as
    ``recipient``, and its statuses name them by ``recipient_user_id``."""
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    path = f"/v1/phones/{phone['phoneNumberId']}/messages"
    for user_id in ("US.13491208655302741918", "US.ENT.11815799212886844830"):
        body = {"to": user_id, "type": "text", "text": {"body": "Hello"}}
        sent = await world.client.post(path, json=body, headers=world.auth)
        assert sent.status_code == 201, sent.text
        assert sent.json()["data"]["to"] == user_id
        graph = world.sandbox.calls[-1]
        assert graph[1].endswith("/messages")
        assert await world.sandbox.flush(world.client) == 3
        events = await world.delivered()
        world.receiver.requests.clear()
        assert {e["data"]["recipientUserId"] for e in events} == {user_id}
        assert {e["data"]["recipientId"] for e in events} == {None}
    for bad in ("US.", "us.1349", "US.ENT.", "XX.12 34", "U.1"):
        refused = await world.client.post(
            path, json={"to": bad, "type": "text", "text": {"body": "x"}}, headers=world.auth
        )
        assert_error(refused, 400, "parameter_invalid", "to")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "to", "parameter_missing"),
        ({"to": "12", "type": "text", "text": {"body": "x"}}, "to", "parameter_invalid"),
        ({"to": "+15551234567"}, "type", "parameter_missing"),
        ({"to": "+15551234567", "type": "image"}, "type", "parameter_invalid"),
        ({"to": "+15551234567", "type": "text"}, "text", "parameter_missing"),
        ({"to": "+15551234567", "type": "text", "text": {"body": ""}}, "body", "parameter_invalid"),
        (
            {"to": "+15551234567", "type": "text", "text": {"body": "x", "x": 1}},
            "text.x",
            "unknown_parameter",
        ),
        (
            {
                "to": "+15551234567",
                "type": "template",
                "template": {"name": "Bad Name", "language": {"code": "en_US"}},
            },
            "name",
            "parameter_invalid",
        ),
        (
            {
                "to": "+15551234567",
                "type": "template",
                "template": {"name": "ok", "language": "en"},
            },
            "template.language",
            "parameter_invalid",
        ),
        (
            {"to": "+15551234567", "type": "text", "text": {"body": "x"}, "cc": 1},
            "cc",
            "unknown_parameter",
        ),
        (  # the other type's field, even null, does not belong (schemathesis ST201)
            {
                "to": "+15551234567",
                "type": "template",
                "template": {"name": "ok", "language": {"code": "en_US"}},
                "text": None,
            },
            "text",
            "parameter_invalid",
        ),
    ],
)
async def test_send_validation(world: World, body: dict[str, Any], param: str, code: str) -> None:
    phone = await world.connect()
    response = await world.client.post(
        f"/v1/phones/{phone['phoneNumberId']}/messages", json=body, headers=world.auth
    )
    assert_error(response, 400, code, param)


async def test_send_refusals(world: World) -> None:
    phone = await world.connect()
    path = f"/v1/phones/{phone['phoneNumberId']}/messages"
    body = {"to": "+15551234567", "type": "text", "text": {"body": "hi"}}
    meta = phone["metaPhoneNumberId"]
    world.sandbox.fail(
        "POST", f"{meta}/messages", status=400, code=131026, message="Message undeliverable"
    )
    assert_error(await world.client.post(path, json=body, headers=world.auth), 422, "meta_rejected")
    world.sandbox.fail("POST", f"{meta}/messages", status=400, code=130429)
    limited = await world.client.post(path, json=body, headers=world.auth)
    assert_error(limited, 429, "meta_rate_limited")
    assert limited.headers["retry-after"] == "60"
    world.sandbox.fail("POST", f"{meta}/messages", status=503)
    assert_error(
        await world.client.post(path, json=body, headers=world.auth), 502, "meta_unavailable"
    )
    # Not registered on the Cloud API: nothing to send with.
    unregistered = await world.connect("register_fails")
    refused = await world.client.post(
        f"/v1/phones/{unregistered['phoneNumberId']}/messages", json=body, headers=world.auth
    )
    assert_error(refused, 409, "phone_not_registered")
    # Another organisation's phone is 404.
    _, _, other = await create_key(world.services.storage, "globex", world.services.clock())
    assert_error(
        await world.client.post(path, json=body, headers={"Authorization": f"Bearer {other}"}),
        404,
        "resource_missing",
    )
