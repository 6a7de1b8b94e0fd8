"""Cursors and bounded totals on every list, through the API."""

from __future__ import annotations

from typing import Any

import pytest

from edge_onboard.api import pagination
from tests.api.test_links_api import assert_error
from tests.conftest import Api

pytestmark = pytest.mark.anyio


async def _links(api: Api, auth: dict[str, str], count: int) -> list[str]:
    ids = []
    for i in range(count):
        body = {"name": f"link {i}"}
        response = await api.client.post("/v1/onboarding-links", json=body, headers=auth)
        ids.append(response.json()["data"]["id"])
        if i % 2:
            api.clock.advance(milliseconds=1)  # pairs share an instant: ids break the tie
    return ids


async def _get(api: Api, auth: dict[str, str], query: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/onboarding-links?{query}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_cursors_walk_every_link_once_both_ways(api: Api) -> None:
    auth = await api.key()
    created = await _links(api, auth, 9)
    newest_first = sorted(created, key=lambda i: (created.index(i) // 2, i), reverse=True)
    body = await _get(api, auth, "limit=4")
    seen = [link["id"] for link in body["data"]]
    while body["pagination"]["hasMore"]:
        body = await _get(api, auth, f"limit=4&startingAfter={body['pagination']['startingAfter']}")
        assert body["pagination"]["page"] is None
        seen += [link["id"] for link in body["data"]]
    assert seen == newest_first
    assert body["pagination"]["total"] == 9 and body["pagination"]["totalIsEstimate"] is False

    back: list[str] = []
    cursor = newest_first[-1]
    while True:
        body = await _get(api, auth, f"limit=3&endingBefore={cursor}")
        back = [link["id"] for link in body["data"]] + back
        if not body["pagination"]["hasMore"]:
            break
        cursor = body["pagination"]["endingBefore"]
    assert back == newest_first[:-1]

    # The page after an object of another organisation, or an unknown id, is a 400.
    other = await api.key("other-org")
    foreign = await _links(api, other, 1)
    for query, param in [
        (f"startingAfter={foreign[0]}", "startingAfter"),
        ("endingBefore=00000000-0000-4000-8000-000000000000", "endingBefore"),
        ("startingAfter=not-an-id", "startingAfter"),
    ]:
        response = await api.client.get(f"/v1/onboarding-links?{query}", headers=auth)
        assert_error(response, 400, "invalid_cursor", param)
    both = f"startingAfter={created[0]}&endingBefore={created[1]}"
    response = await api.client.get(f"/v1/onboarding-links?{both}", headers=auth)
    assert_error(response, 400, "parameter_invalid", "endingBefore")
    response = await api.client.get(
        f"/v1/onboarding-links?page=2&startingAfter={created[0]}", headers=auth
    )
    assert_error(response, 400, "parameter_invalid", "page")


async def test_deep_pages_stop_where_cursors_take_over(api: Api) -> None:
    auth = await api.key()
    await _links(api, auth, 3)
    # page * limit may reach the 10 000th object, no further.
    assert (await _get(api, auth, "page=101&limit=100"))["data"] == []
    response = await api.client.get("/v1/onboarding-links?page=102&limit=100", headers=auth)
    assert_error(response, 400, "page_too_deep", "page")


async def test_every_list_takes_cursors(api: Api) -> None:
    auth = await api.key()
    ids = []
    for i in range(3):
        body = {"url": f"https://example.com/hook/{i}", "events": ["phone_number.connected"]}
        response = await api.client.post("/v1/outgoing-webhooks", json=body, headers=auth)
        assert response.status_code == 201, response.text
        ids.append(response.json()["data"]["id"])
        api.clock.advance(seconds=1)
    page = await api.client.get(
        f"/v1/outgoing-webhooks?limit=1&startingAfter={ids[2]}", headers=auth
    )
    assert [w["id"] for w in page.json()["data"]] == [ids[1]]
    assert page.json()["pagination"]["hasMore"] is True
    for path in ("/v1/phones", "/v1/wabas", f"/v1/outgoing-webhooks/{ids[0]}/deliveries"):
        response = await api.client.get(f"{path}?startingAfter={ids[1]}", headers=auth)
        assert_error(response, 400, "invalid_cursor", "startingAfter")
        listed = await api.client.get(f"{path}?limit=5", headers=auth)
        assert listed.status_code == 200 and listed.json()["pagination"]["total"] == 0


async def test_totals_stop_counting_at_the_cap(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = await api.key()
    await _links(api, auth, 6)
    monkeypatch.setattr(pagination, "COUNT_CAP", 4)
    paging = (await _get(api, auth, "limit=2"))["pagination"]
    assert (paging["total"], paging["totalIsEstimate"], paging["hasMore"]) == (4, True, True)
    paging = (await _get(api, auth, "limit=2&page=3"))["pagination"]
    assert (paging["total"], paging["totalIsEstimate"], paging["hasMore"]) == (4, True, False)
