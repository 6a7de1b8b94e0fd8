"""The hosted page in real headless Chromium, against the service in sandbox mode:
page → Meta popup (the sandbox's) → callback → redirect, and the ways it can fail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.browser.support import RETURN, Site, query, run_popup
from tests.live import create_key, serve, serving

pytestmark = pytest.mark.browser


def test_success_redirects_with_the_result(site: Site, page: Any) -> None:
    link = site.link(
        redirectUrl=RETURN,
        webhookUrl="https://hooks.example.com/x",
        webhookEvents=["phone_number.connected"],
    )
    response = page.goto(link["hostedUrl"])
    assert response.status == 200
    assert response.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    assert "Acme <Corp>" in page.inner_text("h1")
    assert page.is_visible(".sandbox-banner")
    html = page.content()
    assert link["webhookSecret"] not in html and site.auth["Authorization"][7:] not in html
    page.wait_for_selector("#connect:enabled")

    run_popup(page)
    page.wait_for_url(f"{RETURN}**")
    assert query(page.url) == {
        "onboarding_link_id": [link["id"]],
        "external_id": ["customer_123"],
        "status": ["success"],
    }
    done = site.get(link["id"])
    assert done["status"] == "completed" and done["isPhoneRegistered"] is True
    assert done["phoneNumber"].startswith("+1555")

    # Opened again, the completed link sends the end-user back with the result.
    again = httpx.get(link["hostedUrl"])
    assert again.status_code == 303
    assert query(again.headers["location"])["status"] == ["success"]


def test_cancel_shows_retry_and_return_link(site: Site, page: Any) -> None:
    link = site.link(redirectUrl=RETURN)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, cancel_step="PHONE_NUMBER_SETUP")
    page.wait_for_selector("#retry", state="visible")
    # Plain words for the end user; Meta's step name is kept as data for the customer.
    result = page.inner_text("#result")
    assert "cancelled" in result and "PHONE_NUMBER_SETUP" not in result
    href = page.get_attribute("#return-link", "href")
    params = query(href)
    assert params["status"] == ["error"] and params["error_code"] == ["signup_cancelled"]
    assert params["onboarding_link_id"] == [link["id"]]
    pending = site.get(link["id"])
    assert pending["status"] == "pending"
    assert pending["lastError"]["code"] == "signup_cancelled"
    assert pending["lastError"]["metaStep"] == "PHONE_NUMBER_SETUP"

    # "Try again", by keyboard, and this time finish: the link completes.
    page.focus("#retry")
    with page.expect_popup() as popup_info:
        page.keyboard.press("Enter")
    popup = popup_info.value
    popup.wait_for_load_state()
    popup.click("#finish")
    page.wait_for_url(f"{RETURN}**")
    assert query(page.url)["status"] == ["success"]


def test_errors_from_meta_and_from_our_checks(site: Site, page: Any) -> None:
    link = site.link()  # no redirectUrl: results are shown on the page
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")

    run_popup(page, scenario="meta_error")
    page.wait_for_selector("#retry", state="visible")
    assert "Meta" in page.inner_text("#result")
    assert page.is_hidden("#return-link")
    assert site.get(link["id"])["lastError"]["code"] == "meta_signup_error"

    with page.expect_popup() as popup_info:
        page.click("#retry")
    popup = popup_info.value
    popup.wait_for_load_state()
    popup.select_option("#scenario", "foreign_waba")
    popup.click("#finish")
    expect(page.locator("#result")).to_contain_text("not shared")
    assert site.get(link["id"])["lastError"]["code"] == "waba_not_granted"
    phones = httpx.get(f"{site.base}/v1/phones", headers=site.auth).json()["data"]
    assert all(p["onboardingLinkId"] != link["id"] for p in phones)

    with page.expect_popup() as popup_info:
        page.click("#retry")
    popup = popup_info.value
    popup.wait_for_load_state()
    popup.select_option("#scenario", "register_fails")
    popup.click("#finish")
    page.wait_for_selector("#success", state="visible")
    success = page.inner_text("#success")
    # The success screen: the number masked, the brand named, focus on its heading.
    assert "is connected to Acme <Corp>" in success and "•" in success
    assert page.evaluate("document.activeElement.id") == "success-title"
    done = site.get(link["id"])
    assert done["status"] == "completed" and done["isPhoneRegistered"] is False


def test_expired_and_unknown_links(site: Site, page: Any) -> None:
    link = site.link()
    httpx.delete(f"{site.base}/v1/onboarding-links/{link['id']}", headers=site.auth)
    assert page.goto(link["hostedUrl"]).status == 410
    assert "no longer valid" in page.content()
    assert page.goto(f"{site.base}/signup/00000000-0000-4000-8000-000000000000").status == 404


@pytest.fixture(scope="module")
def blocked_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A real Meta configuration whose SDK cannot load (as behind an ad blocker)."""
    cwd = tmp_path_factory.mktemp("blocked")
    key = create_key(cwd)
    env = {
        "EDGE_META_APP_ID": "123",
        "EDGE_META_APP_SECRET": "s3cret-app-secret",
        "EDGE_META_CONFIG_ID": "456",
        "EDGE_META_SDK_URL": "http://127.0.0.1:9/sdk.js",
    }
    with serve(cwd, env=env) as (base, _):
        yield Site(base, key, cwd)


def test_blocked_sdk_says_so(blocked_site: Site, browser: Any) -> None:
    link = blocked_site.link()
    context = browser.new_context()
    page = context.new_page()
    page.goto(link["hostedUrl"])
    expect(page.locator("#result")).to_contain_text("connect.facebook.net")
    assert page.is_disabled("#connect")
    assert "s3cret-app-secret" not in page.content()
    context.close()


# Embedded Signup v4: every finish event, both cancel shapes (the sandbox speaks v4).


@pytest.mark.parametrize(
    ("scenario", "event", "with_phone", "status"),
    [
        ("ok", "FINISH", True, "connected"),
        # "unverified" goes on to the code on the page: tests/browser/test_page_verification.py
        ("only_waba", "FINISH_ONLY_WABA", False, None),
        ("no_number", "FINISH", False, None),
        ("business_app", "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING", True, "connected"),
        ("obo_migration", "FINISH_OBO_MIGRATION", True, "connected"),  # data as a string
        ("grant_only", "FINISH_GRANT_ONLY_API_ACCESS", False, None),
    ],
)
def test_every_finish_event_completes(
    site: Site, page: Any, scenario: str, event: str, with_phone: bool, status: str | None
) -> None:
    link = site.link(redirectUrl=RETURN, connectionTypes=["cloud_api", "business_app"])
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, scenario=scenario)
    page.wait_for_url(f"{RETURN}**")
    assert query(page.url)["status"] == ["success"]
    done = site.get(link["id"])
    assert done["status"] == "completed" and done["wabaId"] is not None
    # The page reported Meta's session message on its own, before the code.
    report = site.stored(link["id"])["session_report"]
    assert report["event"] == event and report["waba_id"].isdigit()
    if not with_phone:
        assert done["phoneNumberId"] is None and done["isPhoneRegistered"] is None
        return
    phone = httpx.get(f"{site.base}/v1/phones/{done['phoneNumberId']}", headers=site.auth)
    data = phone.json()["data"]
    assert data["status"] == status
    assert data["platform"] == ("business_app" if scenario == "business_app" else "cloud_api")
    # A business app number is never registered by us; it is on the Cloud API already.
    assert done["isPhoneRegistered"] is (status == "connected")


def test_a_business_app_number_needs_the_links_consent(site: Site, page: Any) -> None:
    link = site.link(redirectUrl=RETURN)  # cloud_api only: no coexistence
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, scenario="business_app")
    page.wait_for_selector("#retry", state="visible")
    assert "WhatsApp Business app" in page.inner_text("#result")
    assert site.get(link["id"])["lastError"]["code"] == "connection_type_not_allowed"


@pytest.mark.parametrize("shape", ["step", "error"])
def test_both_cancel_shapes(site: Site, page: Any, shape: str) -> None:
    link = site.link(redirectUrl=RETURN)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, cancel_step="PHONE_NUMBER_VERIFICATION", cancel_shape=shape)
    page.wait_for_selector("#retry", state="visible")
    last = site.get(link["id"])["lastError"]
    expected = "signup_cancelled" if shape == "step" else "meta_signup_error"
    assert last["code"] == expected and last["metaSessionId"]
    if shape == "step":
        assert last["metaStep"] == "PHONE_NUMBER_VERIFICATION"
    else:
        assert last["metaErrorCode"] == "524126"
    params = query(page.get_attribute("#return-link", "href"))
    assert params["error_code"] == [expected]


def test_the_page_launches_embedded_signup_v4(site: Site, page: Any) -> None:
    """FB.login's options as Meta's v4 wants them: prefill in setup, coexistence only
    when the link welcomes business app numbers, no v2 sessionInfoVersion."""
    for types, feature in ((["cloud_api"], None), (["cloud_api", "business_app"], True)):
        link = site.link(
            connectionTypes=types, prefill={"business": {"name": "Shop"}}, redirectUrl=RETURN
        )
        page.goto(link["hostedUrl"])
        page.wait_for_selector("#connect:enabled")
        with page.expect_popup() as popup_info:
            page.click("#connect")
        popup = popup_info.value
        popup.wait_for_load_state()
        extras = orjson.loads(popup.text_content("#extras") or "")
        assert extras["setup"] == {"business": {"name": "Shop"}}
        assert "sessionInfoVersion" not in extras
        if feature:
            assert extras["featureType"] == "whatsapp_business_app_onboarding"
        else:
            assert "featureType" not in extras
        popup.close()


# Recovery: the end-user finished at Meta and closed the tab before the code came back.


class Receiver:
    """A customer endpoint on loopback that records the events it is sent."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def receive(self, request: Request) -> Response:
        self.events.append(orjson.loads(await request.body())["event"])
        return Response(b"ok")


def test_a_closed_tab_is_recovered(tmp_path: Path, browser: Any) -> None:
    receiver = Receiver()
    env = {
        "EDGE_RECOVERY_GRACE_SECONDS": "1",
        "EDGE_RECONCILE_INTERVAL": "1",
        "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    key = create_key(tmp_path)
    app = Starlette(routes=[Route("/hook", receiver.receive, methods=["POST"])])
    with serving(app) as hook_base, serve(tmp_path, "--sandbox", env=env) as (base, _):
        site = Site(base, key, tmp_path)
        hook = httpx.post(
            f"{base}/v1/outgoing-webhooks",
            json={"url": f"{hook_base}/hook", "events": ["phone_number.connected",
                  "onboarding_link.recovered", "onboarding_link.completed"]},
            headers=site.auth,
        )  # fmt: skip
        assert hook.status_code == 201, hook.text
        link = site.link(redirectUrl=RETURN)
        context = browser.new_context()
        page = context.new_page()
        page.goto(link["hostedUrl"])
        page.wait_for_selector("#connect:enabled")
        run_popup(page, scenario="close_tab")
        page.wait_for_function(
            "() => document.getElementById('connect').disabled || "
            "!document.getElementById('retry').classList.contains('hidden')"
        )
        context.close()  # the end-user closes the tab
        deadline = time.monotonic() + 15
        while site.get(link["id"])["status"] != "completed":
            assert time.monotonic() < deadline, site.get(link["id"])
            time.sleep(0.2)
        done = site.get(link["id"])
        assert done["completedVia"] == "recovery" and done["phoneNumberId"] is not None
        while len(receiver.events) < 3:
            assert time.monotonic() < deadline, receiver.events
            time.sleep(0.2)
        time.sleep(1.5)  # another reconciliation pass: nothing more arrives
    assert sorted(receiver.events) == [
        "onboarding_link.completed",
        "onboarding_link.recovered",
        "phone_number.connected",
    ]


def test_a_busy_answer_is_posted_again_and_the_signup_completes(site: Site, page: Any) -> None:
    """A process with no turn free answers the callback 503 service_busy before any of
    it is done: the page posts the same body again after Retry-After, and the signup
    completes on that same code."""
    link = site.link(redirectUrl=RETURN)
    bodies: list[str | None] = []

    def callback(route: Any) -> None:
        bodies.append(route.request.post_data)
        if len(bodies) == 1:
            busy = {"code": "service_busy", "message": "busy"}
            route.fulfill(
                status=503,
                headers={"Retry-After": "1"},
                content_type="application/json",
                body=orjson.dumps({"status": "error", "redirectUrl": None, "error": busy}),
            )
        else:
            route.continue_()

    page.route("**/signup/*/callback", callback)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page)
    page.wait_for_url(f"{RETURN}**")
    assert query(page.url)["status"] == ["success"]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same code, posted again
    assert site.get(link["id"])["status"] == "completed"
