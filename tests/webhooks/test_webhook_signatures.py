"""Webhook signatures as receivers check them: real deliveries to a live receiver,
verified by the stock Standard Webhooks libraries (Python's standardwebhooks and svix,
Node's standardwebhooks), in their default mode for ``whsec_`` secrets and their raw
mode for any other secret; secret rotation; and the service's front page."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook

from edge_onboard.api.auth import create_key
from edge_onboard.hosted.page import page_headers
from edge_onboard.storage import OutgoingWebhook, Storage
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.webhooks.delivery import sign, signing_key
from edge_onboard.webhooks.endpoints import PREVIOUS_SECRET_TTL, generate_webhook_secret
from tests.api.test_links_api import assert_error
from tests.conftest import AppClient, FakeClock, make_settings, running_app
from tests.live import QuietHandler, threaded_http

pytestmark = pytest.mark.anyio

GENERATED = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")  # 32 bytes in padded base64
# The API takes any 16-256 characters as a secret (the seed's rule); not ASCII here, so a
# verifier that reads the string as anything but UTF-8 would fail.
ARBITRARY = "my own sécret ☃ 0123"
# Looks like a Standard Webhooks secret but is not valid base64: raw mode, like any string.
LOOKALIKE = "whsec_not-base64-at-all!"
# The Node package verifying deliveries; pinned, so a new release cannot change the test.
NPM_PACKAGE = "standardwebhooks@1.1.1"
# Reads [{secret, mode, body (base64), headers}] on stdin, prints [true|false, ...]: each
# delivery checked the way the package's users do. Raw mode is given the UTF-8 bytes: its
# string form takes each UTF-16 unit as one byte, which is wrong beyond ASCII.
VERIFY_JS = """
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const verdicts = JSON.parse(input).map(({ secret, mode, body, headers }) => {
    const wh = mode === "raw"
      ? new Webhook(new TextEncoder().encode(secret), { format: "raw" })
      : new Webhook(secret);
    try {
      wh.verify(Buffer.from(body, "base64"), headers);
      return true;
    } catch (err) {
      if (err.name !== "WebhookVerificationError") throw err;
      return false;
    }
  });
  process.stdout.write(JSON.stringify(verdicts));
});
"""

Mode = Literal["default", "raw"]
ALL = {"standardwebhooks": True, "svix": True, "node": True}
NONE = {"standardwebhooks": False, "svix": False, "node": False}


@dataclass(frozen=True)
class Captured:
    path: str
    body: bytes
    headers: dict[str, str]

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


@contextlib.contextmanager
def live_receiver() -> Iterator[tuple[str, list[Captured]]]:
    """An HTTP server on loopback that records every POST and answers 204."""
    received: list[Captured] = []
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                received.append(Captured(self.path, body, dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

    with threaded_http(Handler) as base:
        yield base, received


class NodeVerifier:
    def __init__(self, node: str, folder: Path) -> None:
        self.node = node
        self.script = folder / "verify.js"
        self.script.write_text(VERIFY_JS)

    def verify(self, cases: Sequence[tuple[Captured, str, Mode]]) -> list[bool]:
        request = [
            {
                "secret": secret,
                "mode": mode,
                "body": base64.b64encode(captured.body).decode(),
                "headers": captured.headers,
            }
            for captured, secret, mode in cases
        ]
        result = subprocess.run(
            [self.node, str(self.script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        verdicts: list[bool] = json.loads(result.stdout)
        return verdicts


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> NodeVerifier:
    """Node's standardwebhooks package, installed from npm into a temporary folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm must be on PATH: these tests verify deliveries with Node's "
            f"{NPM_PACKAGE} (install Node.js 18 or later, which includes npm)",
            pytrace=False,
        )
    folder = tmp_path_factory.mktemp("node-verifier")
    (folder / "package.json").write_text('{"private": true}\n')
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", NPM_PACKAGE],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(
            f"npm install {NPM_PACKAGE} failed:\n{installed.stdout}{installed.stderr}",
            pytrace=False,
        )
    return NodeVerifier(node, folder)


class _Verifier(Protocol):
    def verify(self, data: bytes, headers: dict[str, str]) -> object: ...


def _python_verifies(
    library: Callable[[str | bytes], _Verifier], key: str | bytes, captured: Captured
) -> bool:
    try:
        library(key).verify(captured.body, captured.headers)  # checks the timestamp too
    except WebhookVerificationError:
        return False
    return True


def verdicts(
    node: NodeVerifier, cases: Sequence[tuple[Captured, str, Mode]]
) -> list[dict[str, bool]]:
    """Whether each library verifies each delivery with that secret in that mode: the
    secret string as given in default mode, its UTF-8 bytes in raw mode."""
    from_node = node.verify(cases)
    results = []
    for (captured, secret, mode), node_ok in zip(cases, from_node, strict=True):
        key: str | bytes = secret if mode == "default" else secret.encode()
        results.append(
            {
                "standardwebhooks": _python_verifies(Webhook, key, captured),
                "svix": _python_verifies(SvixWebhook, key, captured),
                "node": node_ok,
            }
        )
    return results


class Harness:
    def __init__(
        self, client: AppClient, clock: FakeClock, base: str, received: list[Captured]
    ) -> None:
        self.client = client
        self.clock = clock
        self.base = base
        self.received = received
        self.org_id = ""
        self.auth: dict[str, str] = {}

    async def webhook(self, path: str, **extra: Any) -> dict[str, Any]:
        body = {"url": self.base + path, "events": ["phone_number.connected"], **extra}
        response = await self.client.post("/v1/outgoing-webhooks", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def rotate(
        self, webhook_id: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> httpx.Response:
        headers = {**self.auth, **({"Idempotency-Key": key} if key else {})}
        return await self.client.post(
            f"/v1/outgoing-webhooks/{webhook_id}/rotate-secret", json=body, headers=headers
        )

    async def deliver(self) -> dict[str, Captured]:
        """Emit an event and deliver it now: what each endpoint received, by path."""
        services = self.client.services
        event = await services.webhooks.emit(
            self.org_id, "phone_number.connected", {"n": 1}, livemode=True
        )
        assert event is not None
        await services.engine.drain()
        got = {c.path: c for c in self.received if c.headers["webhook-id"] == event.id}
        (sent_at,) = {c.headers["webhook-timestamp"] for c in got.values()}
        assert int(sent_at) == int(self.clock().timestamp())  # signed at send time
        return got


@contextlib.asynccontextmanager
async def harness(storage: Storage, clock: FakeClock) -> AsyncIterator[Harness]:
    settings = make_settings(EDGE_WEBHOOK_ALLOW_PRIVATE="1")  # the receiver is on loopback
    with live_receiver() as (base, received):
        async with running_app(storage, clock, settings) as client:
            hooks = Harness(client, clock, base, received)
            org, _, key = await create_key(storage, "acme", clock())
            hooks.org_id, hooks.auth = org.id, {"Authorization": f"Bearer {key}"}
            yield hooks


@pytest.fixture
async def hooks() -> AsyncIterator[Harness]:
    # Real time: every library refuses a timestamp more than 5 minutes off its clock.
    async with harness(MemoryStorage(), FakeClock(datetime.now(UTC))) as harnessed:
        yield harnessed


def test_signing_key_follows_the_spec() -> None:
    # The Standard Webhooks specification's own example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected

    generated = generate_webhook_secret()
    assert GENERATED.match(generated)
    key = signing_key(generated)
    assert key == base64.b64decode(generated[len("whsec_") :]) and len(key) == 32

    def whsec(size: int) -> tuple[str, bytes]:
        key = secrets.token_bytes(size)
        return "whsec_" + base64.b64encode(key).decode(), key

    for size in (24, 48, 64):  # the spec's bounds: decoded
        text, key = whsec(size)
        assert signing_key(text) == key
    for size in (23, 65):  # outside them: the string itself
        text, _ = whsec(size)
        assert signing_key(text) == text.encode()
    text, _ = whsec(32)
    for not_base64 in (
        text.rstrip("="),  # unpadded: Node's library refuses it in default mode
        text[:10] + "-_" + text[12:],  # the URL-safe alphabet
        text[:10] + " " + text[10:],
        LOOKALIKE,
        "whsec_",
    ):
        assert signing_key(not_base64) == not_base64.encode()
    assert signing_key(ARBITRARY) == ARBITRARY.encode("utf-8")


async def test_deliveries_verify_in_every_library(hooks: Harness, node: NodeVerifier) -> None:
    generated = (await hooks.webhook("/generated"))["secret"]
    assert GENERATED.match(generated)
    customer_whsec = "whsec_" + base64.b64encode(secrets.token_bytes(48)).decode()
    for path, secret in (
        ("/customer-whsec", customer_whsec),
        ("/arbitrary", ARBITRARY),
        ("/lookalike", LOOKALIKE),
    ):
        assert (await hooks.webhook(path, secret=secret))["secret"] == secret
    got = await hooks.deliver()
    assert sorted(got) == ["/arbitrary", "/customer-whsec", "/generated", "/lookalike"]
    assert all(len(c.signatures) == 1 for c in got.values())
    cases: list[tuple[Captured, str, Mode]] = [
        (got["/generated"], generated, "default"),
        (got["/customer-whsec"], customer_whsec, "default"),
        (got["/arbitrary"], ARBITRARY, "raw"),
        (got["/lookalike"], LOOKALIKE, "raw"),
        # The key of a whsec_ secret is its decoded bytes, never the string itself.
        (got["/generated"], generated, "raw"),
        (got["/customer-whsec"], customer_whsec, "raw"),
    ]
    assert verdicts(node, cases) == [ALL, ALL, ALL, ALL, NONE, NONE]


async def test_rotation_signs_with_both_secrets_for_a_day(
    storage: Storage, node: NodeVerifier
) -> None:
    # Rotated a day (less a minute) before the real time, so that the deliveries at the end
    # of the overlap are signed at about the real time, which is what the libraries accept.
    real_now = datetime.now(UTC)
    clock = FakeClock(real_now - PREVIOUS_SECRET_TTL - timedelta(minutes=1))
    async with harness(storage, clock) as hooks:
        hook = await hooks.webhook("/rotating")
        old = hook["secret"]
        rotated = await hooks.rotate(hook["id"], key="rotate-1")
        assert rotated.status_code == 200, rotated.text
        data = rotated.json()["data"]
        new = data.pop("secret")
        assert GENERATED.match(new) and new != old
        assert data == {k: v for k, v in hook.items() if k != "secret"}
        # A retry with the same key gets the same answer and rotates nothing.
        again = await hooks.rotate(hook["id"], key="rotate-1")
        assert again.json()["data"]["secret"] == new
        assert again.headers["idempotent-replayed"] == "true"
        got = await hooks.client.get(f"/v1/outgoing-webhooks/{hook['id']}", headers=hooks.auth)
        assert got.json()["data"] == data  # the secrets are never shown again

        hooks.clock.advance(seconds=PREVIOUS_SECRET_TTL.total_seconds() - 60)
        delivered = (await hooks.deliver())["/rotating"]
        timestamp = int(delivered.headers["webhook-timestamp"])
        new_signature, old_signature = delivered.signatures  # the new one first
        assert new_signature == sign(
            new, delivered.headers["webhook-id"], timestamp, delivered.body
        )
        assert old_signature == sign(
            old, delivered.headers["webhook-id"], timestamp, delivered.body
        )
        assert verdicts(node, [(delivered, new, "default"), (delivered, old, "default")]) == [
            ALL,
            ALL,
        ]

        hooks.clock.advance(seconds=60)  # 24 h after the rotation: the old secret is done
        delivered = (await hooks.deliver())["/rotating"]
        assert len(delivered.signatures) == 1
        assert verdicts(node, [(delivered, new, "default"), (delivered, old, "default")]) == [
            ALL,
            NONE,
        ]

        # Rotating again, to a secret of the customer's own: the one it replaces signs
        # beside it, and the one from a day ago is gone.
        rotated = await hooks.rotate(hook["id"], {"secret": ARBITRARY})
        assert rotated.status_code == 200 and rotated.json()["data"]["secret"] == ARBITRARY
        delivered = (await hooks.deliver())["/rotating"]
        assert len(delivered.signatures) == 2
        cases: list[tuple[Captured, str, Mode]] = [
            (delivered, ARBITRARY, "raw"),
            (delivered, new, "default"),
            (delivered, old, "default"),
        ]
        assert verdicts(node, cases) == [ALL, ALL, NONE]


async def test_rotate_secret_refusals(hooks: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = await hooks.webhook("/refusals")
    path = f"/v1/outgoing-webhooks/{hook['id']}/rotate-secret"
    short = await hooks.rotate(hook["id"], {"secret": "too-short"})
    assert_error(short, 400, "parameter_invalid", "secret")
    assert_error(await hooks.rotate(hook["id"], {"x": 1}), 400, "unknown_parameter", "x")
    not_json = await hooks.client.post(
        path, content=b"secret=x", headers={**hooks.auth, "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert_error(await hooks.client.post(path), 401, "missing_api_key")
    _, _, other_key = await create_key(hooks.client.services.storage, "globex", hooks.clock())
    other = await hooks.client.post(path, headers={"Authorization": f"Bearer {other_key}"})
    assert_error(other, 404, "resource_missing")
    assert_error(await hooks.rotate("not-a-uuid"), 404, "resource_missing")

    # Another rotation lands between this one's read and its write: this one fails (its
    # secret would never sign anything) and the other one's secret stays.
    service = hooks.client.services.webhooks
    read = service.get

    async def racing_get(org_id: str, webhook_id: str, *, livemode: bool) -> OutgoingWebhook:
        before = await read(org_id, webhook_id, livemode=livemode)
        monkeypatch.setattr(service, "get", read)
        await service.rotate_secret(org_id, webhook_id, {"secret": ARBITRARY}, livemode=True)
        return before

    monkeypatch.setattr(service, "get", racing_get)
    assert_error(await hooks.rotate(hook["id"]), 409, "secret_rotation_conflict")
    delivered = (await hooks.deliver())["/refusals"]
    assert len(delivered.signatures) == 2  # the winner's secret, and the one it replaced
    assert _python_verifies(Webhook, ARBITRARY.encode(), delivered)

    deleted = await hooks.client.delete(f"/v1/outgoing-webhooks/{hook['id']}", headers=hooks.auth)
    assert deleted.status_code == 200
    assert_error(await hooks.rotate(hook["id"]), 404, "resource_missing")


async def test_front_page(hooks: Harness) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for accept in (browser, "*/*", None, "application/json;q=0", "text/*, application/json"):
        headers = {"Accept": accept} if accept else {}
        page = await hooks.client.get("/", headers=headers)
        assert page.status_code == 200, accept
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert (
            '<a href="/openapi.json">' in page.text and "<title>edge-onboard</title>" in page.text
        )
        for name, value in {**page_headers(None), "Vary": "Accept"}.items():
            assert page.headers[name] == value
    for accept in ("application/json", "text/html;q=0.5, application/json", "application/*"):
        answer = await hooks.client.get("/", headers={"Accept": accept})
        assert answer.status_code == 200 and answer.headers["vary"] == "Accept", accept
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"name": "edge-onboard", "openapi": "/openapi.json"}
    head = await hooks.client.head("/")
    assert head.status_code == 200 and head.content == b""
