"""The completion flow against the sandbox's fake Graph, on every storage backend."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.services import Services
from edge_onboard.storage import LinkStatus, Storage
from tests.conftest import FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio


class Flow:
    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client = client
        self.services = services
        assert services.sandbox is not None
        self.sandbox: SandboxMeta = services.sandbox
        self.auth: dict[str, str] = {}

    async def link(self, **body: Any) -> dict[str, Any]:
        payload = {
            "name": "Acme <b>Corp</b>",
            "externalId": "customer_123",
            "redirectUrl": "https://app.example.com/done?from=edge",
        }
        payload.update(body)
        response = await self.client.post("/v1/onboarding-links", json=payload, headers=self.auth)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def get(self, link_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/onboarding-links/{link_id}", headers=self.auth)
        data: dict[str, Any] = response.json()["data"]
        return data

    async def callback(self, link_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/signup/{link_id}/callback", json=body)

    def finish(self, scenario: str = "ok") -> dict[str, Any]:
        session = self.sandbox.finish(scenario)
        data = session["data"]
        body = {"code": session["code"], "wabaId": data["waba_id"], "event": session["event"]}
        if "business_id" in data:
            body["businessId"] = data["business_id"]
        if "phone_number_id" in data:
            body["phoneNumberId"] = data["phone_number_id"]
        return body

    async def phones(self) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/phones", headers=self.auth)
        items: list[dict[str, Any]] = response.json()["data"]
        return items


@pytest.fixture
async def flow(storage: Storage, clock: FakeClock) -> AsyncIterator[Flow]:
    settings = make_settings(EDGE_SANDBOX="1")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        flow = Flow(client, services)
        from edge_onboard.api.auth import create_key

        _, _, key = await create_key(storage, "acme", clock())
        flow.auth = {"Authorization": f"Bearer {key}"}
        yield flow


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def test_the_whole_flow(flow: Flow) -> None:
    link = await flow.link(
        webhookUrl="https://hooks.example.com/wa", webhookEvents=["phone_number.connected"]
    )
    page = await flow.client.get(f"/signup/{link['id']}")
    assert page.status_code == 200
    assert "Acme &lt;b&gt;Corp&lt;/b&gt;" in page.text and "<b>Corp" not in page.text
    assert "Sandbox" in page.text
    assert page.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert link["webhookSecret"] not in page.text and "sandbox-app-secret" not in page.text
    assert flow.auth["Authorization"].split()[1] not in page.text

    body = flow.finish()
    response = await flow.callback(link["id"], body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "success"
    redirect = result["redirectUrl"]
    assert redirect.startswith("https://app.example.com/done?from=edge&")
    assert query(redirect) == {
        "from": ["edge"],
        "onboarding_link_id": [link["id"]],
        "external_id": ["customer_123"],
        "status": ["success"],
    }

    done = await flow.get(link["id"])
    assert done["status"] == "completed"
    uuid.UUID(done["phoneNumberId"])
    uuid.UUID(done["wabaId"])
    assert done["phoneNumber"].startswith("+1555") and len(done["phoneNumber"]) == 12
    assert done["isPhoneRegistered"] is True
    assert done["webhookUrl"] == f"https://onboard.test/webhook/phone/{done['phoneNumberId']}"
    assert done["completedAt"] is not None and done["lastError"] is None
    assert "webhookSecret" not in done and "webhookEvents" not in done

    phone = (await flow.client.get(f"/v1/phones/{done['phoneNumberId']}", headers=flow.auth)).json()
    assert phone["data"] == {
        "id": done["phoneNumberId"],
        "phoneNumber": done["phoneNumber"],
        "metaPhoneNumberId": body["phoneNumberId"],
        "wabaId": done["wabaId"],
        "metaWabaId": body["wabaId"],
        "isPhoneRegistered": True,
        "status": "connected",
        "platform": "cloud_api",
        "displayName": "Sandbox Business",
        "nameStatus": "APPROVED",
        "qualityRating": "GREEN",
        "messagingLimit": None,
        "coexistence": None,
        "onboardingLinkId": link["id"],
        "createdAt": done["completedAt"],
        "livemode": True,
    }
    health = await flow.client.get(f"/v1/phones/{done['phoneNumberId']}/health", headers=flow.auth)
    assert health.status_code == 200, health.text
    report = health.json()["data"]
    assert report["capabilities"] == {"canSendMessages": True, "canReceiveMessages": True}
    assert report["issues"] == [] and report["webhookSubscribed"] is True
    assert report["webhookUrl"] == done["webhookUrl"]

    # Meta points the phone at us and checks the URL: the handshake answers it.
    token = flow.services.completion.verify_token(done["phoneNumberId"])
    hook = f"/webhook/phone/{done['phoneNumberId']}"
    ok = await flow.client.get(
        hook,
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"},
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = await flow.client.get(
        hook, params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    )
    assert bad.status_code == 403

    # Secrets at rest: the stored WABA token and PIN are ciphertexts.
    stored = await flow.services.storage.get_phone(done["phoneNumberId"])
    assert stored is not None and stored.pin_enc and stored.pin_enc.startswith("v1.")
    waba = await flow.services.storage.get_waba(done["wabaId"])
    assert waba is not None and "EAASandbox" not in waba.access_token_enc

    again = await flow.callback(link["id"], flow.finish())
    assert again.status_code == 409 and again.json()["error"]["code"] == "link_completed"
    assert query(again.json()["redirectUrl"])["status"] == ["success"]
    # Opened again, the completed link sends the end-user back with the result.
    connected = await flow.client.get(f"/signup/{link['id']}")
    assert connected.status_code == 303
    assert query(connected.headers["location"])["status"] == ["success"]


async def test_already_registered_number_is_not_registered_again(flow: Flow) -> None:
    link = await flow.link()
    response = await flow.callback(link["id"], flow.finish("registered"))
    assert response.status_code == 200
    assert not any(path.endswith("/register") for _, path in flow.sandbox.calls)
    assert (await flow.get(link["id"]))["isPhoneRegistered"] is True


async def test_registration_failure_is_recorded_not_fatal(flow: Flow) -> None:
    link = await flow.link()
    response = await flow.callback(link["id"], flow.finish("register_fails"))
    assert response.status_code == 200, response.text
    done = await flow.get(link["id"])
    assert done["status"] == "completed" and done["isPhoneRegistered"] is False
    (phone,) = await flow.phones()
    assert phone["status"] == "registration_failed" and phone["isPhoneRegistered"] is False
    stored = await flow.services.storage.get_phone(phone["id"])
    assert stored is not None and stored.registration_error is not None
    assert stored.registration_error["code"] == 133005 and stored.pin_enc is None
    health = (await flow.client.get(f"/v1/phones/{phone['id']}/health", headers=flow.auth)).json()
    assert health["data"]["capabilities"]["canReceiveMessages"] is False
    assert "not_registered" in {issue["code"] for issue in health["data"]["issues"]}


async def test_waba_only_finish_completes_without_a_number(flow: Flow) -> None:
    link = await flow.link()
    assert (await flow.get(link["id"]))["isPhoneRegistered"] is None  # pending
    body = flow.finish("only_waba")
    assert "phoneNumberId" not in body and body["event"] == "FINISH_ONLY_WABA"
    response = await flow.callback(link["id"], body)
    assert response.status_code == 200, response.text
    done = await flow.get(link["id"])
    assert done["status"] == "completed" and done["wabaId"] is not None
    assert done["phoneNumberId"] is None and done["phoneNumber"] is None
    assert done["isPhoneRegistered"] is None and done["webhookUrl"] is None
    assert await flow.phones() == []


async def assert_still_pending(flow: Flow, link_id: str, code: str) -> None:
    link = await flow.get(link_id)
    assert link["status"] == "pending"
    assert link["lastError"]["code"] == code
    assert link["lastError"]["at"].endswith("Z")
    assert await flow.phones() == []
    stored = await flow.services.storage.get_link(link_id)
    assert stored is not None and stored.claim_id is None


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [("foreign_waba", 422, "waba_not_granted")],
)
async def test_foreign_waba_is_refused(flow: Flow, scenario: str, status: int, code: str) -> None:
    link = await flow.link()
    response = await flow.callback(link["id"], flow.finish(scenario))
    assert response.status_code == status
    result = response.json()
    assert result["status"] == "error" and result["error"]["code"] == code
    assert query(result["redirectUrl"])["error_code"] == [code]
    assert query(result["redirectUrl"])["status"] == ["error"]
    await assert_still_pending(flow, link["id"], code)


async def test_used_and_expired_codes(flow: Flow) -> None:
    first, second, third = await flow.link(), await flow.link(), await flow.link()
    body = flow.finish()
    assert (await flow.callback(first["id"], body)).status_code == 200
    reused = await flow.callback(second["id"], body)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "code_exchange_failed"
    second_view = await flow.get(second["id"])
    assert second_view["status"] == "pending"
    assert second_view["lastError"]["code"] == "code_exchange_failed"

    late = flow.finish()
    flow.sandbox.clock = lambda: 10**12  # 30 s codes: this one has long expired
    expired = await flow.callback(third["id"], late)
    assert expired.status_code == 422 and expired.json()["error"]["code"] == "code_exchange_failed"
    # The code exchange is never retried: one attempt per callback.
    exchanges = [p for _, p in flow.sandbox.calls if p == "oauth/access_token"]
    assert len(exchanges) == 3
    assert len(await flow.phones()) == 1


async def test_meta_down_then_retry_succeeds(flow: Flow) -> None:
    link = await flow.link()
    flow.sandbox.fail("GET", "oauth/access_token", status=503)
    response = await flow.callback(link["id"], flow.finish())
    assert response.status_code == 502 and response.json()["error"]["code"] == "meta_unavailable"
    await assert_still_pending(flow, link["id"], "meta_unavailable")

    # Down in the middle (after the exchange): retried with backoff, then given up.
    assert flow.services.graph is not None
    flow.services.graph.sleep = _no_sleep
    flow.sandbox.fail("POST", "subscribed_apps", status=500, times=3)
    response = await flow.callback(link["id"], flow.finish())
    assert response.status_code == 502
    await assert_still_pending(flow, link["id"], "meta_unavailable")

    # A transient rate limit is retried and the signup goes through.
    flow.sandbox.fail("GET", "phone_numbers", status=400, code=80007, times=1)
    response = await flow.callback(link["id"], flow.finish())
    assert response.status_code == 200, response.text
    assert (await flow.get(link["id"]))["lastError"] is None


async def _no_sleep(seconds: float) -> None:
    return None


async def test_meta_refusals_are_final(flow: Flow) -> None:
    link = await flow.link()
    flow.sandbox.fail("POST", "subscribed_apps", status=400, code=200, message="Permissions error")
    response = await flow.callback(link["id"], flow.finish())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "subscribe_failed"
    # Code 200 (permissions) is final: tried once, not retried.
    assert [m for m, p in flow.sandbox.calls if p.endswith("subscribed_apps")] == ["POST"]
    await assert_still_pending(flow, link["id"], "subscribe_failed")


async def test_cancel_and_meta_errors(flow: Flow) -> None:
    link = await flow.link()
    phishing = "Your account is locked: call +1-555-0100 now"
    cancel = await flow.callback(
        link["id"],
        {"error": {"message": phishing, "step": "PHONE_NUMBER_SETUP", "sessionId": "s-123"}},
    )
    assert cancel.status_code == 422
    result = cancel.json()
    assert result["error"] == {
        "code": "signup_cancelled",
        "message": "The signup was cancelled before it finished.",
    }
    params = query(result["redirectUrl"])
    assert params["status"] == ["error"] and params["error_code"] == ["signup_cancelled"]
    assert params["error"] == ["The signup was cancelled before it finished."]
    assert params["external_id"] == ["customer_123"]
    await assert_still_pending(flow, link["id"], "signup_cancelled")
    last = (await flow.get(link["id"]))["lastError"]
    assert last["metaStep"] == "PHONE_NUMBER_SETUP" and last["metaSessionId"] == "s-123"
    # No stranger's words reach the customer or the end user.
    assert phishing not in cancel.text and phishing not in str(await flow.get(link["id"]))

    meta = await flow.callback(link["id"], {"error": {"message": "Blocked", "code": 524126}})
    assert meta.json()["error"]["code"] == "meta_signup_error"
    await assert_still_pending(flow, link["id"], "meta_signup_error")
    assert (await flow.get(link["id"]))["lastError"]["metaErrorCode"] == "524126"
    closed = await flow.callback(link["id"], {"error": {"code": "window_closed"}})
    assert closed.json()["error"]["code"] == "window_closed"

    for bad, param in (
        ({"code": "call me"}, "error.code"),
        ({"step": "<script>"}, "error.step"),
        ({"sessionId": "x" * 200}, "error.sessionId"),
        ({"metaErrorCode": "12ab"}, "error.metaErrorCode"),
        ({"note": "hi"}, "error.note"),
    ):
        refused = await flow.callback(link["id"], {"error": bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["param"] == param
    # And the end-user can still finish.
    assert (await flow.callback(link["id"], flow.finish())).status_code == 200


async def test_twelve_concurrent_callbacks_one_completion(flow: Flow) -> None:
    link = await flow.link()
    body = flow.finish()
    results: list[httpx.Response] = []

    async def call() -> None:
        results.append(await flow.callback(link["id"], body))

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(call)
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1, [r.json() for r in results]
    assert set(statuses) <= {200, 409}
    assert len(await flow.phones()) == 1
    exchanges = [p for _, p in flow.sandbox.calls if p == "oauth/access_token"]
    assert len(exchanges) == 1
    assert (await flow.get(link["id"]))["status"] == "completed"


async def test_same_number_reconnects_to_its_record(flow: Flow) -> None:
    first = await flow.link()
    body = flow.finish()
    assert (await flow.callback(first["id"], body)).status_code == 200
    second = await flow.link()
    again = dict(body, code=flow.sandbox.new_code(body["wabaId"]))
    assert (await flow.callback(second["id"], again)).status_code == 200
    a, b = await flow.get(first["id"]), await flow.get(second["id"])
    assert a["phoneNumberId"] == b["phoneNumberId"] and a["wabaId"] == b["wabaId"]
    (phone,) = await flow.phones()
    assert phone["onboardingLinkId"] == second["id"]


async def test_link_states_on_page_and_callback(flow: Flow, clock: FakeClock) -> None:
    missing = str(uuid.uuid4())
    assert (await flow.client.get(f"/signup/{missing}")).status_code == 404
    assert (await flow.client.get("/signup/not-a-uuid")).status_code == 404
    response = await flow.callback(missing, flow.finish())
    assert response.status_code == 404 and response.json()["error"]["code"] == "link_not_found"

    # Without redirectUrl or refreshUrl, a final page says what happened (tests/test_returns.py
    # and the browser tests cover where the end-user is sent otherwise).
    deleted = await flow.link(redirectUrl=None)
    await flow.client.delete(f"/v1/onboarding-links/{deleted['id']}", headers=flow.auth)
    page = await flow.client.get(f"/signup/{deleted['id']}")
    assert page.status_code == 410
    gone = await flow.callback(deleted["id"], flow.finish())
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "link_deleted"

    expiring = await flow.link(expiresInSeconds=300, redirectUrl=None)
    clock.advance(seconds=301)
    assert (await flow.client.get(f"/signup/{expiring['id']}")).status_code == 410
    late = await flow.callback(expiring["id"], flow.finish())
    assert late.status_code == 410 and late.json()["error"]["code"] == "link_expired"
    # Reads never write: the link is shown expired, and the sweep stores it.
    stored = await flow.services.storage.get_link(expiring["id"])
    assert stored is not None and stored.status is LinkStatus.PENDING
    assert flow.services.recovery is not None
    assert (await flow.services.recovery.reconcile())["expired"] == 1
    stored = await flow.services.storage.get_link(expiring["id"])
    assert stored is not None and stored.status is LinkStatus.EXPIRED


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "x"},
        {"code": "x", "wabaId": "abc"},
        {"code": "x", "wabaId": "1", "phoneNumberId": "1; drop"},
        {"code": "x", "wabaId": "1", "event": "NOPE"},
        {"code": "x", "wabaId": "1", "extra": True},
        {"error": "x"},
        {"error": {"code": "not_a_reason"}},
        {"error": {"message": "m", "code": ["x"]}},
        {"error": {"message": "m" * 501}},
    ],
)
async def test_bad_callback_bodies(flow: Flow, body: dict[str, Any]) -> None:
    link = await flow.link()
    response = await flow.callback(link["id"], body)
    assert response.status_code == 400, response.text
    result = response.json()
    assert result["status"] == "error" and result["redirectUrl"] is None
    assert result["error"]["code"] in {
        "parameter_missing",
        "parameter_invalid",
        "unknown_parameter",
    }
    assert (await flow.get(link["id"]))["lastError"] is None


async def test_callback_refuses_other_origins_and_non_json(flow: Flow) -> None:
    link = await flow.link()
    cross = await flow.client.post(
        f"/signup/{link['id']}/callback",
        json=flow.finish(),
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    text = await flow.client.post(
        f"/signup/{link['id']}/callback", content=b"code=1", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415 and text.json()["status"] == "error"


async def test_without_meta_app(storage: Storage, clock: FakeClock) -> None:
    async with running_app(storage, clock) as client:
        from edge_onboard.api.auth import create_key

        _, _, key = await create_key(storage, "acme", clock())
        auth = {"Authorization": f"Bearer {key}"}
        link = (await client.post("/v1/onboarding-links", json={"name": "a"}, headers=auth)).json()
        page = await client.get(f"/signup/{link['data']['id']}")
        assert page.status_code == 200 and '"metaConfigured":false' in page.text
        assert "Sandbox" not in page.text
        response = await client.post(
            f"/signup/{link['data']['id']}/callback",
            json={"code": "c", "wabaId": "1", "phoneNumberId": "2"},
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "meta_not_configured"


async def test_static_assets_have_etags(flow: Flow) -> None:
    link = await flow.link()
    page = (await flow.client.get(f"/signup/{link['id']}")).text
    versioned = re.search(r'src="(/static/signup\.js\?v=[0-9a-f]+)"', page)
    assert versioned is not None
    long_lived = await flow.client.get(versioned.group(1))
    assert long_lived.headers["cache-control"] == "public, max-age=31536000, immutable"
    response = await flow.client.get("/static/signup.js")
    assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert "immutable" not in response.headers["cache-control"]
    etag = response.headers["etag"]
    cached = await flow.client.get("/static/signup.js", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert (await flow.client.get("/static/__init__.py")).status_code == 404
    assert (await flow.client.get("/static/signup.html")).status_code == 404


async def test_link_expiring_mid_completion_still_completes(flow: Flow, clock: FakeClock) -> None:
    link = await flow.link(expiresInSeconds=300)
    clock.advance(seconds=100)  # the end-user takes a while; 200 s of the link remain
    body = flow.finish()

    async def slow_meta(method: str, path: str) -> None:
        # Meta is slow; meanwhile the link passes its expiry and someone reads it.
        if path.endswith("subscribed_apps"):
            clock.advance(seconds=250)  # past the link's expiry, within the claim
            assert (await flow.get(link["id"]))["status"] == "pending"
            listing = await flow.client.get(
                "/v1/onboarding-links?status=expired", headers=flow.auth
            )
            assert listing.json()["data"] == []
            deleting = await flow.client.delete(
                f"/v1/onboarding-links/{link['id']}", headers=flow.auth
            )
            assert deleting.status_code == 409
            assert deleting.json()["error"]["code"] == "completion_in_progress"

    flow.sandbox.on_call = slow_meta
    response = await flow.callback(link["id"], body)
    assert response.status_code == 200, response.text
    assert (await flow.get(link["id"]))["status"] == "completed"


async def test_pin_survives_a_failure_after_registration(flow: Flow) -> None:
    link = await flow.link()
    body = flow.finish()
    # Registration succeeds, then reading the number's details fails: the link stays
    # pending, and the retry (number now on the Cloud API) still stores the PIN.
    flow.sandbox.fail("GET", body["phoneNumberId"], status=400, code=100, times=1)
    failed = await flow.callback(link["id"], body)
    assert failed.status_code == 422, failed.text
    registered_pin = flow.sandbox.phones[body["phoneNumberId"]]["_pin"]
    retry = dict(body, code=flow.sandbox.new_code(body["wabaId"]))
    assert (await flow.callback(link["id"], retry)).status_code == 200
    done = await flow.get(link["id"])
    phone = await flow.services.storage.get_phone(done["phoneNumberId"])
    assert phone is not None and phone.pin_enc is not None
    org = phone.org_id
    pin = flow.services.box.decrypt(phone.pin_enc, context=f"phone:{org}:{body['phoneNumberId']}")
    assert pin == registered_pin
    registers = [p for m, p in flow.sandbox.calls if p.endswith("/register")]
    assert len(registers) == 1


async def test_callback_storage_outage_keeps_the_callback_shape(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_onboard.storage import StorageError

    link = await flow.link()

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("connection refused")

    monkeypatch.setattr(flow.services.storage, "update_link", down)
    response = await flow.callback(link["id"], flow.finish())
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "redirectUrl": None,
        "error": {
            "code": "storage_unavailable",
            "message": "We could not save this right now; please try again.",
        },
    }
