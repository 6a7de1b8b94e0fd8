"""The browser tests' fixtures: headless Chromium and a live server in sandbox mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.browser.support import ARGS, CHROMIUM, CUSTOMER, RETURN, Site
from tests.live import create_key, serve


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        services.unavailable(
            f"chromium not found at {CHROMIUM} (bash .ci/install-services.sh installs it)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cwd = tmp_path_factory.mktemp("browser")
    key = create_key(cwd)
    with serve(cwd, "--sandbox") as (base, _):
        yield Site(base, key, cwd)


def open_context(browser: Any, errors: list[str], **options: Any) -> Any:
    """A browser context whose page errors are collected, with the customer's pages
    (its return and refresh URLs) answered inside the browser."""
    context = browser.new_context(**{"viewport": {"width": 390, "height": 844}, **options})

    def watch(page: Any) -> None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Chromium logs every 4xx answer as "Failed to load resource"; those are expected.
        page.on(
            "console",
            lambda msg: (
                errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )

    context.on("page", watch)
    for pattern in (f"{RETURN}**", f"{CUSTOMER}/**"):
        context.route(
            pattern, lambda route: route.fulfill(body="returned", content_type="text/plain")
        )
    return context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    errors: list[str] = []
    context = open_context(browser, errors)
    page = context.new_page()
    yield page
    context.close()
    assert errors == [], errors
