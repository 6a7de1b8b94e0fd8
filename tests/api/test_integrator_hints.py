"""What an integrator trying the API on a laptop meets: errors that say what to do (the
setting that allows a local webhook, the closest event type), and a refreshUrl that
takes http://localhost as redirectUrl does."""

from __future__ import annotations

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.anyio
ALLOW_PRIVATE = "EDGE_WEBHOOK_ALLOW_PRIVATE=1"


@pytest.mark.parametrize(
    "url", ["https://localhost/hooks", "https://127.0.0.1:3000/hooks", "http://localhost/hooks"]
)
async def test_a_local_webhook_is_refused_naming_the_setting(api: Api, url: str) -> None:
    auth = await api.key()
    for path, body in (
        ("/v1/outgoing-webhooks", {"url": url, "events": ["onboarding_link.opened"]}),
        (
            "/v1/onboarding-links",
            {"name": "x", "webhookUrl": url, "webhookEvents": ["onboarding_link.opened"]},
        ),
    ):
        response = await api.client.post(path, json=body, headers=auth)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "url_not_allowed"
        assert ALLOW_PRIVATE in error["message"], error["message"]


async def test_refresh_url_takes_localhost_like_redirect_url(api: Api) -> None:
    auth = await api.key()
    local = {"redirectUrl": "http://localhost:3000/done", "refreshUrl": "http://localhost:3000/r"}
    response = await api.client.post(
        "/v1/onboarding-links", json={"name": "x", **local}, headers=auth
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["refreshUrl"] == local["refreshUrl"]
    for url in ("http://acme.example/r", "ftp://localhost/r"):
        refused = await api.client.post(
            "/v1/onboarding-links", json={"name": "x", "refreshUrl": url}, headers=auth
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "refreshUrl"


async def test_an_unknown_event_type_suggests_the_closest(api: Api) -> None:
    auth = await api.key()
    hook = {"url": "https://hooks.example.com/x", "events": ["message.recieved"]}
    response = await api.client.post("/v1/outgoing-webhooks", json=hook, headers=auth)
    assert response.status_code == 400, response.text
    assert "Did you mean 'message.received'?" in response.json()["error"]["message"]
    listed = await api.client.get("/v1/events?type=onboarding_link.complete", headers=auth)
    assert listed.status_code == 400, listed.text
    error = listed.json()["error"]
    assert error["param"] == "type"
    assert "Did you mean 'onboarding_link.completed'?" in error["message"]
    # Nothing close: no guess.
    far = await api.client.get("/v1/events?type=zzz", headers=auth)
    assert "Did you mean" not in far.json()["error"]["message"]
