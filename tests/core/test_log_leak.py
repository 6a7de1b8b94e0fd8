"""No secret ever reaches a log line or a response.

The real ``edge-onboard serve`` runs as a subprocess at ``EDGE_LOG_LEVEL=DEBUG`` with the
real Graph client, which talks real HTTP to the sandbox's fake Graph served on its own
port in this process (not the in-process ``--sandbox`` shortcut). A whole flow runs over
HTTP: an API key, an outgoing webhook, a link with a webhook, the signup callback (code
exchange, debug_token, subscribe, webhook set-up, register with a PIN), a reused code, the
link, the phone and its health (after one failed Graph call, retried), Meta's webhook
handshake, a message sent, Meta's signed webhooks, a forged one, and the deliveries to a
local receiver. Then every secret the run handled (the app secret, the at-rest key, the
API key, the webhook secrets, the signup codes, every token the fake Graph issued, the
registration PIN, the webhook verify token) is looked for in everything the service
printed, every response it gave and every webhook it delivered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_onboard.meta.sandbox import APP_ID, APP_SECRET, CONFIG_ID, SandboxMeta
from tests.live import free_port, run_cli, serve, serving

EVENTS = [
    "phone_number.connected",
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
]
# What each webhook must have received, in the whole flow, before its evidence is complete.
EXPECTED_DELIVERIES = {
    "phone_number.connected",
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
}
CUSTOMER = "15551234567"

# Names of the secrets the test knows up front; the rest are named as they are found.
APP_SECRET_NAME = "Meta app secret"
SECRET_KEY_NAME = "EDGE_SECRET_KEY"
API_KEY_NAME = "API key"
LINK_SECRET_NAME = "link webhookSecret"
HOOK_SECRET_NAME = "outgoing webhook secret"
# Graph request fields whose values are secrets: query parameters and JSON body fields.
SECRET_QUERY = {"client_secret": "client_secret", "code": "signup code", "input_token": "token"}
SECRET_BODY = {"pin": "registration PIN", "verify_token": "Meta verify token"}


# The fake Meta, over real HTTP


@dataclasses.dataclass(frozen=True, slots=True)
class GraphCall:
    """One request the service made to the fake Graph."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    """One webhook the service delivered to the local receiver."""

    path: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def event(self) -> str:
        data = orjson.loads(self.body)
        return str(data.get("event") or data.get("type") or "") if isinstance(data, dict) else ""


class FakeMeta:
    """The sandbox's fake Graph and dialog, recording every Graph request, plus a
    receiver for the service's outgoing webhooks (``/hooks/{name}``)."""

    def __init__(self) -> None:
        self.sandbox = SandboxMeta()
        self.graph_calls: list[GraphCall] = []
        self.deliveries: list[Delivered] = []
        self.url = ""

    async def graph(self, request: Request) -> Response:
        body = await request.body()  # Starlette keeps it: the sandbox reads it again
        self.graph_calls.append(
            GraphCall(
                request.method,
                request.path_params["path"],
                dict(request.query_params),
                dict(request.headers),
                body,
            )
        )
        return await self.sandbox.graph(request)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.deliveries.append(Delivered(request.url.path, request.headers.items(), body))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                # Ahead of the sandbox's own Graph route, which it wraps.
                Route(
                    "/_sandbox/graph/{version}/{path:path}",
                    self.graph,
                    methods=["GET", "POST", "DELETE"],
                ),
                Route("/hooks/{name}", self.hook, methods=["POST"]),
                *self.sandbox.routes(),
            ]
        )

    def finish(self) -> dict[str, Any]:
        """What the dialog's "Finish" reports: a fresh signup code and Meta's ids."""
        response = httpx.post(
            f"{self.url}/_sandbox/dialog/finish", json={"scenario": "ok"}, timeout=10
        )
        assert response.status_code == 200, response.text
        session: dict[str, Any] = response.json()
        return session

    def calls_to(self, suffix: str, method: str = "POST") -> list[GraphCall]:
        return [c for c in self.graph_calls if c.method == method and c.path.endswith(suffix)]

    def delivered(self, name: str) -> set[str]:
        return {d.event for d in self.deliveries if d.path == f"/hooks/{name}"}

    def issued_secrets(self) -> list[tuple[str, str]]:
        """Every secret the fake minted or the service sent it: (kind, value)."""
        found: list[tuple[str, str]] = []
        found += [("signup code", code) for code in self.sandbox.codes]
        found += [("business access token", token) for token in self.sandbox.tokens]
        found += [
            ("registration PIN", str(phone["_pin"]))
            for phone in self.sandbox.phones.values()
            if phone.get("_pin")
        ]
        for call in self.graph_calls:
            header = call.headers.get("authorization", "")
            if header.lower().startswith("bearer "):
                token = header[7:]
                app_token = token == f"{APP_ID}|{APP_SECRET}"
                found.append(("app access token" if app_token else "Graph bearer token", token))
            found += [(SECRET_QUERY[k], v) for k, v in call.query.items() if k in SECRET_QUERY]
            body = orjson.loads(call.body) if call.body else None
            if isinstance(body, dict):
                fields = {**body, **(body.get("webhook_configuration") or {})}
                found += [(SECRET_BODY[k], str(v)) for k, v in fields.items() if k in SECRET_BODY]
        return found


@contextlib.contextmanager
def fake_meta() -> Iterator[FakeMeta]:
    fake = FakeMeta()
    with serving(fake.app()) as url:
        fake.url = url
        yield fake


# What the test saw, and the secrets it must never see there


@dataclasses.dataclass(frozen=True, slots=True)
class Seen:
    """A text the service produced: a log line, a response, a delivered webhook."""

    where: str
    text: str
    # Secrets this text hands out by design (a secret shown once, when it is created).
    allowed: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class Leak:
    secret: str
    where: str
    context: str


class Witness:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.seen: list[Seen] = []

    def secret(self, name: str, value: str) -> None:
        assert value, f"no value for the secret {name!r}"
        if value not in self.secrets.values():
            self.secrets[name] = value

    def secrets_from(self, found: Iterable[tuple[str, str]]) -> None:
        counts: dict[str, int] = {}
        for kind, value in found:
            if value and value not in self.secrets.values():
                counts[kind] = counts.get(kind, 0) + 1
                self.secret(f"{kind} #{counts[kind]}", value)

    def saw(self, where: str, text: str, allowed: Iterable[str] = ()) -> None:
        self.seen.append(Seen(where, text, frozenset(allowed)))

    def saw_output(self, where: str, output: str) -> None:
        for number, line in enumerate(output.splitlines(), 1):
            if line.strip():
                self.saw(f"{where} line {number}", line)

    def patterns(self) -> dict[str, re.Pattern[str]]:
        return {name: _secret_pattern(value) for name, value in self.secrets.items()}

    def mask(self, text: str) -> str:
        """``text`` with every secret in it shown as ``<<its name>>``."""
        return _masked(text, self.patterns())

    def leaks(self) -> list[Leak]:
        patterns = self.patterns()
        found: list[Leak] = []
        for name, pattern in patterns.items():
            for seen in self.seen:
                if name in seen.allowed:
                    continue
                for match in pattern.finditer(seen.text):
                    context = _context(seen.text, match, name, patterns)
                    found.append(Leak(name, seen.where, context))
        return found


def _secret_pattern(value: str) -> re.Pattern[str]:
    """``value`` as printed raw, URL-encoded or JSON-escaped; a short one (a PIN) only
    where it stands alone, not inside a longer word or number."""
    forms = {value, quote(value, safe=""), quote_plus(value), orjson.dumps(value).decode()[1:-1]}
    body = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    if len(value) < 12:
        return re.compile(rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])")
    return re.compile(body)


def _masked(text: str, patterns: Mapping[str, re.Pattern[str]]) -> str:
    for name, pattern in patterns.items():
        text = pattern.sub(f"<<{name}>>", text)
    return text


def _context(
    text: str,
    match: re.Match[str],
    name: str,
    patterns: Mapping[str, re.Pattern[str]],
    width: int = 70,
) -> str:
    """The text around a leak, every secret in it (this one too) shown as ``<<name>>``."""
    before = _masked(text[max(0, match.start() - width) : match.start()], patterns)
    after = _masked(text[match.end() : match.end() + width], patterns)
    snippet = f"{before}<<{name}>>{after}".encode("unicode_escape").decode()
    return ("…" if match.start() > width else "") + snippet


def leak_report(leaks: Sequence[Leak], secrets_checked: int, places: int, limit: int = 20) -> str:
    tally: dict[str, set[str]] = {}
    for leak in leaks:
        tally.setdefault(leak.secret, set()).add(leak.where)
    lines = [
        f"{len(leaks)} leaks of {len(tally)} of {secrets_checked} secrets in {places} "
        "log lines/responses/deliveries:"
    ]
    lines += [f"  {name}: {len(wheres)} places" for name, wheres in tally.items()]
    lines.append("first leaks (the secret shown as <<its name>>):")
    lines += [f"  {leak.secret} in {leak.where}: {leak.context}" for leak in leaks[:limit]]
    if len(leaks) > limit:
        lines.append(f"  … and {len(leaks) - limit} more")
    return "\n".join(lines)


def not_json_lines(seen: Sequence[Seen], mask: Callable[[str], str], limit: int = 5) -> list[str]:
    """Log lines that are not one JSON object each (secrets masked, shortened)."""
    bad: list[str] = []
    for item in seen:
        try:
            parsed = json.loads(item.text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            bad.append(f"{item.where}: {mask(item.text)[:160]!r}")
    return bad[:limit] + ([f"… and {len(bad) - limit} more"] if len(bad) > limit else [])


def http_text(response: httpx.Response) -> str:
    head = [f"HTTP {response.status_code}"]
    head += [f"{name}: {value}" for name, value in response.headers.multi_items()]
    return "\n".join(head) + "\n\n" + response.text


# The service, run for real


class Service:
    """An HTTP client on the running service that records every response it gets."""

    def __init__(self, base: str, key: str, witness: Witness) -> None:
        self.base = base
        self.witness = witness
        self.auth = {"Authorization": f"Bearer {key}"}
        self.http = httpx.Client(base_url=base, timeout=20)

    def call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        allowed: Iterable[str] = (),
    ) -> httpx.Response:
        response = self.http.request(
            method,
            path,
            json=json,
            content=content,
            params=params,
            headers={**(self.auth if auth else {}), **(headers or {})},
        )
        where = f"response {response.status_code} to {method} {urlsplit(path).path}"
        self.witness.saw(where, http_text(response), allowed)
        return response

    def meta_webhook(self, path: str, raw: bytes, *, secret: str = APP_SECRET) -> httpx.Response:
        """A POST as Meta signs it: HMAC-SHA256 of the raw body with the app secret."""
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return self.call(
            "POST",
            path,
            auth=False,
            content=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )

    def create_link(self, fake: FakeMeta, *, webhook: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "Acme",
            "externalId": "customer_123",
            "redirectUrl": "https://app.example.com/done",
        }
        if webhook:
            body |= {"webhookUrl": f"{fake.url}/hooks/link", "webhookEvents": EVENTS}
        created = self.call("POST", "/v1/onboarding-links", json=body, allowed={LINK_SECRET_NAME})
        assert created.status_code == 201, created.text
        link: dict[str, Any] = created.json()["data"]
        if webhook:
            self.witness.secret(LINK_SECRET_NAME, link["webhookSecret"])
        return link

    def callback(self, link_id: str, session: dict[str, Any]) -> httpx.Response:
        data = session["data"]
        return self.call(
            "POST",
            f"/signup/{link_id}/callback",
            auth=False,
            json={
                "code": session["code"],
                "wabaId": data["waba_id"],
                "businessId": data["business_id"],
                "phoneNumberId": data["phone_number_id"],
                "event": session["event"],
            },
        )

    def connect(self, fake: FakeMeta) -> tuple[dict[str, Any], dict[str, Any]]:
        """A link completed through the signup callback: (the link now, the dialog's report)."""
        link = self.create_link(fake)
        assert self.call("GET", f"/signup/{link['id']}", auth=False).status_code == 200
        session = fake.finish()
        done = self.callback(link["id"], session)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "success"
        view = self.call("GET", f"/v1/onboarding-links/{link['id']}")
        assert view.status_code == 200, view.text
        completed: dict[str, Any] = view.json()["data"]
        assert completed["status"] == "completed" and completed["isPhoneRegistered"] is True
        # The real Graph client made the real calls, over HTTP, to the fake.
        assert fake.calls_to("oauth/access_token", "GET") and fake.calls_to("debug_token", "GET")
        assert fake.calls_to("/subscribed_apps") and fake.calls_to("/register")
        return completed, session

    def reused_code(self, fake: FakeMeta, session: dict[str, Any]) -> None:
        """Meta refuses a code used already: the failure path is logged too."""
        other = self.create_link(fake, webhook=False)
        refused = self.callback(other["id"], session)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "code_exchange_failed"


def inbound_payload(meta_phone: str) -> bytes:
    """A customer's text message, as Meta's ``messages`` webhook carries it."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100000", "phone_number_id": meta_phone},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": CUSTOMER}],
        "messages": [
            {
                "from": CUSTOMER,
                "id": "wamid.LeakTest" + secrets.token_hex(8),
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "Olá!"},
            }
        ],
    }
    return orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
        }
    )


class Run:
    """One ``edge-onboard serve`` (with the CLI calls before it), pointed at ``fake``."""

    def __init__(self, cwd: Path, fake: FakeMeta, *, log_format: str | None = None) -> None:
        self.cwd = cwd
        self.fake = fake
        self.witness = Witness()
        self.log_lines: list[Seen] = []
        secret_key = secrets.token_urlsafe(48)
        self.env = {
            "EDGE_LOG_LEVEL": "DEBUG",
            "EDGE_META_GRAPH_URL": f"{fake.url}/_sandbox/graph",
            "EDGE_META_APP_ID": APP_ID,
            "EDGE_META_APP_SECRET": APP_SECRET,
            "EDGE_META_CONFIG_ID": CONFIG_ID,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_SECRET_KEY": secret_key,
        }
        if log_format is not None:
            self.env["EDGE_LOG_FORMAT"] = log_format
        self.witness.secret(APP_SECRET_NAME, APP_SECRET)
        self.witness.secret(SECRET_KEY_NAME, secret_key)

    def create_key(self) -> str:
        """``keys create`` (as tests.live.create_key runs it), keeping all it printed: the
        key is its last stdout line, which it prints by design; the rest is checked."""
        result = run_cli("keys", "create", "--org", "acme", cwd=self.cwd, env=self.env)
        *rest, key = result.stdout.strip().splitlines()
        self.witness.secret(API_KEY_NAME, key)
        self.witness.saw_output("keys create stdout", "\n".join(rest))
        self.log_lines += _lines("keys create stderr", result.stderr)
        return key

    @contextlib.contextmanager
    def serve(self) -> Iterator[Service]:
        key = self.create_key()
        port = free_port()
        try:
            with serve(self.cwd, env=self.env, port=port) as (base, _):
                service = Service(base, key, self.witness)
                try:
                    yield service
                finally:
                    service.http.close()
        finally:
            # Everything serve printed (stdout and stderr), up to its last shutdown line.
            log = self.cwd / f"serve-{port}.log"
            self.log_lines += _lines("serve log", log.read_text() if log.exists() else "")

    def check(self, *, json_lines: bool = False) -> None:
        self.witness.secrets_from(self.fake.issued_secrets())
        names = set(self.witness.secrets)
        for kind in ("signup code", "business access token", "registration PIN"):
            assert any(n.startswith(kind) for n in names), f"no {kind} was collected: {names}"
        self.witness.seen += self.log_lines
        for delivery in self.fake.deliveries:
            text = "\n".join(f"{k}: {v}" for k, v in delivery.headers)
            self.witness.saw(
                f"webhook delivered to {delivery.path}", f"{text}\n\n{delivery.body!r}"
            )
        problems: list[str] = []
        if json_lines:
            bad = not_json_lines(self.log_lines, self.witness.mask)
            if bad:
                problems.append(
                    f"EDGE_LOG_FORMAT=json: {len(self.log_lines)} log lines, not all one JSON "
                    "object each; first offenders:\n  " + "\n  ".join(bad)
                )
        leaks = self.witness.leaks()
        if leaks:
            problems.append(leak_report(leaks, len(names), len(self.witness.seen)))
        if problems:
            raise AssertionError("\n".join(problems))


def _lines(where: str, output: str) -> list[Seen]:
    return [
        Seen(f"{where} line {number}", line)
        for number, line in enumerate(output.splitlines(), 1)
        if line.strip()
    ]


def wait_for_deliveries(
    fake: FakeMeta, names: Sequence[str], events: set[str], timeout: float = 20
) -> None:
    """Until each receiver (``/hooks/{name}``) has had each of ``events``."""
    deadline = time.monotonic() + timeout
    while not all(events <= fake.delivered(name) for name in names):
        if time.monotonic() > deadline:
            got = {name: sorted(fake.delivered(name)) for name in names}
            raise AssertionError(f"deliveries missing after {timeout} s: {got}")
        time.sleep(0.1)


# The tests


def test_no_secret_reaches_a_log_line_or_a_response(tmp_path: Path) -> None:
    with fake_meta() as fake:
        run = Run(tmp_path, fake)
        with run.serve() as service:
            hook = service.call(
                "POST",
                "/v1/outgoing-webhooks",
                json={"url": f"{fake.url}/hooks/org", "events": EVENTS},
                allowed={HOOK_SECRET_NAME},
            )
            assert hook.status_code == 201, hook.text
            run.witness.secret(HOOK_SECRET_NAME, hook.json()["data"]["secret"])

            link, session = service.connect(fake)
            service.reused_code(fake, session)
            phone_id = link["phoneNumberId"]
            meta_phone = session["data"]["phone_number_id"]

            assert service.call("GET", "/v1/phones").status_code == 200
            assert service.call("GET", f"/v1/phones/{phone_id}").status_code == 200
            # One Graph failure first: the retry is logged.
            fake.sandbox.fail("GET", meta_phone, status=503)
            health = service.call("GET", f"/v1/phones/{phone_id}/health")
            assert health.status_code == 200, health.text
            assert health.json()["data"]["capabilities"]["canSendMessages"] is True

            # Meta checks the webhook URL with the verify token the service gave it.
            (setup,) = [c for c in fake.calls_to(meta_phone) if c.path == meta_phone]
            verify_token = orjson.loads(setup.body)["webhook_configuration"]["verify_token"]
            handshake = service.call(
                "GET",
                f"/webhook/phone/{phone_id}",
                auth=False,
                params={
                    "hub.mode": "subscribe",
                    "hub.verify_token": verify_token,
                    "hub.challenge": "1158201444",
                },
            )
            assert (handshake.status_code, handshake.text) == (200, "1158201444")

            sent = service.call(
                "POST",
                f"/v1/phones/{phone_id}/messages",
                json={"to": f"+{CUSTOMER}", "type": "text", "text": {"body": "Hello from edge"}},
                headers={"Idempotency-Key": "leak-test-1"},
            )
            assert sent.status_code == 201, sent.text

            # Meta's webhooks: the statuses of that message, a customer's message, a forgery.
            outbox = list(fake.sandbox.outbox)
            fake.sandbox.outbox.clear()
            assert len(outbox) == 3, outbox
            for url, raw in outbox:
                assert service.meta_webhook(urlsplit(url).path, raw).status_code == 200
            inbound = service.meta_webhook(
                f"/webhook/phone/{phone_id}", inbound_payload(meta_phone)
            )
            assert inbound.status_code == 200, inbound.text
            forged = service.meta_webhook(
                f"/webhook/phone/{phone_id}", inbound_payload(meta_phone), secret="not-the-secret"
            )
            assert forged.status_code == 401

            wait_for_deliveries(fake, ["org", "link"], EXPECTED_DELIVERIES)
    run.check()


def test_json_log_lines_carry_no_secret(tmp_path: Path) -> None:
    with fake_meta() as fake:
        run = Run(tmp_path, fake, log_format="json")
        with run.serve() as service:
            _, session = service.connect(fake)
            service.reused_code(fake, session)
            wait_for_deliveries(fake, ["link"], {"phone_number.connected"})
    run.check(json_lines=True)


def test_the_leak_finder_finds_what_it_should() -> None:
    """The check above is only as good as this: every form of a secret is found, a PIN
    only where it stands alone, and a secret only where it is not handed out by design."""
    witness = Witness()
    witness.secret("token", "tok/en+with=odd&chars ok")
    witness.secret("PIN", "123456")
    witness.saw("raw", "GET /x?token=tok/en+with=odd&chars ok HTTP/1.1")
    witness.saw("url-encoded", "input_token=tok%2Fen%2Bwith%3Dodd%26chars%20ok")
    witness.saw("form-encoded", "t=tok%2Fen%2Bwith%3Dodd%26chars+ok&x=1")
    witness.saw("json", '{"message": "pin=123456"}')
    witness.saw("inside a longer number or word", "ids 91234567 and req_ab123456cd")
    witness.saw("handed out", '{"secret": "tok/en+with=odd&chars ok"}', allowed={"token"})
    found = {(leak.secret, leak.where) for leak in witness.leaks()}
    assert found == {
        ("token", "raw"),
        ("token", "url-encoded"),
        ("token", "form-encoded"),
        ("PIN", "json"),
    }
    (raw,) = [leak for leak in witness.leaks() if leak.where == "raw"]
    assert raw.context == "GET /x?token=<<token>> HTTP/1.1"
    assert witness.mask("a 123456 b") == "a <<PIN>> b"
