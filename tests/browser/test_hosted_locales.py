"""The hosted page in the end-user's language, with no dead ends, and accessible in every
state (axe-core injected into real Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from edge_onboard.core import i18n
from tests.browser.axe import axe_violations
from tests.browser.conftest import open_context
from tests.browser.support import CUSTOMER, Site, query, run_popup

pytestmark = pytest.mark.browser
HOT_TTL = 1.2  # a process trusts its copy of a link for a second (edge_onboard/core/hot.py)
FIELD = re.compile(r"\{[a-z_]+\}")


def english_fragments() -> list[str]:
    """Every English message, cut at its fields: none may show on a translated page."""
    fragments = []
    for message in i18n.catalog("en_US").messages.values():
        fragments += [part.strip() for part in FIELD.split(message) if len(part.strip()) >= 8]
    return fragments


def english_left(page: Any) -> list[str]:
    text = page.evaluate("() => document.title + '\\n' + document.body.innerText")
    return [fragment for fragment in english_fragments() if fragment in text]


@pytest.fixture
def errors() -> Iterator[list[str]]:
    found: list[str] = []
    yield found
    assert found == [], found


@pytest.mark.parametrize("locale", ["pt_BR", "ar_AR", "hi_IN"])
def test_the_page_speaks_the_links_language(
    site: Site, page: Any, locale: str, errors: list[str]
) -> None:
    cat = i18n.catalog(locale)
    link = site.link(locale=locale, redirectUrl=f"{CUSTOMER}/done")
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    html = page.locator("html")
    assert html.get_attribute("lang") == cat.lang
    assert html.get_attribute("dir") == ("rtl" if locale == "ar_AR" else "ltr")
    assert page.title() == cat.text("title", brand="Acme <Corp>")
    assert page.inner_text("#connect") == cat.text("connect")
    # Meta's SDK in the same locale (the sandbox's carries it as Meta's path does).
    sdk = page.locator("script[src*='sdk.js']").get_attribute("src") or ""
    assert sdk.endswith(f"locale={locale}")
    assert english_left(page) == []
    # What the script writes comes in the page's language too.
    config = page.evaluate("() => JSON.parse(document.getElementById('edge-config').textContent)")
    english = i18n.catalog("en_US")
    assert all(
        text != english.text(key, brand="Acme <Corp>") for key, text in config["msg"].items()
    )
    assert config["errors"]["signup_cancelled"] == cat.text("err_cancelled")

    # A cancel: the sentence in the locale, Meta's step only in the support details.
    run_popup(page, cancel_step="PHONE_NUMBER_VERIFICATION")
    page.wait_for_selector("#retry", state="visible")
    assert page.inner_text("#result") == cat.text("err_cancelled")
    assert page.evaluate("document.activeElement.id") == "result"
    assert "PHONE_NUMBER_VERIFICATION" not in page.inner_text("#result")
    assert not page.locator("#support").evaluate("d => d.open")
    page.click("#support summary")
    facts = page.inner_text("#support-facts")
    assert "PHONE_NUMBER_VERIFICATION" in facts and cat.text("details_step") in facts
    assert site.get(link["id"])["lastError"]["metaSessionId"] in facts
    assert english_left(page) == []


def test_accept_language_chooses_without_a_link_locale(site: Site, browser: Any) -> None:
    link = site.link()
    for header, locale in (
        ("de-AT,de;q=0.9,en;q=0.5", "de_DE"),
        ("es-MX", "es_LA"),
        ("ja", "en_US"),
    ):
        response = httpx.get(link["hostedUrl"], headers={"Accept-Language": header})
        assert f'lang="{i18n.catalog(locale).lang}"' in response.text
        assert "Accept-Language" in response.headers["vary"]
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.goto(link["hostedUrl"])
    assert page.inner_text("#connect") == i18n.catalog("fr_FR").text("connect")
    context.close()
    # The link's own locale wins over the browser's.
    fixed = site.link(locale="tr_TR")
    response = httpx.get(fixed["hostedUrl"], headers={"Accept-Language": "fr"})
    assert 'lang="tr-TR"' in response.text


def test_an_unknown_locale_is_refused_with_the_list(site: Site) -> None:
    response = httpx.post(
        f"{site.base}/v1/onboarding-links",
        json={"name": "x", "locale": "xx_XX"},
        headers=site.auth,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "locale" and all(name in error["message"] for name in i18n.SUPPORTED)


# No dead ends


# (Chromium does not let a test answer the target of a server's redirect, so these read
# the 303 itself; the page's own redirects are followed in the browser below.)


def test_an_expired_link_sends_the_user_to_refresh_url(site: Site) -> None:
    link = site.link(refreshUrl=f"{CUSTOMER}/refresh?from=mail", redirectUrl=f"{CUSTOMER}/done")
    site.expire(link["id"])
    time.sleep(HOT_TTL)
    response = httpx.get(link["hostedUrl"])
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{CUSTOMER}/refresh?")
    assert response.headers["cache-control"] == "no-store"
    assert query(response.headers["location"]) == {
        "from": ["mail"],
        "onboarding_link_id": [link["id"]],
        "external_id": ["customer_123"],
        "reason": ["expired"],
    }
    assert site.get(link["id"])["status"] == "expired"


def test_a_deleted_link_without_refresh_url_goes_back_with_the_error(site: Site) -> None:
    link = site.link(redirectUrl=f"{CUSTOMER}/done")
    httpx.delete(f"{site.base}/v1/onboarding-links/{link['id']}", headers=site.auth)
    response = httpx.get(link["hostedUrl"])
    assert response.status_code == 303
    params = query(response.headers["location"])
    assert params["status"] == ["error"] and params["error_code"] == ["link_deleted"]


def test_a_link_deleted_during_the_signup_sends_the_user_on(site: Site, page: Any) -> None:
    link = site.link(refreshUrl=f"{CUSTOMER}/refresh")
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    with page.expect_popup() as popup_info:
        page.click("#connect")
    popup = popup_info.value
    popup.wait_for_load_state()
    httpx.delete(f"{site.base}/v1/onboarding-links/{link['id']}", headers=site.auth)
    popup.click("#finish")
    page.wait_for_url(f"{CUSTOMER}/refresh**")
    assert query(page.url)["reason"] == ["deleted"]


def test_without_either_url_a_clear_final_page(site: Site, page: Any) -> None:
    link = site.link(locale="es_ES")
    site.expire(link["id"])
    time.sleep(HOT_TTL)
    response = page.goto(link["hostedUrl"])
    assert response.status == 410
    cat = i18n.catalog("es_ES")
    assert page.inner_text("h1") == cat.text("expired_title")
    assert cat.text("gone_body", brand="Acme <Corp>") in page.inner_text("main")


# The page's own behaviour


def test_a_blocked_popup_says_how_to_allow_it(site: Site, browser: Any, errors: list[str]) -> None:
    context = open_context(browser, errors)
    context.add_init_script("window.open = () => null")  # as a popup blocker answers
    page = context.new_page()
    link = site.link()
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    page.click("#connect")
    page.wait_for_selector("#retry", state="visible")
    assert page.inner_text("#result") == i18n.catalog("en_US").text("err_popup")
    assert page.evaluate("document.activeElement.id") == "result"
    context.close()


def test_a_page_whose_script_cannot_load_says_so(site: Site, page: Any) -> None:
    page.route("**/static/signup.js*", lambda route: route.abort())
    page.goto(site.link()["hostedUrl"])
    notice = page.locator("#script-missing")
    notice.wait_for(state="visible", timeout=15_000)
    assert (
        page.evaluate("getComputedStyle(document.getElementById('script-missing')).visibility")
        == "visible"
    )
    assert notice.inner_text().startswith(i18n.catalog("en_US").text("script_failed"))
    assert page.is_disabled("#connect")


@pytest.mark.parametrize("width", [320, 390, 481, 500, 520, 521, 768, 1280])
def test_layout_at_every_width(site: Site, browser: Any, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(site.link(locale="hi_IN")["hostedUrl"])
    box = page.evaluate(
        "() => { const r = document.querySelector('.card').getBoundingClientRect();"
        " return {left: r.left, right: innerWidth - r.right,"
        " scroll: document.documentElement.scrollWidth - innerWidth}; }"
    )
    assert box["scroll"] <= 0, box  # nothing wider than the screen
    assert abs(box["left"] - box["right"]) <= 1, box  # centred, or edge to edge
    context.close()


def test_favicon_and_compression(site: Site) -> None:
    favicon = httpx.get(f"{site.base}/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/x-icon"
    link = site.link()
    page = httpx.get(link["hostedUrl"], headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and 'rel="icon"' in page.text
    for asset in re.findall(r"/static/signup\.(?:css|js)\?v=[0-9a-f]+", page.text):
        served = httpx.get(f"{site.base}{asset}", headers={"Accept-Encoding": "gzip"})
        assert served.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in served.headers["vary"]


def _raw_size(url: str) -> int:
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200
        return sum(len(chunk) for chunk in response.iter_raw())


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_page_weight_per_locale(site: Site, locale: str) -> None:
    """The page's own bytes as sent compressed (HTML, CSS, JS, favicon; not Meta's SDK)."""
    link = site.link(locale=locale)
    page = httpx.get(link["hostedUrl"]).text
    own = [link["hostedUrl"], f"{site.base}/favicon.ico"]
    own += [
        f"{site.base}{path}" for path in re.findall(r"/static/[a-z]+\.[a-z]+\?v=[0-9a-f]+", page)
    ]
    assert len(own) == 4
    total = sum(_raw_size(url) for url in own)
    assert total < 30 * 1024, (locale, total)


# Accessibility: every state, axe-core, no violation of any impact


def test_no_accessibility_violations_in_any_state(
    site: Site, browser: Any, errors: list[str]
) -> None:
    context = open_context(browser, errors)
    page = context.new_page()
    seen: dict[str, list[dict[str, Any]]] = {}

    def check(state: str) -> None:
        seen[state] = axe_violations(page)

    link = site.link()
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    check("pending")
    with page.expect_popup() as popup_info:
        page.click("#connect")
    popup = popup_info.value
    popup.wait_for_load_state()
    check("waiting for Meta's window")
    seen["Meta's window (sandbox)"] = axe_violations(popup)
    popup.select_option("#step", "PERMISSIONS")
    try:
        popup.click("#cancel")
    except Exception:
        assert popup.is_closed()
    page.wait_for_selector("#retry", state="visible")
    page.click("#support summary")
    check("error, support details open")

    held: list[Any] = []
    page.route("**/callback", lambda route: held.append(route))
    run_popup(page, button="#retry")
    page.wait_for_selector("#progress", state="visible")
    page.wait_for_selector("#progress li.done")
    check("progress")
    held[0].continue_()
    page.unroute("**/callback")
    page.wait_for_selector("#success", state="visible")
    check("success")

    for locale in ("ar_AR", "hi_IN"):
        page.goto(site.link(locale=locale)["hostedUrl"])
        page.wait_for_selector("#connect:enabled")
        check(f"pending in {locale}")
    page.goto(link["hostedUrl"])
    check("already connected")
    expired = site.link(locale="pt_BR")
    site.expire(expired["id"])
    time.sleep(HOT_TTL)
    page.goto(expired["hostedUrl"])
    check("expired")
    page.goto(f"{site.base}/signup/00000000-0000-4000-8000-000000000000")
    check("not found")
    context.close()
    failures = {state: found for state, found in seen.items() if found}
    assert not failures, orjson.dumps(failures, option=orjson.OPT_INDENT_2).decode()
