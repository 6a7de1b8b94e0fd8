"""Test mode is a separate world: no request made with an ``sk_test_`` key changes what a
live end-user sees (the live page, its brand and logo), what a live endpoint receives
(its deliveries) or a live object (the organisation, a link, an endpoint).

Every write operation of the published API is tried with the test key, against the live
objects' ids where it takes one; then the live world is compared with what it was."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from edge_onboard.api.openapi import build_openapi
from edge_onboard.api.openapi._common import METHODS
from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests.api.test_test_mode import Modes, modes
from tests.hosted.test_branding import png

__all__ = ["modes"]  # the fixture, shared with test_test_mode.py

pytestmark = pytest.mark.anyio
EVERY_EVENT = {"url": "https://hooks.example.com/live", "events": list(EVENT_TYPES)}
WRITES = METHODS - {"get", "head", "options", "trace"}


async def live_world(modes: Modes, link: dict[str, Any], hook: dict[str, Any]) -> dict[str, Any]:
    """What live end-users see and live endpoints receive, as plain data to compare."""
    page = await modes.client.get(f"/signup/{link['id']}")
    assert page.status_code == 200, page.text
    # The page's per-request nonce aside, it is the same bytes for the same state.
    html = re.sub(r"nonce-[^'\"]+|nonce=\"[^\"]+\"", "nonce", page.text)

    async def read(path: str) -> Any:
        response = await modes.client.get(f"/v1/{path}", headers=modes.live)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    org = await read("organization")
    logo = await modes.client.get(org["logoUrl"]) if org["logoUrl"] else None
    deliveries = await read(f"outgoing-webhooks/{hook['id']}/deliveries")
    return {
        "page": html,
        "organization": org,
        "logo": (logo.status_code, logo.content) if logo is not None else None,
        "link": await read(f"onboarding-links/{link['id']}"),
        "webhook": await read(f"outgoing-webhooks/{hook['id']}"),
        "deliveries": [(d["event"], d["eventId"]) for d in deliveries],
        "events": [e["id"] for e in await read("events")],
    }


def write_operations() -> list[tuple[str, str]]:
    """Every write of the published /v1 API: (method, path template)."""
    spec = build_openapi("https://onboard.test")
    return sorted(
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in WRITES
    )


async def test_no_test_key_request_changes_the_live_world(modes: Modes) -> None:
    live_org = {"displayName": "Acme Live", "brandColor": "#0a7cff"}
    response = await modes.client.patch("/v1/organization", json=live_org, headers=modes.live)
    assert response.status_code == 200, response.text
    logo = {**modes.live, "Content-Type": "image/png"}
    response = await modes.client.put("/v1/organization/logo", content=png(), headers=logo)
    assert response.status_code == 200, response.text
    link = await modes.post(modes.live, "onboarding-links", {"name": "Live shop"})
    hook = await modes.post(modes.live, "outgoing-webhooks", EVERY_EVENT)
    await modes.services.engine.drain()
    before = await live_world(modes, link, hook)
    assert "Acme Live" in before["page"] and before["logo"] is not None

    # The organisation-wide settings, with the test key.
    test_logo = {**modes.test, "Content-Type": "image/png"}
    org_writes = [
        await modes.client.patch(
            "/v1/organization",
            json={"displayName": "Test Co", "brandColor": "#ff0000", "privacyUrl": None},
            headers=modes.test,
        ),
        await modes.client.put(
            "/v1/organization/logo", content=png(rgb=(255, 0, 0)), headers=test_logo
        ),
        await modes.client.delete("/v1/organization/logo", headers=modes.test),
    ]
    # Every other write of the API, aimed at the live objects (any other id: a fresh one).
    ids = {"onboarding-links": link["id"], "outgoing-webhooks": hook["id"]}
    other = []
    for method, template in write_operations():
        if "{id}" not in template:
            continue
        kind = template.split("/")[2]
        path = template.replace("{id}", ids.get(kind, str(uuid.uuid4())))
        response = await modes.client.request(method, path, json={}, headers=modes.test)
        other.append((method, template, response.status_code))
    # And a whole test signup, with a test endpoint for every event.
    await modes.post(modes.test, "outgoing-webhooks", EVERY_EVENT)
    test_link = await modes.post(modes.test, "onboarding-links", {"name": "Test shop"})
    assert (await modes.client.get(f"/signup/{test_link['id']}")).status_code == 200
    await modes.complete(test_link)
    await modes.services.engine.drain()

    after = await live_world(modes, link, hook)
    for part in before:
        assert after[part] == before[part], f"a test key changed the live {part}"
    # Refused outright, in the error shape, saying what would work.
    for response in org_writes:
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "livemode_key_required"
        assert "sk_live_" in error["message"]
    # The live objects are not there for a test key (404), whatever the body.
    assert other and all(400 <= status < 500 for _, _, status in other), other
    # A test key still reads the organisation (the test pages show the live brand).
    shown = await modes.client.get("/v1/organization", headers=modes.test)
    assert shown.json()["data"]["displayName"] == "Acme Live"
    assert "Acme Live" in (await modes.client.get(f"/signup/{test_link['id']}")).text
