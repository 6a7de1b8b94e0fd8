"""Test mode through the API, on every storage backend, on a server without EDGE_SANDBOX:
key prefixes, objects that never cross modes, idempotency per mode, events routed by
mode, and Meta's webhooks that touch only their own mode's objects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from edge_onboard.api.auth import create_key, hash_key
from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET as FAKE_SECRET
from edge_onboard.services import Services
from edge_onboard.storage import (
    ApiKey,
    Completion,
    LinkCondition,
    LinkStatus,
    Phone,
    PhoneStatus,
    Storage,
    Waba,
)
from tests.api.sdk_world import callback_body
from tests.conftest import FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio
LIVE_SECRET = "live-app-secret"
META = {
    "EDGE_META_APP_ID": "1234567890",
    "EDGE_META_APP_SECRET": LIVE_SECRET,
    "EDGE_META_CONFIG_ID": "987654321",
    "EDGE_META_GRAPH_URL": "http://127.0.0.1:9",  # never reached by these tests
}
HOOK = {"url": "https://hooks.example.com/x", "events": ["onboarding_link.opened"]}


class Modes:
    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.live: dict[str, str] = {}
        self.test: dict[str, str] = {}

    async def post(self, auth: dict[str, str], path: str, body: Any, **headers: str) -> Any:
        response = await self.client.post(f"/v1/{path}", json=body, headers={**auth, **headers})
        assert response.status_code in (200, 201), response.text
        return response.json()["data"]

    async def status(self, auth: dict[str, str], path: str) -> int:
        return (await self.client.get(f"/v1/{path}", headers=auth)).status_code

    async def ids(self, auth: dict[str, str], path: str) -> list[str]:
        response = await self.client.get(f"/v1/{path}", headers=auth)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    async def complete(self, link: dict[str, Any]) -> None:
        """The end-user finishes the fake Meta's signup (what the sandbox popup posts)."""
        body = callback_body(self.services.sandbox.finish("ok"))
        response = await self.client.post(f"/signup/{link['id']}/callback", json=body)
        assert response.status_code == 200, response.text


@pytest.fixture
async def modes(storage: Storage, clock: FakeClock) -> AsyncIterator[Modes]:
    async with running_app(storage, clock, make_settings(**META)) as client:
        found = Modes(client, client.services)
        _, live_record, live = await create_key(storage, "acme", clock())
        _, test_record, test = await create_key(storage, "acme", clock(), livemode=False)
        assert live.startswith("sk_live_") and live_record.livemode is True
        assert test.startswith("sk_test_") and test_record.livemode is False
        assert live_record.prefix.startswith("sk_live_") and len(live_record.prefix) == 16
        found.live = {"Authorization": f"Bearer {live}"}
        found.test = {"Authorization": f"Bearer {test}"}
        yield found


async def test_an_old_sk_org_key_is_a_live_key(
    modes: Modes, storage: Storage, clock: FakeClock
) -> None:
    org_id = (await storage.find_api_keys("sk_live_"))[0].org_id
    old = "sk_org_" + "A" * 43
    doc = ApiKey("old-key", org_id, hash_key(old), old[:15], clock()).to_doc()
    del doc["livemode"]  # stored before test mode
    await storage.insert_api_key(ApiKey.from_doc(doc))
    legacy = {"Authorization": f"Bearer {old}"}
    made = await modes.post(legacy, "onboarding-links", {"name": "Old"})
    assert made["livemode"] is True
    assert made["id"] in await modes.ids(modes.live, "onboarding-links")
    assert await modes.status(modes.test, f"onboarding-links/{made['id']}") == 404
    # An unknown key of any prefix is refused alike.
    for prefix in ("sk_org_", "sk_live_", "sk_test_"):
        bad = {"Authorization": f"Bearer {prefix}{'B' * 43}"}
        assert await modes.status(bad, "onboarding-links") == 401


async def test_objects_never_cross_modes(modes: Modes) -> None:
    live_link = await modes.post(modes.live, "onboarding-links", {"name": "Live"})
    test_link = await modes.post(modes.test, "onboarding-links", {"name": "Test"})
    assert live_link["livemode"] is True and test_link["livemode"] is False
    live_hook = await modes.post(modes.live, "outgoing-webhooks", HOOK)
    test_hook = await modes.post(modes.test, "outgoing-webhooks", HOOK)
    assert live_hook["livemode"] is True and test_hook["livemode"] is False

    for auth, mine, theirs in (
        (modes.live, (live_link, live_hook), (test_link, test_hook)),
        (modes.test, (test_link, test_hook), (live_link, live_hook)),
    ):
        assert await modes.ids(auth, "onboarding-links") == [mine[0]["id"]]
        assert await modes.ids(auth, "outgoing-webhooks") == [mine[1]["id"]]
        assert await modes.status(auth, f"onboarding-links/{theirs[0]['id']}") == 404
        assert await modes.status(auth, f"outgoing-webhooks/{theirs[1]['id']}") == 404
        assert await modes.status(auth, f"outgoing-webhooks/{theirs[1]['id']}/deliveries") == 404
        # Nor as a list cursor, nor to delete.
        cursor = f"onboarding-links?startingAfter={theirs[0]['id']}"
        assert await modes.status(auth, cursor) == 400
        path = f"/v1/onboarding-links/{theirs[0]['id']}"
        assert (await modes.client.delete(path, headers=auth)).status_code == 404
        assert await modes.status(auth, f"onboarding-links/{mine[0]['id']}") == 200


async def test_events_and_recoveries_are_per_mode(modes: Modes) -> None:
    """GET /v1/events shows only the key's mode; the other mode's event is 404 (also as a
    cursor), and a recovery of the other mode's endpoint is 404."""
    org_id = (await modes.client.get("/v1/organization", headers=modes.live)).json()["data"]["id"]
    emitted = {}
    for livemode in (True, False):
        event = await modes.services.webhooks.emit(
            org_id, "onboarding_link.opened", {"n": int(livemode)}, livemode=livemode
        )
        assert event is not None and event.livemode is livemode
        emitted[livemode] = event.id
    test_hook = await modes.post(modes.test, "outgoing-webhooks", HOOK)
    for auth, mine, theirs in (
        (modes.live, emitted[True], emitted[False]),
        (modes.test, emitted[False], emitted[True]),
    ):
        assert await modes.ids(auth, "events") == [mine]
        assert await modes.status(auth, f"events/{mine}") == 200
        assert await modes.status(auth, f"events/{theirs}") == 404
        assert await modes.status(auth, f"events?startingAfter={theirs}") == 400
    body = {"since": "2026-01-01T00:00:00.000Z"}
    recover = f"/v1/outgoing-webhooks/{test_hook['id']}/recover"
    assert (await modes.client.post(recover, json=body, headers=modes.live)).status_code == 404
    shown = (await modes.client.get(f"/v1/events/{emitted[False]}", headers=modes.test)).json()
    assert shown["data"]["livemode"] is False


async def test_idempotency_keys_are_per_mode(modes: Modes) -> None:
    key = {"Idempotency-Key": "same-key"}
    live = await modes.post(modes.live, "onboarding-links", {"name": "Same"}, **key)
    test = await modes.post(modes.test, "onboarding-links", {"name": "Same"}, **key)
    assert live["id"] != test["id"] and test["livemode"] is False
    again = await modes.client.post(
        "/v1/onboarding-links", json={"name": "Same"}, headers={**modes.test, **key}
    )
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["data"]["id"] == test["id"]


async def test_a_test_signup_runs_against_the_fake_meta(modes: Modes) -> None:
    live_hook = await modes.post(modes.live, "outgoing-webhooks", HOOK)
    test_hook = await modes.post(modes.test, "outgoing-webhooks", HOOK)
    link = await modes.post(modes.test, "onboarding-links", {"name": "Test"})
    page = await modes.client.get(f"/signup/{link['id']}")
    assert page.status_code == 200 and "sandbox-banner" in page.text
    await modes.complete(link)
    done = await modes.client.get(f"/v1/onboarding-links/{link['id']}", headers=modes.test)
    data = done.json()["data"]
    assert data["status"] == "completed" and data["isPhoneRegistered"] is True
    assert await modes.ids(modes.test, "phones") == [data["phoneNumberId"]]
    assert await modes.ids(modes.test, "wabas") == [data["wabaId"]]
    assert await modes.ids(modes.live, "phones") == []
    assert await modes.ids(modes.live, "wabas") == []
    assert await modes.status(modes.live, f"phones/{data['phoneNumberId']}") == 404
    assert await modes.status(modes.live, f"wabas/{data['wabaId']}") == 404
    phone = await modes.client.get(f"/v1/phones/{data['phoneNumberId']}", headers=modes.test)
    assert phone.json()["data"]["livemode"] is False

    # The page's first view (onboarding_link.opened) went to the test endpoint only.
    response = await modes.client.get(
        f"/v1/outgoing-webhooks/{test_hook['id']}/deliveries", headers=modes.test
    )
    deliveries = response.json()["data"]
    assert [d["event"] for d in deliveries] == ["onboarding_link.opened"]
    assert deliveries[0]["livemode"] is False
    event = await modes.services.storage.get_event(deliveries[0]["eventId"])
    assert event is not None and event.livemode is False
    response = await modes.client.get(
        f"/v1/outgoing-webhooks/{live_hook['id']}/deliveries", headers=modes.live
    )
    assert response.json()["data"] == []

    # A live link's page carries the configured Meta app, without the banner.
    live_link = await modes.post(modes.live, "onboarding-links", {"name": "Live"})
    live_page = await modes.client.get(f"/signup/{live_link['id']}")
    assert live_page.status_code == 200 and "sandbox-banner" not in live_page.text
    assert '"appId":"1234567890"' in live_page.text and '"configId":"987654321"' in live_page.text


def _quality_update(meta_waba_id: str, number: str) -> bytes:
    change = {
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": number.lstrip("+"), "event": "FLAGGED"},
    }
    return orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": meta_waba_id, "changes": [change]}],
        }
    )


async def test_meta_webhooks_touch_only_their_own_modes_objects(modes: Modes) -> None:
    link = await modes.post(modes.test, "onboarding-links", {"name": "Test"})
    await modes.complete(link)
    phone_id = await modes.client.get(f"/v1/onboarding-links/{link['id']}", headers=modes.test)
    phone_id = phone_id.json()["data"]["phoneNumberId"]
    phone = await modes.services.storage.get_phone(phone_id)
    assert phone is not None and phone.phone_number is not None
    raw = _quality_update(phone.meta_waba_id, phone.phone_number)

    # Signed by neither app: refused.
    refused = await modes.client.post(
        "/webhook/meta", content=raw, headers={"X-Hub-Signature-256": sign_body("x", raw)}
    )
    assert refused.status_code == 401
    # Signed by the configured (live) app: accepted, but it cannot touch a test phone.
    signed_live = {"X-Hub-Signature-256": sign_body(LIVE_SECRET, raw)}
    assert (
        await modes.client.post("/webhook/meta", content=raw, headers=signed_live)
    ).status_code == 200
    unchanged = await modes.services.storage.get_phone(phone_id)
    assert unchanged is not None and unchanged.meta_state == phone.meta_state
    # Signed with the fake's well-known EDGE_SANDBOX secret: not on a live deployment,
    # whose fake Meta has a secret of its own.
    assert modes.services.sandbox.app_secret != FAKE_SECRET
    signed_public = {"X-Hub-Signature-256": sign_body(FAKE_SECRET, raw)}
    assert (
        await modes.client.post("/webhook/meta", content=raw, headers=signed_public)
    ).status_code == 401
    # Signed by this deployment's fake Meta: it reaches the test phone.
    signed_fake = {"X-Hub-Signature-256": sign_body(modes.services.sandbox.app_secret, raw)}
    assert (
        await modes.client.post("/webhook/meta", content=raw, headers=signed_fake)
    ).status_code == 200
    changed = await modes.services.storage.get_phone(phone_id)
    assert changed is not None and (changed.meta_state or {}).get("qualityEvent") == "FLAGGED"


async def test_unknown_ids_stay_404_in_both_modes(modes: Modes) -> None:
    missing = str(uuid.uuid4())
    for auth in (modes.live, modes.test):
        for path in ("onboarding-links", "phones", "wabas", "outgoing-webhooks"):
            assert await modes.status(auth, f"{path}/{missing}") == 404


async def test_the_fake_metas_public_routes_are_rate_limited(
    storage: Storage, clock: FakeClock
) -> None:
    # On a live deployment the fake's popup is public: it spends the client's budget.
    settings = make_settings(**META, EDGE_RATE_LIMIT_PUBLIC="1")
    async with running_app(storage, clock, settings) as client:
        finish = {"scenario": "ok"}
        answers = [
            (await client.post("/_sandbox/dialog/finish", json=finish)).status_code
            for _ in range(30)
        ]
        assert answers[0] == 200 and 429 in answers
        # Reads (the popup's page and assets, Graph's GETs) spend the same budget.
        for path in ("/_sandbox/dialog", "/_sandbox/dialog.js", "/_sandbox/graph/v25.0/1"):
            limited = await client.get(path)
            assert limited.status_code == 429, path
            assert limited.json()["error"]["code"] == "rate_limited"


async def test_the_fake_metas_controls_need_the_owners_test_key(
    modes: Modes, storage: Storage, clock: FakeClock
) -> None:
    """Knowing a test number's or WABA's Meta id is not enough: an anonymous caller is
    refused (401), a live key too (403), and another organisation's test key cannot
    inject into or disconnect the number (404, nothing queued); the owner's test key can."""
    link = await modes.post(modes.test, "onboarding-links", {"name": "Test"})
    await modes.complete(link)
    got = await modes.client.get(f"/v1/onboarding-links/{link['id']}", headers=modes.test)
    phone = await storage.get_phone(got.json()["data"]["phoneNumberId"])
    assert phone is not None
    inbound = {"phone_number_id": phone.meta_phone_number_id, "from": "15550001111", "text": "hi"}
    remove = {"waba_id": phone.meta_waba_id}
    _, _, other = await create_key(storage, "other", clock(), livemode=False)
    intruder = {"Authorization": f"Bearer {other}"}
    fake = modes.services.sandbox
    queued = len(fake.outbox)

    async def control(path: str, body: dict[str, str], auth: dict[str, str]) -> httpx.Response:
        return await modes.client.post(f"/_sandbox/{path}", json=body, headers=auth)

    for path, body in (("inbound", inbound), ("remove-access", remove)):
        anonymous = await control(path, body, {})
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["error"]["code"] == "missing_api_key"
        live = await control(path, body, modes.live)
        assert live.status_code == 403 and live.json()["error"]["code"] == "test_mode_only"
        theirs = await control(path, body, intruder)
        assert theirs.status_code == 404, theirs.text
        assert theirs.json()["error"]["code"] == "resource_missing"
    assert len(fake.outbox) == queued  # nothing injected, nothing removed
    assert any(phone.meta_waba_id in granted for granted in fake.tokens.values())

    # The owner's test key: the message arrives as the owner's test event.
    assert (await control("inbound", inbound, modes.test)).status_code == 202
    assert await fake.flush(modes.client) == 1
    events = await modes.client.get("/v1/events?type=message.received", headers=modes.test)
    assert [e["data"]["phoneNumberId"] for e in events.json()["data"]] == [phone.id]
    bad = await control("inbound", {**inbound, "from": "x"}, modes.test)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "from"
    # ... and removing the app's access disconnects the owner's WABA.
    assert (await control("remove-access", remove, modes.test)).status_code == 202
    assert not any(phone.meta_waba_id in granted for granted in fake.tokens.values())
    assert await fake.flush(modes.client) == 1


async def test_update_links_stay_in_their_organisation_and_mode(
    modes: Modes, storage: Storage, clock: FakeClock
) -> None:
    """An update link reaches only its own organisation's objects of its key's mode: a test
    key cannot name a live number (404, as any foreign id), the test helper finishes a test
    update link only, and the fake Meta's record of profile changes answers the owner's
    test key alone."""
    # A live number, written as a live signup would (the live Meta is not reachable here).
    org_id = (await storage.find_api_keys("sk_live_"))[0].org_id
    now = clock()
    signup = await modes.post(modes.live, "onboarding-links", {"name": "Live"})
    claim = {"claim_id": "live-claim", "claimed_until": now + timedelta(minutes=5)}
    assert await storage.update_link(
        org_id, signup["id"], LinkCondition({LinkStatus.PENDING}), claim
    )
    live_waba = Waba(str(uuid.uuid4()), org_id, "1001", "token", now, now)
    live_phone = Phone(
        id=str(uuid.uuid4()),
        org_id=org_id,
        waba_id=live_waba.id,
        meta_waba_id="1001",
        meta_phone_number_id="2002",
        status=PhoneStatus.CONNECTED,
        is_registered=True,
        onboarding_link_id=signup["id"],
        created_at=now,
        updated_at=now,
        phone_number="+15550002002",
    )
    written = await storage.complete_link(
        Completion(
            org_id=org_id,
            link_id=signup["id"],
            claim_id="live-claim",
            waba=live_waba,
            phone=live_phone,
            link_changes={"status": LinkStatus.COMPLETED, "completed_at": now, "claim_id": None},
        )
    )
    assert written is not None and written.phone is not None
    live_phone, live_waba = written.phone, written.waba
    for body in ({"phoneNumberId": live_phone.id}, {"wabaId": live_waba.id}):
        refused = await modes.client.post(
            "/v1/onboarding-links",
            json={"name": "Update", "type": "update", **body},
            headers=modes.test,
        )
        assert refused.status_code == 404, refused.text
    live_update = await modes.post(
        modes.live,
        "onboarding-links",
        {"name": "Update", "type": "update", **{"phoneNumberId": live_phone.id}},
    )
    assert live_update["livemode"] is True and live_update["phoneNumberId"] == live_phone.id
    assert await modes.status(modes.test, f"onboarding-links/{live_update['id']}") == 404
    helper = await modes.client.post(
        f"/v1/test-helpers/onboarding-links/{live_update['id']}/complete",
        json={},
        headers=modes.live,
    )
    assert helper.status_code == 400 and helper.json()["error"]["code"] == "test_mode_only"

    # A test number: the owner's test key makes an update link and the helper finishes it.
    link = await modes.post(modes.test, "onboarding-links", {"name": "Test"})
    await modes.complete(link)
    got = await modes.client.get(f"/v1/onboarding-links/{link['id']}", headers=modes.test)
    phone_id = got.json()["data"]["phoneNumberId"]
    update = await modes.post(
        modes.test,
        "onboarding-links",
        {"name": "Test", "type": "update", "phoneNumberId": phone_id},
    )
    assert await modes.status(modes.live, f"onboarding-links/{update['id']}") == 404
    done = await modes.post(
        modes.test, f"test-helpers/onboarding-links/{update['id']}/complete", {}
    )
    assert done["status"] == "completed" and done["type"] == "update"
    assert done["result"] == {"changes": [], "profileFields": []}

    phone = await storage.get_phone(phone_id)
    assert phone is not None
    posts = {"phone_number_id": phone.meta_phone_number_id}
    _, _, other = await create_key(storage, "other", clock(), livemode=False)
    for auth, status in (
        ({}, 401),
        (modes.live, 403),
        ({"Authorization": f"Bearer {other}"}, 404),
        (modes.test, 200),
    ):
        answer = await modes.client.post("/_sandbox/profile-posts", json=posts, headers=auth)
        assert answer.status_code == status, answer.text
    listed = await modes.client.post("/_sandbox/profile-posts", json=posts, headers=modes.test)
    assert listed.json() == {"data": []}
