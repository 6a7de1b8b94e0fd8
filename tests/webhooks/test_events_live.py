"""The events API on a real `edge-onboard serve`: an endpoint down long enough for its
deliveries to fail for good, then recovered over the API, each event arriving once with
the bytes GET /v1/events/{id} serves."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.live import QuietHandler, create_key, serve, threaded_http


class Endpoint:
    """A customer's endpoint: 503 while ``down``, else 200; keeps what it was sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = True
        self.accepted: list[tuple[str, bytes, dict[str, str]]] = []
        self.refused = 0


@contextlib.contextmanager
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    state = Endpoint()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                status = 503 if state.down else 200
                if state.down:
                    state.refused += 1
                else:
                    state.accepted.append((self.headers["webhook-id"], body, dict(self.headers)))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    with threaded_http(Handler) as base:
        yield f"{base}/hook", state


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_an_endpoint_down_then_recovered_gets_each_missed_event_once(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    env = {
        "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
        # Three quick attempts: the deliveries fail for good within a second.
        "EDGE_DELIVERY_SCHEDULE": "0,0.2,0.2",
        "EDGE_RATE_LIMIT_API": "1000",
        "EDGE_RATE_LIMIT_PUBLIC": "1000",
    }
    auth = {"Authorization": f"Bearer {key}"}
    with endpoint() as (url, state), serve(tmp_path, "--sandbox", env=env) as (base, _):
        client = httpx.Client(base_url=base, headers=auth, timeout=10)
        hook = client.post(
            "/v1/outgoing-webhooks", json={"url": url, "events": ["onboarding_link.opened"]}
        ).json()["data"]
        since = client.get("/v1/outgoing-webhooks").json()["data"][0]["createdAt"]
        links = [
            client.post("/v1/onboarding-links", json={"name": f"Shop {i}"}).json()["data"]
            for i in range(3)
        ]
        for link in links:  # the end-user opens the page: onboarding_link.opened
            assert httpx.get(f"{base}/signup/{link['id']}").status_code == 200

        def deliveries() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = client.get(
                f"/v1/outgoing-webhooks/{hook['id']}/deliveries"
            ).json()["data"]
            return items

        wait_for(
            lambda: len(deliveries()) == 3 and all(d["status"] == "failed" for d in deliveries()),
            30,
            "the deliveries to fail for good",
        )
        assert state.refused == 9 and state.accepted == []
        events = client.get("/v1/events", params={"type": "onboarding_link.*"}).json()["data"]
        assert sorted(e["id"] for e in events) == sorted(d["eventId"] for d in deliveries())

        state.down = False
        answer = client.post(f"/v1/outgoing-webhooks/{hook['id']}/recover", json={"since": since})
        assert answer.status_code == 202, answer.text
        again = client.post(f"/v1/outgoing-webhooks/{hook['id']}/recover", json={"since": since})
        assert again.status_code == 202, again.text
        wait_for(
            lambda: all(d["status"] == "succeeded" for d in deliveries()),
            30,
            "the recovered deliveries",
        )
        time.sleep(0.5)  # nothing more may come
        with state.lock:
            accepted = list(state.accepted)
        assert sorted(ident for ident, _, _ in accepted) == sorted(e["id"] for e in events)
        for ident, body, headers in accepted:
            Webhook(hook["secret"]).verify(body, headers)
            served = client.get(f"/v1/events/{ident}")
            assert served.status_code == 200
            assert served.content == b'{"data":' + body + b"}"
        client.close()
