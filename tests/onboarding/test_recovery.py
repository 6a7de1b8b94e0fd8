"""Meta's app-level webhook and recovery, server side, against a fake Graph over HTTP:
a signup whose page never sent the code is completed from Meta's PARTNER_ADDED after the
grace period, exactly once even when the late callback races it; without a system-user
token the link is recoverable by hand; PARTNER_REMOVED disconnects; account and number
changes become events; the reconciliation pass sends onboarding_link.expired once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import orjson
import pytest

from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET, SYSTEM_USER_TOKEN, SandboxMeta
from edge_onboard.onboarding.recovery import reconcile_once
from edge_onboard.services import Services
from edge_onboard.storage import Storage
from tests.conftest import FakeClock, real_meta_settings, running_app

pytestmark = pytest.mark.anyio


class World:
    def __init__(
        self, client: httpx.AsyncClient, services: Services, fake: SandboxMeta, clock: FakeClock
    ):
        self.client, self.services, self.fake, self.clock = client, services, fake, clock
        self.auth: dict[str, str] = {}
        self.hook_id = ""

    async def link(self, **body: Any) -> dict[str, Any]:
        made = await self.client.post(
            "/v1/onboarding-links", json={"name": "Acme", **body}, headers=self.auth
        )
        assert made.status_code == 201, made.text
        data: dict[str, Any] = made.json()["data"]
        return data

    async def get(self, path: str) -> Any:
        response = await self.client.get(path, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def session(self, link_id: str, scenario: str = "close_tab") -> dict[str, Any]:
        """The popup finished: the page reports Meta's session message (no code yet)."""
        session = self.fake.finish(scenario)
        data = session["data"]
        report = {"event": session["event"], "wabaId": data["waba_id"]}
        report |= {"phoneNumberId": data["phone_number_id"], "businessId": data["business_id"]}
        recorded = await self.client.post(f"/signup/{link_id}/session", json=report)
        assert recorded.status_code == 202, recorded.text
        return session

    async def meta_webhooks(self) -> int:
        """POST what the fake Meta queued for the app-level webhook, signed."""
        sent = 0
        for url, raw in list(self.fake.outbox):
            self.fake.outbox.remove((url, raw))
            if url.endswith("/webhook/meta"):
                answer = await self.client.post(
                    "/webhook/meta",
                    content=raw,
                    headers={"X-Hub-Signature-256": sign_body(APP_SECRET, raw)},
                )
                assert answer.status_code == 200, answer.text
                sent += 1
        return sent

    async def reconcile(self) -> dict[str, int] | None:
        recovery = self.services.recovery
        assert recovery is not None
        return await reconcile_once(recovery)

    async def events(self) -> list[str]:
        page = await self.get(f"/v1/outgoing-webhooks/{self.hook_id}/deliveries?limit=100")
        return sorted(d["event"] for d in page)


async def _world(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str], **env: str
) -> AsyncIterator[World]:
    fake, url = meta_over_http
    settings = real_meta_settings(url, EDGE_RECOVERY_GRACE_SECONDS="120", **env)
    async with running_app(storage, clock, settings) as client:
        world = World(client, client.services, fake, clock)
        from edge_onboard.api.auth import create_key
        from edge_onboard.webhooks.catalog import EVENT_TYPES

        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        hook = await client.post(
            "/v1/outgoing-webhooks",
            json={"url": "http://127.0.0.1:9/all", "events": sorted(EVENT_TYPES)},
            headers=world.auth,
        )
        world.hook_id = hook.json()["data"]["id"]
        fake.outbox.clear()
        yield world


@pytest.fixture
async def world(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[World]:
    async for w in _world(
        storage, clock, meta_over_http, EDGE_META_SYSTEM_USER_TOKEN=SYSTEM_USER_TOKEN
    ):
        yield w


@pytest.fixture
async def tokenless(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[World]:
    async for w in _world(storage, clock, meta_over_http):
        yield w


async def test_a_closed_tab_is_recovered_after_the_grace_period(world: World) -> None:
    link = await world.link(externalId="c1")
    session = await world.session(link["id"])
    assert await world.meta_webhooks() == 1  # Meta's PARTNER_ADDED, seconds later
    # Within the grace period the callback may still come: nothing happens yet.
    assert (await world.get(f"/v1/onboarding-links/{link['id']}"))["status"] == "pending"
    world.clock.advance(seconds=121)
    recovery_pass = await world.reconcile()
    assert recovery_pass is not None and recovery_pass["grantsSettled"] == 1
    done = await world.get(f"/v1/onboarding-links/{link['id']}")
    assert done["status"] == "completed" and done["completedVia"] == "recovery"
    assert done["phoneNumberId"] is not None and done["recoverable"] is False
    phone = await world.get(f"/v1/phones/{done['phoneNumberId']}")
    assert phone["metaPhoneNumberId"] == session["data"]["phone_number_id"]
    events = await world.events()
    for kind in ("phone_number.connected", "onboarding_link.recovered", "waba.connected"):
        assert events.count(kind) == 1, events
    # Meta retries its webhook: nothing more happens.
    world.fake.account_update(
        session["data"]["business_id"],
        "PARTNER_ADDED",
        session["data"]["waba_id"],
        session["data"]["business_id"],
    )
    await world.meta_webhooks()
    await world.reconcile()
    assert (await world.events()).count("onboarding_link.recovered") == 1


async def test_a_late_callback_and_recovery_make_one_completion(world: World) -> None:
    link = await world.link()
    session = await world.session(link["id"], scenario="ok")  # the code exists here
    data = session["data"]
    world.clock.advance(seconds=121)
    body = {
        "code": session["code"],
        "wabaId": data["waba_id"],
        "phoneNumberId": data["phone_number_id"],
        "event": "FINISH",
    }
    business = data["business_id"]
    world.fake.account_update(business, "PARTNER_ADDED", data["waba_id"], business)
    answers: list[int] = []

    async def callback() -> None:
        answer = await world.client.post(f"/signup/{link['id']}/callback", json=body)
        answers.append(answer.status_code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(callback)
        tg.start_soon(world.meta_webhooks)
    await world.reconcile()
    done = await world.get(f"/v1/onboarding-links/{link['id']}")
    assert done["status"] == "completed" and done["completedVia"] in ("callback", "recovery")
    events = await world.events()
    assert events.count("phone_number.connected") == 1, events
    assert events.count("onboarding_link.completed") == 1, events
    assert len(await world.get("/v1/phones")) == 1
    assert answers and answers[0] in (200, 409)


async def test_without_a_system_user_token_the_link_is_recoverable(tokenless: World) -> None:
    world = tokenless
    link = await world.link()
    session = await world.session(link["id"])
    await world.meta_webhooks()
    world.clock.advance(seconds=121)
    await world.reconcile()
    pending = await world.get(f"/v1/onboarding-links/{link['id']}")
    assert pending["status"] == "pending" and pending["recoverable"] is True
    assert pending["recovery"]["metaWabaId"] == session["data"]["waba_id"]
    refused = await world.client.post(
        f"/v1/onboarding-links/{link['id']}/recover", json={}, headers=world.auth
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "recovery_unavailable"
    # The operator configures the token; the customer finishes the link.
    recovery = world.services.recovery
    assert recovery is not None
    recovery.system_user_token = SYSTEM_USER_TOKEN
    recovered = await world.client.post(
        f"/v1/onboarding-links/{link['id']}/recover", json={}, headers=world.auth
    )
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["data"]["completedVia"] == "recovery"


async def test_partner_removed_disconnects(world: World) -> None:
    link = await world.link()
    session = await world.session(link["id"], scenario="ok")
    data = session["data"]
    body = {"code": session["code"], "wabaId": data["waba_id"], "event": "FINISH"}
    body["phoneNumberId"] = data["phone_number_id"]
    assert (await world.client.post(f"/signup/{link['id']}/callback", json=body)).status_code == 200
    done = await world.get(f"/v1/onboarding-links/{link['id']}")
    assert world.fake.remove_access(data["waba_id"])
    assert await world.meta_webhooks() == 1
    phone = await world.get(f"/v1/phones/{done['phoneNumberId']}")
    assert phone["status"] == "disconnected"
    health = await world.get(f"/v1/phones/{done['phoneNumberId']}/health")
    assert health["capabilities"] == {"canSendMessages": False, "canReceiveMessages": False}
    events = await world.events()
    assert events.count("waba.disconnected") == 1 and events.count("phone_number.updated") == 1
    # Meta's retry: nothing twice.
    world.fake.account_update(data["business_id"], "PARTNER_REMOVED", data["waba_id"], "x")
    await world.meta_webhooks()
    assert (await world.events()).count("waba.disconnected") == 1


async def test_account_and_number_changes_become_events(world: World) -> None:
    link = await world.link()
    session = await world.session(link["id"], scenario="ok")
    data = session["data"]
    body = {"code": session["code"], "wabaId": data["waba_id"], "event": "FINISH"}
    body["phoneNumberId"] = data["phone_number_id"]
    assert (await world.client.post(f"/signup/{link['id']}/callback", json=body)).status_code == 200
    display = world.fake.phones[data["phone_number_id"]]["display_phone_number"]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": data["waba_id"],
                "changes": [
                    {
                        "field": "phone_number_quality_update",
                        "value": {
                            "display_phone_number": display,
                            "event": "FLAGGED",
                            "current_limit": "TIER_1K",
                        },
                    },
                    {
                        "field": "account_update",
                        "value": {
                            "event": "ACCOUNT_RESTRICTION",
                            "restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE"}],
                        },
                    },
                ],
            }
        ],
    }
    raw = orjson.dumps(payload)
    for _ in range(2):  # Meta retries: applied once
        signed = {"X-Hub-Signature-256": sign_body(APP_SECRET, raw)}
        answer = await world.client.post("/webhook/meta", content=raw, headers=signed)
        assert answer.status_code == 200
    events = await world.events()
    assert events.count("waba.updated") == 1, events
    phone_updates = [e for e in events if e == "phone_number.updated"]
    assert len(phone_updates) == 1
    stored_link = await world.services.storage.get_link(link["id"])
    assert stored_link is not None
    storage = world.services.storage
    stored = await storage.find_phone_by_meta_id(stored_link.org_id, data["phone_number_id"])
    assert stored is not None and stored.meta_state is not None
    assert stored.meta_state["qualityEvent"] == "FLAGGED"
    forged = await world.client.post("/webhook/meta", content=raw, headers={})
    assert forged.status_code == 401


async def test_the_app_webhook_handshake(world: World) -> None:
    from edge_onboard.hosted.meta_webhook import verify_token

    token = verify_token(world.services)
    ok = await world.client.get(
        "/webhook/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"},
    )
    assert (ok.status_code, ok.text) == (200, "42")
    wrong = {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    bad = await world.client.get("/webhook/meta", params=wrong)
    assert bad.status_code == 403


async def test_lifecycle_events_once_each(world: World) -> None:
    link = await world.link(expiresInSeconds=300)
    for _ in range(2):
        assert (await world.client.get(f"/signup/{link['id']}")).status_code == 200
    cancelled = await world.client.post(
        f"/signup/{link['id']}/callback", json={"error": {"code": "signup_cancelled"}}
    )
    assert cancelled.status_code == 422
    world.clock.advance(seconds=301)
    first = await world.reconcile()
    assert first is not None and first["expired"] == 1
    await world.reconcile()
    # A read of the expired link does not announce it again.
    assert (await world.get(f"/v1/onboarding-links/{link['id']}"))["status"] == "expired"
    events = await world.events()
    assert events == [
        "onboarding_link.expired",
        "onboarding_link.failed",
        "onboarding_link.opened",
    ], events


async def _other_org(world: World) -> dict[str, str]:
    from edge_onboard.api.auth import create_key

    _, _, key = await create_key(world.services.storage, "globex", world.clock())
    return {"Authorization": f"Bearer {key}"}


async def _report(world: World, auth: dict[str, str], waba_id: str, **more: str) -> str:
    """Another organisation's link, and a session report for it naming ``waba_id``: all
    anyone holding a link needs to send."""
    made = await world.client.post("/v1/onboarding-links", json={"name": "Other"}, headers=auth)
    assert made.status_code == 201, made.text
    link_id: str = made.json()["data"]["id"]
    report = {"event": "FINISH", "wabaId": waba_id, **more}
    recorded = await world.client.post(f"/signup/{link_id}/session", json=report)
    assert recorded.status_code == 202, recorded.text
    return link_id


async def test_a_session_report_never_hands_over_an_account_another_org_holds(
    world: World,
) -> None:
    link = await world.link()
    session = await world.session(link["id"])
    await world.meta_webhooks()
    world.clock.advance(seconds=121)
    await world.reconcile()
    assert (await world.get(f"/v1/onboarding-links/{link['id']}"))["status"] == "completed"
    data = session["data"]
    # Another organisation's link reports the account; Meta then says PARTNER_ADDED for
    # it again (its owner granted access anew, as a reconnect does).
    other = await _other_org(world)
    theirs = await _report(world, other, data["waba_id"])
    world.clock.advance(seconds=200)
    world.fake.account_update(
        data["business_id"], "PARTNER_ADDED", data["waba_id"], data["business_id"]
    )
    await world.meta_webhooks()
    world.clock.advance(seconds=121)
    await world.reconcile()
    seen = await world.client.get(f"/v1/onboarding-links/{theirs}", headers=other)
    assert seen.json()["data"]["status"] == "pending", seen.text
    wabas = await world.client.get("/v1/wabas", headers=other)
    assert wabas.json()["data"] == []


async def test_reports_of_two_orgs_for_a_new_account_complete_neither(world: World) -> None:
    link = await world.link()
    session = await world.session(link["id"])
    other = await _other_org(world)
    theirs = await _report(world, other, session["data"]["waba_id"])
    await world.meta_webhooks()
    world.clock.advance(seconds=121)
    await world.reconcile()
    assert (await world.get(f"/v1/onboarding-links/{link['id']}"))["status"] == "pending"
    seen = await world.client.get(f"/v1/onboarding-links/{theirs}", headers=other)
    assert seen.json()["data"]["status"] == "pending"


async def test_a_report_naming_another_business_is_ignored(world: World) -> None:
    link = await world.link()
    session = await world.session(link["id"])
    other = await _other_org(world)
    theirs = await _report(world, other, session["data"]["waba_id"], businessId="990001")
    await world.meta_webhooks()
    world.clock.advance(seconds=121)
    await world.reconcile()
    assert (await world.get(f"/v1/onboarding-links/{link['id']}"))["status"] == "completed"
    seen = await world.client.get(f"/v1/onboarding-links/{theirs}", headers=other)
    assert seen.json()["data"]["status"] == "pending"
