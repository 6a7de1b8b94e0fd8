"""A hosted page left open while its signup finished elsewhere (in another tab, or by
recovery from Meta's own notice) catches up: shown or focused again, it asks for the
link's state and sends the end-user on, in real headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.sdk_world import SERVE_ENV, World
from tests.browser.support import CUSTOMER, Site, query
from tests.live import create_key, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A sandbox server that recovers a signup one second after the page's report."""
    cwd = tmp_path_factory.mktemp("left-open")
    key = create_key(cwd)
    with serve(cwd, "--sandbox", env=SERVE_ENV) as (base, _):
        yield Site(base, key, cwd)


def shown_again(page: Any) -> None:
    page.evaluate("window.dispatchEvent(new Event('focus'))")


def test_a_signup_finished_in_another_tab(quick: Site, page: Any) -> None:
    link = quick.link(redirectUrl=f"{CUSTOMER}/done")
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    state = httpx.get(f"{quick.base}/signup/{link['id']}/state")
    assert state.json() == {"status": "pending"}
    assert state.headers["cache-control"] == "no-store"
    # The other tab: Meta's popup finished there, and its page reported the code.
    with World(quick.base, quick.auth["Authorization"][7:], quick.cwd) as other:
        other.complete(link["id"], other.finish("ok"))
    # Shown again, it sends the end-user on with the result, as the other tab did.
    with page.expect_request(f"{CUSTOMER}/done**", timeout=10_000) as sent:
        shown_again(page)
    assert query(sent.value.url)["status"] == ["success"]
    assert query(sent.value.url)["onboarding_link_id"] == [link["id"]]


def test_a_signup_recovered_from_metas_notice(quick: Site, page: Any) -> None:
    link = quick.link()
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    # Another tab got Meta's session message, then closed before the code came.
    with World(quick.base, quick.auth["Authorization"][7:], quick.cwd) as other:
        other.report_session(link["id"], other.finish("close_tab"))
    deadline = time.monotonic() + 20
    while quick.get(link["id"])["status"] != "completed":
        assert time.monotonic() < deadline, "not recovered"
        time.sleep(0.5)
    assert quick.get(link["id"])["completedVia"] == "recovery"
    # Without a redirectUrl: the page says it is done, in place of the button.
    shown_again(page)
    page.wait_for_selector("text=Already connected", timeout=10_000)
    assert not page.is_visible("#connect")


def test_an_unknown_link_has_no_state(quick: Site) -> None:
    for ident in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = httpx.get(f"{quick.base}/signup/{ident}/state")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "link_not_found"
