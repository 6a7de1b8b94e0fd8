"""A signup that ends with an unverified number goes on, on the hosted page, to the code:
driven in Chromium against a real ``serve`` and the fake Meta, in English and in Arabic
(right to left), with axe-core on every state of the step."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from edge_onboard.core import i18n
from edge_onboard.meta.sandbox import VERIFY_CODE
from tests.browser.axe import axe_violations
from tests.browser.support import RETURN, Site, query, run_popup
from tests.browser.test_hosted_locales import english_left

pytestmark = pytest.mark.browser


def to_the_step(site: Site, page: Any, **link: Any) -> dict[str, Any]:
    made = site.link(**link)
    page.goto(made["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, scenario="unverified")
    page.wait_for_selector("#verify", state="visible")
    return made


@pytest.mark.parametrize(("locale", "method"), [("en_US", "sms"), ("ar_AR", "voice")])
def test_an_unverified_signup_is_verified_on_the_page(
    site: Site, page: Any, locale: str, method: str
) -> None:
    cat = i18n.catalog(locale)
    link = to_the_step(site, page, locale=locale, redirectUrl=RETURN)
    seen: dict[str, list[dict[str, Any]]] = {}
    # The page stays: the number is masked, the end-user picks how the code comes.
    assert page.url == link["hostedUrl"]
    assert page.evaluate("() => document.activeElement.id") == "verify-title"
    masked = page.inner_text("#verify-text bdi")
    assert masked.startswith("+1 ") and "•" in masked
    number = site.get(link["id"])["phoneNumber"]
    assert number[-3:] == masked[-3:] and number not in page.content()
    assert page.inner_text("#verify-title") == cat.text("verify_title")
    seen["method"] = axe_violations(page)
    page.check(f"input[name=method][value={method}]")
    page.click("#send-code")
    page.wait_for_selector("#code-form", state="visible")
    sent = cat.text(f"verify_sent_{method}").split("{number}")[0].strip()
    expect(page.locator("#code-sent")).to_contain_text(sent)
    field = page.locator("#code")
    assert field.get_attribute("autocomplete") == "one-time-code"
    assert field.get_attribute("inputmode") == "numeric"
    assert page.evaluate("() => document.activeElement.id") == "code"
    # "Send again" waits for Meta's cooldown, and says how long.
    assert page.is_disabled("#resend")
    expect(page.locator("#resend-wait bdi")).to_have_text("1:00", timeout=2000)
    seen["code"] = axe_violations(page)

    # A wrong code first, pasted whole with a space in it: digits only are kept.
    page.keyboard.insert_text("123 456")
    assert field.input_value() == "123456"
    page.click("#check-code")
    expect(page.locator("#verify-error")).to_have_text(cat.text("err_code_wrong"))
    assert field.get_attribute("aria-invalid") == "true"
    seen["wrong"] = axe_violations(page)
    if locale != "en_US":
        assert english_left(page) == []
    assert site.get(link["id"])["isPhoneRegistered"] is False

    # Then the right one: registered, and on to the customer with status=success.
    field.fill("")
    page.keyboard.insert_text(f"{VERIFY_CODE[:3]}-{VERIFY_CODE[3:]}")
    page.click("#check-code")
    page.wait_for_url(f"{RETURN}**")
    returned = query(page.url)
    assert returned["status"] == ["success"] and "verification" not in returned
    assert returned["onboarding_link_id"] == [link["id"]]
    done = site.get(link["id"])
    assert done["isPhoneRegistered"] is True
    phone = httpx.get(f"{site.base}/v1/phones/{done['phoneNumberId']}", headers=site.auth)
    assert phone.json()["data"]["status"] == "connected"
    assert seen == {"method": [], "code": [], "wrong": []}


def test_do_it_later_returns_with_verification_pending(site: Site, page: Any) -> None:
    link = to_the_step(site, page, redirectUrl=RETURN)
    page.click("#later")
    page.wait_for_url(f"{RETURN}**")
    returned = query(page.url)
    assert returned["status"] == ["success"] and returned["verification"] == ["pending"]
    phone = httpx.get(
        f"{site.base}/v1/phones/{site.get(link['id'])['phoneNumberId']}", headers=site.auth
    )
    assert phone.json()["data"]["status"] == "pending_verification"


def test_without_a_redirect_the_page_ends_on_its_own_screens(site: Site, page: Any) -> None:
    cat = i18n.catalog("ar_AR")
    to_the_step(site, page, locale="ar_AR")
    page.click("#send-code")
    page.wait_for_selector("#code-form", state="visible")
    page.click("#check-code")  # nothing typed: said before anything is sent
    expect(page.locator("#verify-error")).to_have_text(cat.text("err_code_format"))
    page.keyboard.insert_text(VERIFY_CODE)
    page.click("#check-code")
    page.wait_for_selector("#success", state="visible")
    assert page.is_hidden("#verify") and page.is_hidden("#success-later")
    assert page.inner_text("#success-text bdi").startswith("+1 ")
    assert axe_violations(page) == []


def test_later_without_a_redirect_says_what_is_left(site: Site, page: Any) -> None:
    to_the_step(site, page)
    page.click("#later")
    page.wait_for_selector("#success", state="visible")
    expect(page.locator("#success-later")).to_be_visible()
    assert axe_violations(page) == []
