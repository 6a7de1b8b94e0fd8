"""``trigger`` and ``listen`` through the real command against a real ``serve``: a
triggered event forwarded to a local receiver, verified with the ``standardwebhooks``
package; a failed local POST retried; a killed ``listen`` restarted from its cursor
without losing one; ``keys list`` and ``--json``."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from tests.live import CLI, QuietHandler, clean_env, run_cli, serve, threaded_http


class Receiver:
    """What the local URL received; it answers 500 to the next ``fail`` POSTs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        self.refused = 0

    def handler(self) -> type[QuietHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    failing = receiver.fail > 0
                    if failing:
                        receiver.fail -= 1
                        receiver.refused += 1
                    else:
                        receiver.received.append((dict(self.headers.items()), body))
                self.send_response(500 if failing else 204)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler

    def ids(self) -> list[str]:
        with self.lock:
            return [orjson.loads(body)["id"] for _, body in self.received]

    def wait_for(self, ids: set[str], seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not ids <= set(self.ids()):
            assert time.monotonic() < deadline, f"not forwarded: {ids - set(self.ids())}"
            time.sleep(0.05)


class Listen:
    """``edge-onboard listen`` in a subprocess, its output in a file."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.out = cwd / f"listen-{time.monotonic_ns()}.log"
        with self.out.open("w") as out:
            self.proc = subprocess.Popen(
                [*CLI, "listen", *args], cwd=cwd, env=clean_env(), stdout=out, stderr=out
            )

    def secret(self) -> str:
        deadline = time.monotonic() + 20
        while True:
            found = re.search(r"signing secret is (whsec_\S+)", self.out.read_text())
            if found:
                return found.group(1)
            assert self.proc.poll() is None, self.out.read_text()
            assert time.monotonic() < deadline, self.out.read_text()
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def trigger(base: str, key: str, event: str) -> str:
    out = run_cli("trigger", event, "--api-url", base, "--key", key, cwd=Path.cwd()).stdout
    found = re.search(rf"Triggered {re.escape(event)}: (evt_[0-9a-f]+)", out)
    assert found, out
    return found.group(1)


def all_events(base: str, key: str) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    params = {"limit": "100"}
    while True:
        page = httpx.get(
            f"{base}/v1/events", params=params, headers={"Authorization": f"Bearer {key}"}
        ).json()
        events.update({e["id"]: e for e in page["data"]})
        if not page["pagination"]["hasMore"]:
            return events
        params["startingAfter"] = page["pagination"]["startingAfter"]


def test_listen_forwards_triggered_events_signed_and_resumes_after_a_kill(
    tmp_path: Path,
) -> None:
    made = orjson.loads(
        run_cli("keys", "create", "--org", "acme", "--test", "--json", cwd=tmp_path).stdout
    )
    key = made["key"]
    assert made["livemode"] is False and key.startswith("sk_test_")
    receiver = Receiver()
    state = tmp_path / "listen-state.json"
    with serve(tmp_path) as (base, _), threaded_http(receiver.handler()) as local:
        args = ["--forward-to", f"{local}/hooks", "--api-url", base, "--key", key]
        args += ["--state", str(state), "--interval", "0.2"]
        listen = Listen(tmp_path, *args)
        try:
            secret = listen.secret()
            first = trigger(base, key, "message.received")
            receiver.wait_for({first})
        finally:
            listen.stop()
        verifier = Webhook(secret)
        headers, body = next((h, b) for h, b in receiver.received if b"message.received" in b)
        payload = verifier.verify(body, headers)
        assert payload["id"] == first and payload["event"] == "message.received"
        # The bytes the service's own webhook would carry (GET /v1/events/{id} is them).
        served = httpx.get(f"{base}/v1/events/{first}", headers={"Authorization": f"Bearer {key}"})
        assert orjson.loads(body) == served.json()["data"]

        # Killed (SIGKILL above): events made meanwhile wait in the deployment; the first
        # local POST after the restart fails and is retried.
        missed = {trigger(base, key, "message.reaction"), trigger(base, key, "message.read")}
        receiver.fail = 1
        again = Listen(tmp_path, *args)
        try:
            assert again.secret() == secret  # kept with the cursor
            receiver.wait_for(missed)
            time.sleep(1)  # a few more polls: nothing else, nothing twice
        finally:
            again.stop()
        log = again.out.read_text()
        assert receiver.refused == 1 and "-> 500" in log and "retrying" in log, log
        # None lost: every event of the deployment reached the receiver, each verified.
        ids = receiver.ids()
        assert set(ids) == set(all_events(base, key))
        assert len(ids) == len(set(ids)), "an event was forwarded twice"
        for headers, body in receiver.received:
            verifier.verify(body, headers)


def test_listen_and_trigger_refuse_clearly(tmp_path: Path) -> None:
    key = orjson.loads(run_cli("keys", "create", "--org", "acme", "--json", cwd=tmp_path).stdout)
    live = key["key"]
    test = orjson.loads(
        run_cli("keys", "create", "--org", "acme", "--test", "--json", cwd=tmp_path).stdout
    )["key"]
    with serve(tmp_path) as (base, _):
        remote = ("--api-url", base)
        refused = run_cli(
            "trigger", "message.received", *remote, "--key", live, cwd=tmp_path, check=False
        )
        assert refused.returncode == 1 and "test key" in refused.stderr
        typo = run_cli(
            "trigger", "mesage.recieved", *remote, "--key", test, cwd=tmp_path, check=False
        )
        assert typo.returncode == 1 and "did you mean message.received?" in typo.stderr
        events = ("--events", "mesage.*", "--forward-to", "http://127.0.0.1:9/x")
        bad = run_cli("listen", *events, *remote, "--key", test, cwd=tmp_path, check=False)
        assert bad.returncode == 1 and "unknown event type" in bad.stderr
        nokey = run_cli(
            "listen", "--forward-to", "http://127.0.0.1:9/x", *remote, cwd=tmp_path, check=False
        )
        assert nokey.returncode == 2 and "--key" in nokey.stderr
    down = run_cli(
        "trigger", "message.received", "--api-url", base, "--key", test, cwd=tmp_path, check=False
    )
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_keys_list_and_json(tmp_path: Path) -> None:
    live = orjson.loads(run_cli("keys", "create", "--org", "acme", "--json", cwd=tmp_path).stdout)
    test = orjson.loads(
        run_cli("keys", "create", "--org", "beta", "--test", "--json", cwd=tmp_path).stdout
    )
    listed = orjson.loads(run_cli("keys", "list", "--json", cwd=tmp_path).stdout)["data"]
    assert [k["id"] for k in listed] == [live["id"], test["id"]]
    assert [k["organization"] for k in listed] == ["acme", "beta"]
    assert all("key" not in k and "keyHash" not in k for k in listed)
    text = run_cli("keys", "list", cwd=tmp_path).stdout
    assert live["prefix"] in text and "test" in text and live["key"] not in text
    revoked = orjson.loads(run_cli("keys", "revoke", live["id"], "--json", cwd=tmp_path).stdout)
    assert revoked["revoked"] is True and revoked["revokedAt"] is not None
    assert [
        k["id"]
        for k in orjson.loads(run_cli("keys", "list", "--json", cwd=tmp_path).stdout)["data"]
    ] == [test["id"]]
    every = orjson.loads(run_cli("keys", "list", "--all", "--json", cwd=tmp_path).stdout)["data"]
    assert len(every) == 2


def test_the_start_line_says_when_live_signups_cannot_work() -> None:
    from edge_onboard.startup import summary
    from tests.conftest import make_settings

    address = ("127.0.0.1", 8080)
    bare = summary(make_settings(), address)
    assert "live signups cannot work" in bare and "keys create --test" in bare
    meta = {
        "EDGE_META_APP_ID": "1234567890",
        "EDGE_META_APP_SECRET": "s" * 32,
        "EDGE_META_CONFIG_ID": "987654321",
    }
    for settings in (make_settings(**meta), make_settings(EDGE_SANDBOX="1")):
        line = summary(settings, address)
        assert line.startswith("edge-onboard listening on") and "cannot work" not in line
