"""What the browser tests share: Chromium's settings, a live server's API, the sandbox
popup driven as an end-user would."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = os.environ.get("EDGE_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
RETURN = "http://localhost:9/return"  # never reached: the test answers it in the browser
# The customer's own pages (https, answered inside the browser by the tests).
CUSTOMER = "https://customer.example"


class Site:
    def __init__(self, base: str, key: str, cwd: Path) -> None:
        self.base = base
        self.auth = {"Authorization": f"Bearer {key}"}
        self.cwd = cwd

    def stored(self, link_id: str) -> dict[str, Any]:
        """The link as the server stored it (the SQLite file of the live server)."""
        with sqlite3.connect(self.cwd / "edge_onboard.db") as db:
            (doc,) = db.execute("SELECT doc FROM links WHERE id = ?", (link_id,)).fetchone()
        stored: dict[str, Any] = orjson.loads(doc)
        return stored

    def expire(self, link_id: str) -> None:
        """Move the link's expiry into the past, in the live server's SQLite file."""
        with sqlite3.connect(self.cwd / "edge_onboard.db") as db:
            db.execute(
                "UPDATE links SET expires_at = 1000, doc = json_set(doc, '$.expires_at', "
                "json_object('$date', 1000)) WHERE id = ?",
                (link_id,),
            )

    def link(self, **body: Any) -> dict[str, Any]:
        payload = {"name": "Acme <Corp>", "externalId": "customer_123"}
        payload.update(body)
        response = httpx.post(f"{self.base}/v1/onboarding-links", json=payload, headers=self.auth)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def get(self, link_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/v1/onboarding-links/{link_id}", headers=self.auth)
        data: dict[str, Any] = response.json()["data"]
        return data

    def brand(self, **fields: Any) -> dict[str, Any]:
        response = httpx.patch(f"{self.base}/v1/organization", json=fields, headers=self.auth)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def logo(self, data: bytes, content_type: str = "image/png") -> dict[str, Any]:
        response = httpx.put(
            f"{self.base}/v1/organization/logo",
            content=data,
            headers={**self.auth, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()["data"]
        return body


def run_popup(
    page: Any,
    *,
    scenario: str = "ok",
    cancel_step: str | None = None,
    cancel_shape: str = "step",
    button: str = "#connect",
    account: dict[str, Any] | None = None,
) -> None:
    """Meta's popup (the fake's), ended as an end-user would; with ``account`` (a WABA's
    view: ``metaWabaId``, ``metaBusinessId``) the business signs up again with it."""
    with page.expect_popup() as popup_info:
        page.click(button)
    popup = popup_info.value
    popup.wait_for_load_state()
    assert "SANDBOX" in popup.content().upper()
    if cancel_step:
        popup.select_option("#step", cancel_step)
        popup.select_option("#cancel-shape", cancel_shape)
        try:
            popup.click("#cancel")
        except PlaywrightError:
            # The popup closes itself in the click handler, as Meta's does, and Chromium
            # may report the closed page before the click returns.
            assert popup.is_closed()
    else:
        if account is not None:
            popup.fill("#existing-waba", account["metaWabaId"])
            popup.fill("#existing-business", account["metaBusinessId"])
        popup.select_option("#scenario", scenario)
        popup.click("#finish")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)
