"""Test mode on the documented deployment (fly.toml): `serve` with in-process delivery
off (EDGE_INPROCESS_DELIVERY=0) plus one `worker`, on MongoDB and Redis. The fake Meta's
webhooks (message statuses, a customer's message, the close-tab signup's PARTNER_ADDED,
PARTNER_REMOVED) reach the service, and the events they make reach the customer."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests import services
from tests.live import QuietHandler, clean_env, run_cli, serve, stop, threaded_http

pytestmark = [pytest.mark.redis, pytest.mark.mongo]
WAIT = 40.0


class Events:
    """What the customer's endpoint received, by event type."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[dict[str, Any]] = []

    def types(self) -> list[str]:
        with self.lock:
            return [event["event"] for event in self.seen]

    def wait_for(self, *wanted: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.seen if e["event"] in wanted]
            if {e["event"] for e in found} >= set(wanted):
                return found
            time.sleep(0.1)
        raise AssertionError(f"{wanted} never arrived; received {self.types()}")


@contextlib.contextmanager
def endpoint() -> Iterator[tuple[str, Events]]:
    events = Events()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with events.lock:
                events.seen.append(json.loads(body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    with threaded_http(Handler) as base:
        yield f"{base}/hook", events


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_onboard", "worker"],
            env=clean_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            stop(proc)


@pytest.fixture
def fly_env() -> Iterator[dict[str, str]]:
    with services.deployment_env("fly") as env:
        yield {
            **env,
            "EDGE_INPROCESS_DELIVERY": "0",
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_RECOVERY_GRACE_SECONDS": "0",
            "EDGE_RECONCILE_INTERVAL": "1",
        }


def test_test_mode_works_with_a_separate_worker(tmp_path: Path, fly_env: dict[str, str]) -> None:
    created = run_cli("keys", "create", "--org", "acme", "--test", cwd=tmp_path, env=fly_env)
    auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    with (
        endpoint() as (url, events),
        serve(tmp_path, env=fly_env) as (base, _),
        worker(fly_env, tmp_path / "worker.log"),
        httpx.Client(base_url=base, headers=auth, timeout=30) as api,
    ):
        hook = api.post("/v1/outgoing-webhooks", json={"url": url, "events": sorted(EVENT_TYPES)})
        assert hook.status_code == 201, hook.text

        # A signup, then a message sent: Meta's statuses come back by webhook.
        link = api.post("/v1/onboarding-links", json={"name": "Acme"}).json()["data"]
        finished = httpx.post(f"{base}/_sandbox/dialog/finish", json={"scenario": "ok"}).json()
        data = finished["data"]
        report = {"code": finished["code"], "event": finished["event"], "wabaId": data["waba_id"]}
        report["phoneNumberId"] = data["phone_number_id"]
        callback = httpx.post(f"{base}/signup/{link['id']}/callback", json=report, timeout=30)
        assert callback.is_success, callback.text
        phone_id = api.get(f"/v1/onboarding-links/{link['id']}").json()["data"]["phoneNumberId"]
        sent = api.post(
            f"/v1/phones/{phone_id}/messages",
            json={"to": "15550001111", "type": "text", "text": {"body": "hello"}},
        )
        assert sent.status_code == 201, sent.text
        events.wait_for("message.sent", "message.delivered", "message.read")

        # A customer writes in (the owner's test key drives the fake).
        inbound = {"phone_number_id": data["phone_number_id"], "from": "15550002222", "text": "hi"}
        assert api.post("/_sandbox/inbound", json=inbound).status_code == 202
        (received,) = events.wait_for("message.received")
        assert received["data"]["from"] == "15550002222"

        # The end-user closed the tab after finishing: recovered from PARTNER_ADDED.
        lost = api.post("/v1/onboarding-links", json={"name": "Lost"}).json()["data"]
        closed = httpx.post(
            f"{base}/_sandbox/dialog/finish", json={"scenario": "close_tab"}
        ).json()["data"]
        session = {"event": "FINISH", "wabaId": closed["waba_id"]}
        session |= {"phoneNumberId": closed["phone_number_id"], "businessId": closed["business_id"]}
        reported = httpx.post(f"{base}/signup/{lost['id']}/session", json=session)
        assert reported.status_code == 202, reported.text
        (recovered,) = events.wait_for("onboarding_link.recovered")
        assert recovered["data"]["onboardingLinkId"] == lost["id"]

        # The business removes the app: the WABA is disconnected.
        removed = api.post("/_sandbox/remove-access", json={"waba_id": data["waba_id"]})
        assert removed.status_code == 202, removed.text
        events.wait_for("waba.disconnected")
