"""Test mode end to end, on a server started without EDGE_SANDBOX and with a Meta app
configured (one that cannot be reached): a test key's link completes through the
built-in fake Meta's popup in Chromium, a live key's link carries the real Meta
configuration, and neither key sees the other's objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.browser.conftest import open_context
from tests.browser.support import RETURN, Site, query, run_popup
from tests.live import create_key, run_cli, serve

pytestmark = pytest.mark.browser
META = {
    "EDGE_META_APP_ID": "1234567890",
    "EDGE_META_APP_SECRET": "real-app-secret-never-shown",
    "EDGE_META_CONFIG_ID": "987654321",
    # The real Meta is not reachable from the tests: its SDK never loads.
    "EDGE_META_SDK_URL": "http://127.0.0.1:9/en_US/sdk.js",
    "EDGE_META_GRAPH_URL": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Site]]:
    cwd = tmp_path_factory.mktemp("testmode")
    live_key = create_key(cwd)
    made = run_cli("keys", "create", "--org", "acme", "--test", cwd=cwd).stdout
    test_key = made.strip().splitlines()[-1]
    assert live_key.startswith("sk_live_") and test_key.startswith("sk_test_")
    with serve(cwd, env=META) as (base, _):
        yield Site(base, live_key, cwd), Site(base, test_key, cwd)


def _config(html: str) -> dict[str, Any]:
    start = html.index('<script type="application/json" id="edge-config">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    config: dict[str, Any] = orjson.loads(body)
    return config


def _list(site: Site, path: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{site.base}/v1/{path}", headers=site.auth)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_a_test_link_completes_against_the_fake_meta(
    sites: tuple[Site, Site], browser: Any
) -> None:
    live, test = sites
    link = test.link(redirectUrl=RETURN)
    assert link["livemode"] is False
    errors: list[str] = []
    context = open_context(browser, errors)
    page = context.new_page()
    response = page.goto(link["hostedUrl"])
    assert response.status == 200
    assert page.is_visible(".sandbox-banner")
    # The fake's SDK is this server's own ('self' in the CSP): the real Meta's is not named.
    csp = response.headers["content-security-policy"]
    assert "127.0.0.1:9" not in csp and "connect.facebook.net" not in csp
    config = _config(page.content())
    assert config["sandbox"] is True and config["appId"] != META["EDGE_META_APP_ID"]
    page.wait_for_selector("#connect:enabled")
    run_popup(page)
    page.wait_for_url(f"{RETURN}**")
    assert query(page.url)["status"] == ["success"]
    context.close()
    assert errors == [], errors

    done = test.get(link["id"])
    assert done["status"] == "completed" and done["livemode"] is False
    assert done["isPhoneRegistered"] is True
    phones = _list(test, "phones")
    assert [p["id"] for p in phones] == [done["phoneNumberId"]]
    assert phones[0]["livemode"] is False
    wabas = _list(test, "wabas")
    assert [w["id"] for w in wabas] == [done["wabaId"]] and wabas[0]["livemode"] is False

    # The live key sees none of it.
    for path in (
        f"onboarding-links/{link['id']}",
        f"phones/{done['phoneNumberId']}",
        f"wabas/{done['wabaId']}",
    ):
        assert httpx.get(f"{live.base}/v1/{path}", headers=live.auth).status_code == 404, path
    assert link["id"] not in {x["id"] for x in _list(live, "onboarding-links")}
    assert _list(live, "phones") == [] and _list(live, "wabas") == []


def test_a_live_link_uses_the_configured_meta_app(sites: tuple[Site, Site], browser: Any) -> None:
    live, test = sites
    link = live.link()
    assert link["livemode"] is True
    # The test key cannot see it.
    url = f"{test.base}/v1/onboarding-links/{link['id']}"
    assert httpx.get(url, headers=test.auth).status_code == 404
    assert link["id"] not in {x["id"] for x in _list(test, "onboarding-links")}
    assert link["id"] in {x["id"] for x in _list(live, "onboarding-links")}

    context = browser.new_context()
    page = context.new_page()
    response = page.goto(link["hostedUrl"])
    assert response.status == 200
    assert page.locator(".sandbox-banner").count() == 0
    config = _config(page.content())
    assert config["appId"] == META["EDGE_META_APP_ID"]
    assert config["configId"] == META["EDGE_META_CONFIG_ID"]
    assert config["sandbox"] is False and config["metaConfigured"] is True
    assert config["sdkOrigin"] == "http://127.0.0.1:9"
    assert "http://127.0.0.1:9" in response.headers["content-security-policy"]
    assert META["EDGE_META_APP_SECRET"] not in page.content()
    context.close()
