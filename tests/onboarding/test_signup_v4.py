"""Embedded Signup v4 endings, server side, against a fake Graph API over real HTTP (the
sandbox's Graph routes served on 127.0.0.1, the service's real GraphClient calling it):
unverified → code → verify → registered; no number → sync → connected; coexistence (no
register call, both app syncs once); the page's early session report; the SDK locale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.services import Services
from edge_onboard.storage import Storage
from edge_onboard.storage.paging import Window
from tests.conftest import FakeClock, real_meta_settings, running_app

pytestmark = pytest.mark.anyio


class V4:
    def __init__(self, client: httpx.AsyncClient, services: Services, fake: SandboxMeta):
        self.client = client
        self.services = services
        self.fake = fake
        self.auth: dict[str, str] = {}
        self.hook_id = ""

    async def link(self, **body: Any) -> dict[str, Any]:
        payload = {"name": "Acme", "externalId": "c1", **body}
        made = await self.client.post("/v1/onboarding-links", json=payload, headers=self.auth)
        assert made.status_code == 201, made.text
        data: dict[str, Any] = made.json()["data"]
        return data

    async def finish(self, link_id: str, scenario: str) -> tuple[httpx.Response, dict[str, Any]]:
        session = self.fake.finish(scenario)
        data = session["data"]
        body = {"code": session["code"], "wabaId": data["waba_id"], "event": session["event"]}
        if "phone_number_id" in data:
            body["phoneNumberId"] = data["phone_number_id"]
        response = await self.client.post(f"/signup/{link_id}/callback", json=body)
        return response, body

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.client.get(path, headers=self.auth)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def items(self, path: str) -> list[dict[str, Any]]:
        response = await self.client.get(path, headers=self.auth)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth)

    def calls(self, suffix: str) -> list[str]:
        return [p for m, p in self.fake.calls if m == "POST" and p.endswith(suffix)]

    async def events(self) -> list[str]:
        """Event types delivered to the organisation's catch-all webhook, sorted."""
        deliveries = await self.items(f"/v1/outgoing-webhooks/{self.hook_id}/deliveries?limit=100")
        return sorted(d["event"] for d in deliveries)


@pytest.fixture
async def v4(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[V4]:
    fake, url = meta_over_http
    settings = real_meta_settings(url)
    async with running_app(storage, clock, settings) as client:
        flow = V4(client, client.services, fake)
        from edge_onboard.api.auth import create_key
        from edge_onboard.webhooks.catalog import EVENT_TYPES

        _, _, key = await create_key(storage, "acme", clock())
        flow.auth = {"Authorization": f"Bearer {key}"}
        hook = await flow.post(
            "/v1/outgoing-webhooks",
            {"url": "http://127.0.0.1:9/all", "events": sorted(EVENT_TYPES)},
        )
        assert hook.status_code == 201, hook.text
        flow.hook_id = hook.json()["data"]["id"]
        fake.calls.clear()
        yield flow


async def test_unverified_number_then_code_then_verified_and_registered(v4: V4) -> None:
    link = await v4.link()
    response, body = await v4.finish(link["id"], "unverified")
    assert response.status_code == 200, response.text
    done = await v4.get(f"/v1/onboarding-links/{link['id']}")
    assert done["status"] == "completed" and done["isPhoneRegistered"] is False
    phone_id = done["phoneNumberId"]
    phone = await v4.get(f"/v1/phones/{phone_id}")
    assert phone["status"] == "pending_verification" and phone["isPhoneRegistered"] is False
    assert v4.calls("/register") == []  # not before the number is verified

    # Meta's own refusal comes back in the API's shape: a rate limit is a 429.
    v4.fake.fail("POST", "request_code", status=400, code=80007, message="Rate limit")
    limited = await v4.post(f"/v1/phones/{phone_id}/verification-code", {"method": "sms"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    assert limited.json()["error"]["code"] == "meta_rate_limited"
    sent = await v4.post(
        f"/v1/phones/{phone_id}/verification-code", {"method": "voice", "locale": "pt_BR"}
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["status"] == "pending_verification"
    wrong = await v4.post(f"/v1/phones/{phone_id}/verify", {"code": "123456"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "verification_code_incorrect"
    bad = await v4.post(f"/v1/phones/{phone_id}/verify", {"code": "12ab"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "code"

    verified = await v4.post(f"/v1/phones/{phone_id}/verify", {"code": "000000"})
    assert verified.status_code == 200, verified.text
    data = verified.json()["data"]
    assert data["status"] == "connected" and data["isPhoneRegistered"] is True
    assert len(v4.calls("/register")) == 1
    stored = await v4.services.storage.get_phone(phone_id)
    assert stored is not None and stored.pin_enc  # the PIN is kept, encrypted
    pin = v4.services.box.decrypt(
        stored.pin_enc, context=f"phone:{stored.org_id}:{body['phoneNumberId']}"
    )
    assert pin == v4.fake.phones[body["phoneNumberId"]]["_pin"]
    again = await v4.get(f"/v1/onboarding-links/{link['id']}")
    assert again["isPhoneRegistered"] is True
    twice = await v4.post(f"/v1/phones/{phone_id}/verify", {"code": "000000"})
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "phone_not_pending_verification"
    events = await v4.events()
    assert events == [
        "onboarding_link.completed",
        "phone_number.connected",
        "phone_number.updated",
        "waba.connected",
    ]
    (update,) = [
        await v4.services.storage.get_event(d.event_id)
        for d in (await v4.services.storage.list_deliveries(v4.hook_id, Window(10))).items
        if d.event_type == "phone_number.updated"
    ]
    assert update is not None
    assert update.data["previousStatus"] == "pending_verification"
    assert update.data["status"] == "connected" and update.data["id"] == phone_id


async def test_no_number_then_sync_connects_it(v4: V4) -> None:
    link = await v4.link()
    response, body = await v4.finish(link["id"], "no_number")
    assert response.status_code == 200, response.text
    done = await v4.get(f"/v1/onboarding-links/{link['id']}")
    assert done["phoneNumberId"] is None and done["isPhoneRegistered"] is None
    assert await v4.events() == ["onboarding_link.completed", "waba.connected"]
    (waba,) = await v4.items("/v1/wabas")
    assert waba["id"] == done["wabaId"] and waba["metaWabaId"] == body["wabaId"]
    assert waba["phoneNumberIds"] == []

    meta_phone = v4.fake.add_number(body["wabaId"])
    synced = await v4.post(f"/v1/wabas/{waba['id']}/phones/sync", {})
    assert synced.status_code == 200, synced.text
    (phone_id,) = synced.json()["data"]["phoneNumberIds"]
    phone = await v4.get(f"/v1/phones/{phone_id}")
    assert phone["metaPhoneNumberId"] == meta_phone and phone["status"] == "connected"
    assert phone["isPhoneRegistered"] is True and phone["onboardingLinkId"] is None
    assert v4.fake.phones[meta_phone]["_webhook"].endswith(f"/webhook/phone/{phone_id}")
    # Again: nothing new at Meta, nothing new here.
    again = await v4.post(f"/v1/wabas/{waba['id']}/phones/sync", {})
    assert again.json()["data"]["phoneNumberIds"] == [phone_id]
    assert len(v4.calls("/register")) == 1
    assert await v4.events() == [
        "onboarding_link.completed",
        "phone_number.connected",
        "waba.connected",
    ]
    assert (await v4.get(f"/v1/wabas/{waba['id']}"))["phoneNumberIds"] == [phone_id]
    other = await v4.client.get("/v1/wabas/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert other.status_code == 401  # no key: and with one, another org's id is a 404
    missing = await v4.client.get("/v1/wabas/00000000-0000-0000-0000-000000000000", headers=v4.auth)
    assert missing.status_code == 404


async def test_coexistence_syncs_once_and_never_registers(v4: V4) -> None:
    refused = await v4.link()
    response, _ = await v4.finish(refused["id"], "business_app")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "connection_type_not_allowed"

    link = await v4.link(connectionTypes=["business_app", "cloud_api"])
    # Meta answers the history sync with a rate limit once: it did not happen, so it is
    # asked again; the state sync goes through first time.
    v4.fake.fail("POST", "smb_app_data", status=400, code=4, message="Too many calls", times=1)
    _no_backoff(v4)
    response, body = await v4.finish(link["id"], "business_app")
    assert response.status_code == 200, response.text
    done = await v4.get(f"/v1/onboarding-links/{link['id']}")
    phone = await v4.get(f"/v1/phones/{done['phoneNumberId']}")
    assert phone["platform"] == "business_app" and phone["status"] == "connected"
    assert phone["coexistence"] == {"stateSync": "requested", "historySync": "requested"}
    assert v4.calls("/register") == []
    syncs = v4.fake.phones[phone["metaPhoneNumberId"]]["_syncs"]
    assert syncs == ["smb_app_state_sync", "history"]
    assert set(v4.fake.subscribed_fields[body["wabaId"]]) >= {
        "history",
        "smb_app_state_sync",
        "smb_message_echoes",
    }


async def test_a_sync_meta_did_not_answer_is_not_asked_twice(v4: V4) -> None:
    link = await v4.link(connectionTypes=["cloud_api", "business_app"])
    v4.fake.fail("POST", "smb_app_data", status=503, times=1)  # no answer: may have started
    _no_backoff(v4)
    response, _ = await v4.finish(link["id"], "business_app")
    assert response.status_code == 200, response.text
    done = await v4.get(f"/v1/onboarding-links/{link['id']}")
    phone = await v4.get(f"/v1/phones/{done['phoneNumberId']}")
    assert phone["coexistence"] == {"stateSync": "unknown", "historySync": "requested"}
    assert len(v4.calls("/smb_app_data")) == 2


async def _no_wait(seconds: float) -> None:
    return None


def _no_backoff(v4: V4) -> None:
    """Meta's retryable errors are tried again at once (no real sleeping in tests)."""
    graph = v4.services.graph
    assert graph is not None
    graph.sleep = _no_wait


async def test_the_page_reports_the_session_before_the_code(v4: V4) -> None:
    link = await v4.link()
    path = f"/signup/{link['id']}/session"
    report = {"event": "FINISH", "wabaId": "524126980791429", "sessionId": "abc-123"}
    recorded = await v4.client.post(path, json={**report, "phoneNumberId": "106540352242922"})
    assert recorded.status_code == 202, recorded.text
    stored = await v4.services.storage.get_link(link["id"])
    assert stored is not None and stored.session_report is not None
    assert stored.session_report["waba_id"] == "524126980791429"
    assert stored.session_report["session_id"] == "abc-123" and stored.status.value == "pending"
    for bad, param in (
        ({**report, "event": "NOPE"}, "event"),
        ({"event": "FINISH"}, "wabaId"),
        ({**report, "wabaId": "x1"}, "wabaId"),
        ({**report, "extra": 1}, "extra"),
    ):
        refused = await v4.client.post(path, json=bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["param"] == param
    unknown = await v4.client.post(
        "/signup/00000000-0000-0000-0000-000000000000/session", json=report
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("locale", "sdk"),
    [("pt_BR", "pt_BR"), ("es_LA", "es_LA"), ("ar_AR", "ar_AR"), (None, "en_US")],
)
async def test_the_sdk_speaks_the_links_locale(v4: V4, locale: str | None, sdk: str) -> None:
    link = await v4.link(**({"locale": locale} if locale else {}))
    page = await v4.client.get(f"/signup/{link['id']}")
    assert f"https://connect.facebook.net/{sdk}/sdk.js" in page.text
    assert '"businessApp":false' in page.text
