"""Events of (nearly) every type, caused on a real ``serve`` with a test key through the
paths the service really runs: the hosted page and its callback against the fake Meta, a
failed and a never-reported signup (recovered from Meta's own notice), an expired link
(the serve's reconciliation), Meta's signed deliveries to the phone (the real bodies of
../shared/meta-payloads/, plus a revoke and a played status), an account update and the
removal of access. The generated SDKs must then read every one of them."""

from __future__ import annotations

import copy
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET

# The serve's reconciliation (recoveries, expiries) every second, a recovery one second
# after the page's report: ``serve --sandbox`` with these.
SERVE_ENV = {"EDGE_RECOVERY_GRACE_SECONDS": "1", "EDGE_RECONCILE_INTERVAL": "1"}
PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "meta-payloads"
# What no file of PAYLOADS holds: a deleted message and a played voice message.
EXTRA: list[dict[str, Any]] = [
    {"messages": [{"from": "15551234567", "id": "wamid.REVOKE", "timestamp": "1764000000",
                   "type": "revoke", "revoke": {"original_message_id": "wamid.ORIGINAL"}}]},
    {"statuses": [{"id": "wamid.VOICE", "status": "played", "timestamp": "1764000000",
                   "recipient_id": "15551234567"}]},
]  # fmt: skip


class World:
    """A served deployment and its test key, to cause events on."""

    def __init__(self, base: str, key: str, cwd: Path) -> None:
        self.base = base
        self.cwd = cwd
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def link(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/v1/onboarding-links", json={"name": "Shop", **body})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        assert self.http.get(f"/signup/{data['id']}").status_code == 200  # opened
        return data

    def finish(self, scenario: str) -> dict[str, Any]:
        """What the fake Meta's popup hands the page when the end-user finishes."""
        response = self.http.post("/_sandbox/dialog/finish", json={"scenario": scenario})
        assert response.status_code == 200, response.text
        finished: dict[str, Any] = response.json()
        return finished

    def report(self, link_id: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """What the page posts (same origin)."""
        return self.http.post(f"/signup/{link_id}/{path}", json=body, headers={"Origin": self.base})

    def complete(self, link_id: str, session: dict[str, Any]) -> None:
        """The page reports the code of Meta's finished ``session``: the link completes."""
        response = self.report(link_id, "callback", callback_body(session))
        assert response.status_code == 200, response.text

    def report_session(self, link_id: str, session: dict[str, Any]) -> None:
        """The page reports Meta's session message only (its tab then closed)."""
        data = session["data"]
        body = {**_ids(data), "event": "FINISH", "sessionId": data["session_id"]}
        response = self.report(link_id, "session", body)
        assert response.status_code == 202, response.text

    def signup(self) -> dict[str, Any]:
        """A completed signup: its link as the API shows it."""
        link = self.link()
        self.complete(link["id"], self.finish("ok"))
        done: dict[str, Any] = self.http.get(f"/v1/onboarding-links/{link['id']}").json()["data"]
        return done

    def failed(self) -> None:
        link = self.link()
        self.finish("close_tab")
        response = self.report(link["id"], "callback", {"error": {"code": "signup_cancelled"}})
        assert response.status_code == 422, response.text

    def recovered(self) -> None:
        """The tab closed before the code reached the page; Meta's notice completes it."""
        self.report_session(self.link()["id"], self.finish("close_tab"))

    def expired(self) -> None:
        """A pending link past its expiry, found by the serve's reconciliation."""
        link = self.link()
        with sqlite3.connect(self.cwd / "edge_onboard.db") as db:
            db.execute(
                "UPDATE links SET expires_at = 1000, doc = json_set(doc, '$.expires_at', "
                "json_object('$date', 1000)) WHERE id = ?",
                (link["id"],),
            )

    def meta(self, path: str, body: Any) -> None:
        """A delivery from Meta (the fake's app secret signs test mode's)."""
        raw = orjson.dumps(body)
        headers = {
            "X-Hub-Signature-256": sign_body(APP_SECRET, raw),
            "Content-Type": "application/json",
        }
        response = self.http.post(path, content=raw, headers=headers)
        assert response.status_code == 200, response.text

    def inbound(self, phone: dict[str, Any]) -> None:
        """Every Meta payload, and the extra ones, to the connected phone's webhook."""
        meta_phone = phone["metaPhoneNumberId"]
        bodies = [json.loads(path.read_text()) for path in sorted(PAYLOADS.glob("*.json"))]
        assert bodies, f"no Meta payloads in {PAYLOADS}"
        for value in EXTRA:
            change = {"field": "messages", "value": {"messaging_product": "whatsapp", **value}}
            entry = {"id": phone["metaWabaId"], "changes": [change]}
            bodies.append({"object": "whatsapp_business_account", "entry": [entry]})
        for body in bodies:
            self.meta(f"/webhook/phone/{phone['id']}", _for(body, meta_phone))

    def account(self, phone: dict[str, Any], event: str) -> None:
        value = {"event": event, "waba_info": {"waba_id": phone["metaWabaId"]}}
        change = {"field": "account_update", "value": value}
        entry = {"id": phone["metaWabaId"], "time": int(time.time()), "changes": [change]}
        self.meta("/webhook/meta", {"object": "whatsapp_business_account", "entry": [entry]})

    def cause_every_event(self) -> set[str]:
        """Cause them all; the types GET /v1/events then lists."""
        done = self.signup()
        phone = self.http.get(f"/v1/phones/{done['phoneNumberId']}").json()["data"]
        self.failed()
        self.recovered()
        self.expired()
        self.inbound(phone)
        self.account(phone, "ACCOUNT_VIOLATION")
        response = self.http.post("/_sandbox/remove-access", json={"waba_id": phone["metaWabaId"]})
        assert response.status_code == 202, response.text
        return self.types()

    def types(self, settle: float = 3, wait: float = 30) -> set[str]:
        """The event types listed, once they stopped growing for ``settle`` seconds (the
        fake's notices and the reconciliation come a moment later)."""
        seen: set[str] = set()
        since = deadline = time.monotonic()
        deadline += wait
        while True:
            found = {event["event"] for event in self.events()}
            now = time.monotonic()
            if found != seen:
                seen, since = found, now
            elif now - since >= settle or now > deadline:
                return found
            time.sleep(0.5)

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self.http.get("/v1/events", params=params).json()
            out.extend(page["data"])
            if not page["pagination"]["hasMore"]:
                return out
            params = {"limit": 100, "startingAfter": page["pagination"]["startingAfter"]}


def callback_body(session: dict[str, Any]) -> dict[str, Any]:
    """What the hosted page posts to its callback for the fake Meta's finished ``session``."""
    return {"code": session["code"], "event": session["event"], **_ids(session["data"])}


def _ids(data: dict[str, Any]) -> dict[str, Any]:
    """The ids of Meta's session message, as the page reports them."""
    return {
        "wabaId": data["waba_id"],
        "businessId": data["business_id"],
        "phoneNumberId": data["phone_number_id"],
    }


def _for(body: Any, meta_phone: str) -> Any:
    """``body`` for ``meta_phone``, its message ids made unique."""
    body = copy.deepcopy(body)
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            value.setdefault("metadata", {})["phone_number_id"] = meta_phone
            for key in ("messages", "message_echoes", "statuses"):
                for item in value.get(key, []):
                    item["id"] = f"{item['id']}.{uuid.uuid4().hex[:8]}"
    return body
