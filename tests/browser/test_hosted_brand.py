"""The customer's brand on the hosted page, in real Chromium: name, logo from our own
origin, colour with readable text whatever the colour, support and privacy links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_onboard.onboarding.branding import contrast
from tests.browser.axe import axe_violations
from tests.browser.support import Site
from tests.hosted.test_branding import png
from tests.live import create_key, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def brand_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server of its own: these tests change the organisation's branding."""
    cwd: Path = tmp_path_factory.mktemp("brand")
    key = create_key(cwd)
    with serve(cwd, "--sandbox") as (base, _):
        yield Site(base, key, cwd)


def rgb(css: str) -> str:
    r, g, b = (int(n) for n in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


@pytest.mark.parametrize(("color", "text"), [("#ffd600", "#000000"), ("#1a237e", "#ffffff")])
def test_the_brand_on_the_page(brand_site: Site, page: Any, color: str, text: str) -> None:
    brand_site.brand(
        displayName="Acme Pay",
        brandColor=color,
        supportEmail="help@acme.example",
        privacyUrl="https://acme.example/privacy",
        termsUrl="https://acme.example/terms",
    )
    logo = brand_site.logo(png(8, 8))["logoUrl"]
    link = brand_site.link()
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    assert page.title() == "Connect WhatsApp to Acme Pay"
    assert page.inner_text(".brand-name") == "Acme Pay"
    assert "Acme Pay uses Meta's secure sign-up" in page.inner_text("main")
    # The logo comes from our own origin (the CSP allows nothing else) and loads.
    img = page.locator("img.logo")
    src = img.get_attribute("src") or ""
    assert src.startswith("/brand/") and logo.endswith(src)
    assert img.evaluate("i => i.complete && i.naturalWidth") == 8
    assert page.get_attribute("link[rel=icon]", "href") == src
    # The colour, and text on it that stays readable (WCAG AA: 4.5:1).
    button = page.locator("#connect")
    background = rgb(button.evaluate("b => getComputedStyle(b).backgroundColor"))
    foreground = rgb(button.evaluate("b => getComputedStyle(b).color"))
    assert background == color and foreground == text
    assert contrast(background, foreground) >= 4.5
    links = page.locator("footer.legal a")
    assert links.evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
        "mailto:help@acme.example",
        "https://acme.example/privacy",
        "https://acme.example/terms",
    ]
    violations = axe_violations(page)
    assert violations == [], violations


def test_a_link_names_its_own_brand(brand_site: Site, page: Any) -> None:
    brand_site.brand(displayName="Acme Pay")
    link = brand_site.link(displayName="Acme Brasil", locale="pt_BR")
    page.goto(link["hostedUrl"])
    assert page.title() == "Conectar o WhatsApp com Acme Brasil"
    assert page.inner_text("h1") == "Conecte seu número do WhatsApp com Acme Brasil"
