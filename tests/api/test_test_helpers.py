"""The test helpers (POST /v1/test-helpers/…): a test link completed through the fake
Meta, then every kind of Meta webhook about its phone, posted signed by the fake so the
real inbound paths make the events; live keys refused; in the OpenAPI under their tag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import jsonschema
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.api.openapi import build_openapi
from edge_onboard.meta.sandbox import samples
from edge_onboard.storage.memory import MemoryStorage
from tests.conftest import AppClient, FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio
BASE = "/v1/test-helpers"
SPEC = build_openapi("https://onboard.test")


def _conforms(path: str, status: int, body: Any) -> None:
    """``body`` is what the OpenAPI document says this helper answers with ``status``."""
    template = "/".join("{id}" if i == 4 else part for i, part in enumerate(path.split("/")))
    operation = SPEC["paths"][template]["post"]
    response = operation["responses"].get(str(status)) or operation["responses"]["default"]
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]})
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, (path, status, errors)


class Helper:
    def __init__(self, client: AppClient, test: str, live: str) -> None:
        self.client = client
        self.test = {"Authorization": f"Bearer {test}"}
        self.live = {"Authorization": f"Bearer {live}"}

    async def post(self, path: str, body: Any, *, status: int = 202, live: bool = False) -> Any:
        auth = self.live if live else self.test
        response = await self.client.post(path, json=body, headers=auth)
        assert response.status_code == status, response.text
        if path.startswith(BASE):
            _conforms(path, status, response.json())
        return response.json()

    async def phone(self) -> dict[str, Any]:
        link = await self.post("/v1/onboarding-links", {"name": "Helpers"}, status=201)
        done = await self.post(
            f"{BASE}/onboarding-links/{link['data']['id']}/complete", {}, status=200
        )
        assert done["data"]["status"] == "completed" and done["data"]["livemode"] is False
        phone: dict[str, Any] = (
            await self.client.get(f"/v1/phones/{done['data']['phoneNumberId']}", headers=self.test)
        ).json()["data"]
        return phone

    async def events(self, count: int, *types: str) -> list[dict[str, Any]]:
        """The newest events of ``types``, once there are ``count``. The fake's queued
        webhooks are posted here (a served app's pump posts them on its own)."""
        query = {"type": ",".join(types), "limit": "100"}
        with anyio.fail_after(10):
            while True:
                await self.client.services.sandbox.flush(self.client)
                response = await self.client.get("/v1/events", params=query, headers=self.test)
                found: list[dict[str, Any]] = response.json()["data"]
                if len(found) >= count:
                    return found
                await anyio.sleep(0.05)


@pytest.fixture
async def helper() -> AsyncIterator[Helper]:
    store, clock = MemoryStorage(), FakeClock()
    async with running_app(store, clock, make_settings()) as client:
        _, _, test = await create_key(store, "acme", clock(), livemode=False)
        _, _, live = await create_key(store, "acme", clock(), livemode=True)
        yield Helper(client, test, live)


async def test_every_message_type_reaches_the_events_through_the_real_inbound_path(
    helper: Helper,
) -> None:
    phone = await helper.phone()
    expected = {
        "reaction": "message.reaction",
        "edit": "message.edited",
        "revoke": "message.deleted",
        "system": "contact.changed",
    }
    sent: dict[str, str] = {}
    for kind in samples.MESSAGE_TYPES:
        body = {"type": kind, "from": "15557654321", "text": f"a {kind}"}
        answer = (await helper.post(f"{BASE}/phones/{phone['id']}/messages", body))["data"]
        assert answer["sentTo"] == "phone" and answer["phoneNumberId"] == phone["id"]
        sent[answer["metaMessageId"]] = kind
    found = await helper.events(
        len(sent),
        "message.received",
        "message.reaction",
        "message.edited",
        "message.deleted",
        "contact.changed",
    )
    by_message = {e["data"]["metaMessageId"]: e for e in found}
    assert set(by_message) == set(sent)
    for message_id, kind in sent.items():
        event = by_message[message_id]
        assert event["event"] == expected.get(kind, "message.received"), kind
        assert event["livemode"] is False and event["data"]["phoneNumberId"] == phone["id"]
        assert event["data"]["from"] == "15557654321"
    image = next(e for e in found if sent.get(e["data"]["metaMessageId"]) == "image")
    assert image["data"]["type"] == "image"


async def test_statuses_and_any_field_through_the_generic_helper(helper: Helper) -> None:
    phone = await helper.phone()
    for status in samples.STATUSES:
        body = {"status": status, "messageId": f"wamid.{status}"}
        await helper.post(f"{BASE}/phones/{phone['id']}/statuses", body)
    found = await helper.events(5, "message.*")
    assert {e["event"] for e in found} >= {f"message.{s}" for s in samples.STATUSES}

    # The generic helper: a status by its raw Meta value, then an app-level change.
    value = samples.status_value("read", "wamid.generic")
    sent = await helper.post(
        f"{BASE}/phones/{phone['id']}/webhooks", {"field": "messages", "value": value}
    )
    assert sent["data"] == {"phoneNumberId": phone["id"], "field": "messages", "sentTo": "phone"}
    read = await helper.events(2, "message.read")
    assert "wamid.generic" in {e["data"]["metaMessageId"] for e in read}

    waba = (await helper.client.get(f"/v1/wabas/{phone['wabaId']}", headers=helper.test)).json()
    meta_waba = waba["data"]["metaWabaId"]
    change = {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}}
    sent = await helper.post(
        f"{BASE}/phones/{phone['id']}/webhooks", {"field": "account_update", "value": change}
    )
    assert sent["data"]["sentTo"] == "app"
    updated = await helper.events(1, "waba.updated")
    assert updated[0]["data"]["wabaId"] == phone["wabaId"], (meta_waba, updated)


async def test_live_keys_and_bad_bodies_are_clear_4xx(helper: Helper) -> None:
    phone = await helper.phone()
    link = await helper.post("/v1/onboarding-links", {"name": "Live"}, status=201, live=True)
    for path in (
        f"{BASE}/onboarding-links/{link['data']['id']}/complete",
        f"{BASE}/phones/{phone['id']}/webhooks",
        f"{BASE}/phones/{phone['id']}/messages",
        f"{BASE}/phones/{phone['id']}/statuses",
    ):
        error = (await helper.post(path, {}, status=400, live=True))["error"]
        assert error["code"] == "test_mode_only" and "test keys" in error["message"]
    # A live link is not a test object: 404 to a test key, never completed.
    live_complete = f"{BASE}/onboarding-links/{link['data']['id']}/complete"
    assert (await helper.post(live_complete, {}, status=404))["error"]["type"] == (
        "invalid_request_error"
    )
    for body, param in (
        ({"type": "carrier-pigeon"}, "type"),
        ({"from": "+1 555"}, "from"),
        ({"nope": 1}, "nope"),
    ):
        error = await helper.post(f"{BASE}/phones/{phone['id']}/messages", body, status=400)
        assert error["error"]["param"] == param
    bad = {"field": "messages", "value": [1]}
    error = await helper.post(f"{BASE}/phones/{phone['id']}/webhooks", bad, status=400)
    assert error["error"]["param"] == "value"
    unknown = f"{BASE}/phones/00000000-0000-4000-8000-000000000000/statuses"
    assert (await helper.post(unknown, {}, status=404))["error"]["code"] == "resource_missing"
    # A completed link cannot complete again.
    again = await helper.post("/v1/onboarding-links", {"name": "Twice"}, status=201)
    path = f"{BASE}/onboarding-links/{again['data']['id']}/complete"
    await helper.post(path, {"scenario": "registered"}, status=200)
    assert (await helper.post(path, {}, status=409))["error"]["code"] == "link_completed"


async def test_the_helpers_are_in_the_openapi_under_their_tag(helper: Helper) -> None:
    spec = (await helper.client.get("/openapi.json")).json()
    ops = [
        op
        for path, item in spec["paths"].items()
        if path.startswith(BASE)
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ops) == 4 and all(op["tags"] == ["Test helpers"] for op in ops)
    assert "Test helpers" in {tag["name"] for tag in spec["tags"]}
