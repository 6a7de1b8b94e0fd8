"""Update links in Chromium, against a real ``serve`` with a test key and the built-in fake
Meta (a Meta app is configured but unreachable: only the test link's fake answers): a
number whose business removed the app is reconnected through Meta's popup on the same
account (one ``phone_number.updated``, health back to ``canReceiveMessages``), another
account is refused in the page's language, and the profile form sends the fake Meta's
``whatsapp_business_profile`` exactly the fields changed. axe-core on every new state,
left to right and right to left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from edge_onboard.core import i18n
from edge_onboard.meta.sandbox import VERIFY_CODE
from tests.browser.axe import axe_violations
from tests.browser.support import RETURN, Site, query, run_popup
from tests.browser.test_hosted_locales import english_left
from tests.browser.test_test_mode import META
from tests.live import run_cli, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cwd = tmp_path_factory.mktemp("updates")
    made = run_cli("keys", "create", "--org", "acme", "--test", cwd=cwd).stdout
    key = made.strip().splitlines()[-1]
    assert key.startswith("sk_test_")
    with serve(cwd, env=META) as (base, _):
        yield Site(base, key, cwd)


def api(site: Site, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{site.base}{path}", json=body, headers=site.auth)
    assert response.status_code < 300, response.text
    return response.json().get("data")


def connected_phone(site: Site, scenario: str = "ok") -> dict[str, Any]:
    """A test number, connected by an onboarding link through the fake Meta."""
    link = site.link()
    done = api(
        site,
        "POST",
        f"/v1/test-helpers/onboarding-links/{link['id']}/complete",
        {"scenario": scenario},
    )
    phone: dict[str, Any] = api(site, "GET", f"/v1/phones/{done['phoneNumberId']}")
    return phone


def wait_for(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def count(site: Site, event: str, phone_id: str) -> int:
    page = api(site, "GET", f"/v1/events?type={event}&limit=100")
    return sum(1 for e in page if e["data"].get("id", e["data"].get("phoneNumberId")) == phone_id)


def removed_phone(site: Site) -> tuple[dict[str, Any], dict[str, Any]]:
    """A test number whose business then removed the app (the fake's PARTNER_REMOVED)."""
    phone = connected_phone(site)
    waba = api(site, "GET", f"/v1/wabas/{phone['wabaId']}")
    assert api(site, "POST", "/_sandbox/remove-access", {"waba_id": waba["metaWabaId"]}) is None
    gone = wait_for(
        lambda: api(site, "GET", f"/v1/phones/{phone['id']}")["status"] == "disconnected"
    )
    assert gone, "PARTNER_REMOVED did not disconnect the number"
    return phone, waba


@pytest.mark.parametrize("locale", ["en_US", "ar_AR"])
def test_an_update_link_reconnects_a_number_after_partner_removed(
    site: Site, page: Any, locale: str
) -> None:
    cat = i18n.catalog(locale)
    phone, waba = removed_phone(site)
    updated_before = count(site, "phone_number.updated", phone["id"])
    link = site.link(type="update", phoneNumberId=phone["id"], redirectUrl=RETURN, locale=locale)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    seen: dict[str, list[dict[str, Any]]] = {}
    # Only what the number needs, in order: reconnect, then its profile.
    expect(page.locator("#update-heading")).to_have_text(cat.text("update_heading_reconnect"))
    steps = page.locator("#update-steps li")
    expect(steps).to_have_text([cat.text("update_step_reconnect"), cat.text("update_step_profile")])
    assert page.is_hidden("#intro") and page.is_hidden("#profile")
    assert page.evaluate("() => document.activeElement.id") == "update-heading"
    seen["reconnect"] = axe_violations(page)

    # The business picks another account in Meta's window: refused, said plainly.
    run_popup(page)
    expect(page.locator("#result")).to_have_text(cat.text("err_waba_mismatch", brand="Acme <Corp>"))
    expect(page.locator("#retry")).to_be_visible()
    seen["refused"] = axe_violations(page)
    if locale != "en_US":
        assert english_left(page) == []
    assert api(site, "GET", f"/v1/phones/{phone['id']}")["status"] == "disconnected"

    # Then the same account: the grant is restored and the page goes on to the profile.
    run_popup(page, button="#retry", account=waba)
    page.wait_for_selector("#profile", state="visible")
    expect(page.locator("#update-steps li.done")).to_have_text([cat.text("update_step_reconnect")])
    expect(page.locator("#profile-name")).to_have_text("Sandbox Business")
    expect(page.locator("#profile-name-status")).to_have_text(cat.text("name_approved"))
    assert page.input_value("#pf-about")  # Meta's profile, readable again
    assert "{{" not in page.inner_text("body")  # every placeholder filled
    seen["profile"] = axe_violations(page)
    if locale != "en_US":
        assert english_left(page) == []

    now = api(site, "GET", f"/v1/phones/{phone['id']}")
    assert now["status"] == "connected" and now["isPhoneRegistered"] is True
    assert count(site, "phone_number.updated", phone["id"]) == updated_before + 1
    health = api(site, "GET", f"/v1/phones/{phone['id']}/health")
    assert health["capabilities"]["canReceiveMessages"] is True

    # Done, nothing changed: back to the customer with status=success.
    page.click("#profile-save")
    page.wait_for_url(f"{RETURN}**")
    returned = query(page.url)
    assert returned["status"] == ["success"] and returned["onboarding_link_id"] == [link["id"]]
    done = site.get(link["id"])
    assert done["status"] == "completed"
    assert done["result"] == {"changes": ["reconnected"], "profileFields": []}
    assert count(site, "phone_number.updated", phone["id"]) == updated_before + 1
    assert seen == {"reconnect": [], "refused": [], "profile": []}


@pytest.mark.parametrize("locale", ["en_US", "ar_AR"])
def test_the_profile_form_sends_meta_exactly_the_fields_changed(
    site: Site, page: Any, locale: str
) -> None:
    cat = i18n.catalog(locale)
    phone = connected_phone(site)
    link = site.link(type="update", phoneNumberId=phone["id"], locale=locale)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#profile", state="visible")
    # A connected number needs nothing but its profile: no signup, no step list.
    assert page.is_hidden("#connect") and page.is_hidden("#update-steps")
    assert page.evaluate("() => document.activeElement.id") == "profile-title"
    posts = {"phone_number_id": phone["metaPhoneNumberId"]}
    assert api(site, "POST", "/_sandbox/profile-posts", posts) == []

    # Meta's limit, said in the page's language, on the field: nothing sent.
    page.fill("#pf-email", "not an address")
    page.click("#profile-save")
    expect(page.locator("#profile-error")).to_have_text(cat.text("err_profile_invalid"))
    assert page.get_attribute("#pf-email", "aria-invalid") == "true"
    assert page.evaluate("() => document.activeElement.id") == "pf-email"
    assert axe_violations(page) == []
    assert api(site, "POST", "/_sandbox/profile-posts", posts) == []

    page.fill("#pf-email", "hello@acme.example")
    page.fill("#pf-description", "Fresh bread, every morning")
    page.fill("#pf-website-1", "https://acme.example")
    page.click("#profile-save")
    page.wait_for_selector("#success", state="visible")
    expect(page.locator("#success-title")).to_have_text(cat.text("update_done_title"))
    assert axe_violations(page) == []
    sent = api(site, "POST", "/_sandbox/profile-posts", posts)
    assert sent == [
        {
            "email": "hello@acme.example",
            "description": "Fresh bread, every morning",
            "websites": ["https://acme.example"],
        }
    ]
    profile = api(site, "GET", f"/v1/phones/{phone['id']}/profile")
    assert profile["email"] == "hello@acme.example"
    assert profile["about"] == "Hey there! I am using WhatsApp."  # untouched
    done = site.get(link["id"])
    assert done["result"] == {
        "changes": ["profile_updated"],
        "profileFields": ["description", "email", "websites"],
    }
    # The link is used up: its page says so.
    page.goto(link["hostedUrl"])
    expect(page.locator("h1")).to_have_text(cat.text("completed_title"))


@pytest.mark.parametrize("locale", ["en_US", "ar_AR"])
def test_a_waba_only_account_adds_a_number_then_verifies_it(
    site: Site, page: Any, locale: str
) -> None:
    cat = i18n.catalog(locale)
    made = site.link()
    done = api(
        site,
        "POST",
        f"/v1/test-helpers/onboarding-links/{made['id']}/complete",
        {"scenario": "only_waba"},
    )
    assert done["phoneNumberId"] is None
    waba = api(site, "GET", f"/v1/wabas/{done['wabaId']}")
    link = site.link(type="update", wabaId=waba["id"], locale=locale)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    expect(page.locator("#update-heading")).to_have_text(cat.text("update_heading_add"))
    seen = {"add_number": axe_violations(page)}

    # Meta's popup on the same account, with a number that still needs its code.
    run_popup(page, scenario="unverified", account=waba)
    page.wait_for_selector("#verify", state="visible")
    expect(page.locator("#update-steps li")).to_have_text(
        [cat.text(f"update_step_{s}") for s in ("add_number", "verify", "profile")]
    )
    expect(page.locator("#update-steps li.current")).to_have_text(cat.text("update_step_verify"))
    seen["verify"] = axe_violations(page)
    page.click("#send-code")
    page.wait_for_selector("#code-form", state="visible")
    page.keyboard.insert_text(VERIFY_CODE)
    page.click("#check-code")
    page.wait_for_selector("#profile", state="visible")
    expect(page.locator("#update-steps li.done")).to_have_text(
        [cat.text("update_step_add_number"), cat.text("update_step_verify")]
    )
    seen["profile"] = axe_violations(page)
    if locale != "en_US":
        assert english_left(page) == []
    page.click("#profile-save")
    page.wait_for_selector("#success", state="visible")
    result = site.get(link["id"])
    assert result["status"] == "completed" and result["phoneNumberId"]
    assert result["result"] == {"changes": ["phone_added", "verified"], "profileFields": []}
    phone = api(site, "GET", f"/v1/phones/{result['phoneNumberId']}")
    assert phone["status"] == "connected" and phone["wabaId"] == waba["id"]
    assert seen == {"add_number": [], "verify": [], "profile": []}
