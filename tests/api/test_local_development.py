"""What local development meets first: a localhost refreshUrl is accepted like a
redirectUrl, a loopback webhook's refusal names the setting that allows it, and an
unknown event type is answered with the closest known one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.storage.memory import MemoryStorage
from tests.conftest import AppClient, FakeClock, make_settings, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[tuple[AppClient, dict[str, str]]]:
    store, clock = MemoryStorage(), FakeClock()
    async with running_app(store, clock, make_settings()) as client:
        _, _, key = await create_key(store, "acme", clock(), livemode=False)
        yield client, {"Authorization": f"Bearer {key}"}


async def _create(api: tuple[AppClient, dict[str, str]], body: dict[str, Any]) -> Any:
    client, auth = api
    return await client.post("/v1/onboarding-links", json={"name": "x", **body}, headers=auth)


async def test_refresh_url_accepts_localhost_like_redirect_url(
    api: tuple[AppClient, dict[str, str]],
) -> None:
    for url in ("http://localhost:3000/new-link", "http://127.0.0.1:3000/x", "https://a.example/x"):
        made = await _create(api, {"refreshUrl": url, "redirectUrl": url})
        assert made.status_code == 201, made.text
        assert made.json()["data"]["refreshUrl"] == url
    refused = await _create(api, {"refreshUrl": "http://app.example.com/new"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "refreshUrl"
    assert "localhost" in refused.json()["error"]["message"]


async def test_a_loopback_webhook_is_refused_naming_the_setting(
    api: tuple[AppClient, dict[str, str]],
) -> None:
    for url in ("https://localhost:3000/hooks", "https://127.0.0.1/hooks"):
        body = {"webhookUrl": url, "webhookEvents": ["message.received"]}
        refused = await _create(api, body)
        assert refused.status_code == 400, refused.text
        assert "EDGE_WEBHOOK_ALLOW_PRIVATE" in refused.json()["error"]["message"], url
    # The instance-metadata address stays refused whatever the setting: no hint there.
    metadata = {"webhookUrl": "https://169.254.169.254/x", "webhookEvents": ["message.received"]}
    refused = await _create(api, metadata)
    assert refused.status_code == 400
    assert "EDGE_WEBHOOK_ALLOW_PRIVATE" not in refused.json()["error"]["message"]


async def test_an_unknown_event_type_suggests_the_closest(
    api: tuple[AppClient, dict[str, str]],
) -> None:
    body = {"webhookUrl": "https://hooks.example.com/x", "webhookEvents": ["message.recieved"]}
    refused = await _create(api, body)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "did you mean 'message.received'?" in message.lower(), message
    far = {"webhookUrl": "https://hooks.example.com/x", "webhookEvents": ["zzz"]}
    assert "did you mean" not in (await _create(api, far)).json()["error"]["message"].lower()

    client, auth = api
    listed = await client.get("/v1/events", params={"type": "mesage.*"}, headers=auth)
    assert listed.status_code == 400
    assert "did you mean" not in listed.json()["error"]["message"].lower()  # a pattern: no guess
    listed = await client.get("/v1/events", params={"type": "waba.conected"}, headers=auth)
    assert "did you mean 'waba.connected'?" in listed.json()["error"]["message"].lower()
