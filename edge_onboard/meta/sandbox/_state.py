"""The fake's constants and its state: what every part of it reads and changes."""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse

APP_ID = "100000000000001"
APP_SECRET = "sandbox-app-secret"
CONFIG_ID = "200000000000002"
# The partner's system-user token in the sandbox (recovering signups).
SYSTEM_USER_TOKEN = "sandbox-system-user-token"
CODE_TTL = 30.0
# Dialog outcomes, one per Embedded Signup v4 ending (see SandboxMeta.finish).
SCENARIOS = (
    "ok",
    "registered",
    "foreign_waba",
    "register_fails",
    "only_waba",
    "unverified",
    "no_number",
    "business_app",
    "obo_migration",
    "grant_only",
    "close_tab",
    "meta_error",
)
# Where the fake Meta posts its app-level webhooks (the pump sends them in-process).
APP_WEBHOOK_URL = "http://sandbox.invalid/webhook/meta"
# The code that verifies an unverified sandbox number (request_code/verify_code).
VERIFY_CODE = "000000"
# The fake answers anonymous requests on every deployment, so all it keeps is bounded:
# the Graph calls it served (a ring of the latest, each path cut short), the webhooks
# waiting to be posted (the oldest dropped past the bound: the pump posts them within
# a fraction of a second) and, in sharing.py, its state.
CALL_LOG = 1000
CALL_PATH = 256
OUTBOX = 5000


# What the request being handled created or changed, to push when it is done.
class Touched:
    """What one request to the fake concerns: pushed back when it is done."""

    __slots__ = ("codes", "tokens", "wabas")

    def __init__(self) -> None:
        self.wabas: set[str] = set()
        self.tokens: set[str] = set()
        self.codes: set[str] = set()


_touched: contextvars.ContextVar[Touched | None] = contextvars.ContextVar(
    "sandbox_touched", default=None
)


def _digits(n: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (n - 1)) + 10 ** (n - 1))


@dataclasses.dataclass(slots=True)
class _Code:
    token: str
    expires_at: float
    used: bool = False


@dataclasses.dataclass(slots=True)
class _Failure:
    method: str
    path_suffix: str
    status: int
    body: dict[str, Any] | None
    times: int


def graph_error(message: str, code: int, subcode: int | None = None, status: int = 400) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "Sandbox" + secrets.token_hex(6),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status_code=status)


def _no_object(ident: str) -> Response:
    return graph_error(
        f"Unsupported get request. Object with ID '{ident}' does not exist, cannot be loaded due"
        " to missing permissions, or does not support this operation.",
        100,
        33,
    )


def _note(
    *, wabas: Iterable[str] = (), tokens: Iterable[str] = (), codes: Iterable[str] = ()
) -> None:
    """Record, for the request being handled, what it created or changed."""
    touched = _touched.get()
    if touched is not None:
        touched.wabas.update(wabas)
        touched.tokens.update(tokens)
        touched.codes.update(codes)


class State:
    """The fake's state, inspectable and steerable from tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, app_secret: str = APP_SECRET
    ) -> None:
        self.clock = clock
        # The fake Meta app's secret: it signs the fake's webhooks to the service and
        # authenticates the service to it. APP_SECRET, known to all, only under
        # EDGE_SANDBOX; a deployment's own otherwise (edge_onboard/app.py).
        self.app_secret = app_secret
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, set[str]] = {}
        self.waba_phones: dict[str, list[str]] = {}
        self.phones: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, set[str]] = {}
        # Webhook fields asked for when subscribing (coexistence), by WABA.
        self.subscribed_fields: dict[str, list[str]] = {}
        # The customer's business id -> the WABA it shared (for system-user tokens).
        self.businesses: dict[str, str] = {}
        # The latest Graph calls served (method, path): tests read them.
        self.calls: collections.deque[tuple[str, str]] = collections.deque(maxlen=CALL_LOG)
        self._failures: list[_Failure] = []
        # Webhooks the fake Meta will POST to us: (url, raw body).
        self.outbox: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=OUTBOX)
        # Called with (method, path) before each Graph call: tests make time pass there.
        self.on_call: Callable[[str, str], Awaitable[None]] | None = None
        # Once shared with other processes (sharing.py): which tokens grant each WABA
        # (as far as any process told), and when this process last used each WABA.
        self._waba_tokens: dict[str, set[str]] = {}
        self._seen: dict[str, float] = {}

    def _token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else None
