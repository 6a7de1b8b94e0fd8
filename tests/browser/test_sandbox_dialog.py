"""The sandbox popup (the stand-in for Meta's Embedded Signup window) in the hosted page's
language: every sentence from the catalogs, Meta's identifiers as they are, accessible."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from edge_onboard.core import i18n
from edge_onboard.meta.sandbox import SCENARIOS
from tests.browser.axe import axe_violations
from tests.browser.support import Site, query
from tests.browser.test_hosted_locales import english_fragments

pytestmark = pytest.mark.browser
STEPS = [
    "BUSINESS_ACCOUNT_SELECTION",
    "WABA_PHONE_PROFILE_PICKER",
    "WHATSAPP_BUSINESS_PROFILE_SETUP",
    "PHONE_NUMBER_SETUP",
    "PHONE_NUMBER_VERIFICATION",
    "PERMISSIONS",
]


def open_dialog(site: Site, page: Any, locale: str) -> Any:
    page.goto(site.link(locale=locale)["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    with page.expect_popup() as popup_info:
        page.click("#connect")
    popup = popup_info.value
    popup.wait_for_load_state()
    return popup


@pytest.mark.parametrize("locale", ["pt_BR", "ar_AR"])
def test_the_popup_speaks_the_pages_language(site: Site, page: Any, locale: str) -> None:
    cat = i18n.catalog(locale)
    popup = open_dialog(site, page, locale)
    assert query(popup.url)["locale"] == [locale]
    html = popup.locator("html")
    assert html.get_attribute("lang") == cat.lang
    assert html.get_attribute("dir") == ("rtl" if locale == "ar_AR" else "ltr")
    assert popup.title() == cat.text("dialog_title")
    # Everything in the document, hidden sentences and option texts included.
    text = popup.evaluate("() => document.title + '\\n' + document.body.textContent")
    assert [fragment for fragment in english_fragments() if fragment in text] == []
    assert cat.text("dialog_step_number") in text and cat.text("sandbox") in text
    # What a developer tests against stays as Meta names it.
    values = popup.evaluate(
        "(id) => [...document.querySelectorAll(id + ' option')].map(o => o.value)", "#scenario"
    )
    assert sorted(values) == sorted(SCENARIOS)
    assert (
        popup.evaluate("() => [...document.querySelectorAll('#step option')].map(o => o.text)")
        == STEPS
    )
    assert "(FINISH_ONLY_WABA)" in popup.inner_text("#scenario option[value=only_waba]")
    assert axe_violations(popup) == []

    # What the script writes is in the language too.
    popup.route(
        "**/_sandbox/dialog/finish",
        lambda route: route.fulfill(status=503, body="{}", content_type="application/json"),
    )
    popup.click("#finish")
    status = popup.locator("#dialog-status")
    expected = cat.text("dialog_finish_failed", error="HTTP 503")
    popup.wait_for_function(
        "(t) => document.getElementById('dialog-status').textContent === t", arg=expected
    )
    assert status.get_attribute("class") == "message error"
    assert axe_violations(popup) == []
    popup.close()


@pytest.mark.parametrize("locale", [None, "", "xx_XX", "en_US", "x" * 300])
def test_an_unknown_or_missing_locale_is_english(site: Site, locale: str | None) -> None:
    params = {} if locale is None else {"locale": locale}
    response = httpx.get(f"{site.base}/_sandbox/dialog", params=params)
    assert response.status_code == 200
    assert '<html lang="en-US" dir="ltr">' in response.text
    assert i18n.catalog("en_US").text("dialog_intro").replace("'", "&#x27;") in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src" not in csp and "'unsafe-inline'" not in csp
    assert csp.startswith("default-src 'self';")


def test_a_language_without_its_territory_is_matched(site: Site) -> None:
    response = httpx.get(f"{site.base}/_sandbox/dialog", params={"locale": "pt_PT"})
    assert '<html lang="pt-BR" dir="ltr">' in response.text
    assert i18n.catalog("pt_BR").text("dialog_finish") in response.text
