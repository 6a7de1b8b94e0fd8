"""Regions: reads answered where the request lands, writes replayed to the primary region.

Fly.io's own mechanism, as its multi-region blueprint and fly-ruby use it: outside the
primary region a request that writes is answered at once with ``fly-replay:
region=<primary>``, and Fly's proxy redelivers the original request (bodies up to 1 MB)
to a machine in the primary region, adding ``fly-replay-src`` to it. Nothing here
forwards requests or replicates data itself: reads come from the region's replicas (a
Redis replica, a nearby MongoDB member), writes run once, in the primary.

``RegionRouting`` (pure ASGI, ahead of every route) replays, outside the primary:

- every request that writes, before any work: methods other than GET/HEAD/OPTIONS, and
  Meta's webhook endpoints and the fake Graph API whatever their method (a GET there may
  use up a code); a body Fly could not replay (over 1 MB) is refused with 413 instead;
- reads by a client that wrote within the last ``EDGE_REPLAY_WINDOW`` seconds, so it
  reads its own writes before replication brings them here (a browser by the cookie the
  primary sets on the answer to its write, as fly-ruby does; an API client by its key,
  remembered in this process when it answered the write with a replay);
- a read that found nothing (404, or 401 for a key): the primary may have it already
  (a link created a moment ago, a new key); the replica's answer is dropped unsent;
- a read that turns out to write (``ReplayRequired``, raised by ``ReplicaStorage`` on
  any write method): the first view of a link marks it opened, for instance.

A request that carries ``fly-replay-src`` was replayed once already and is answered
where it lands, so nothing can loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_onboard.core.errors import ApiError

REPLAY = b"fly-replay"
REPLAY_SRC = b"fly-replay-src"
MAX_REPLAY_BODY = 1024 * 1024  # Fly's proxy replays request bodies up to 1 MB
WINDOW_COOKIE = "edge-replay-until"  # unix seconds until which a browser reads the primary
RECENT_WRITERS = 100_000  # API keys remembered per process, at most
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Whatever the method: Meta's webhooks (handshakes too) and the fake Meta's Graph API,
# where a GET exchanges a one-time code.
PRIMARY_ONLY = ("/webhook/", "/_sandbox/graph/")


@dataclasses.dataclass(frozen=True, slots=True)
class Region:
    """Where this process runs, and where writes run."""

    name: str | None = None
    primary: str | None = None

    @property
    def is_primary(self) -> bool:
        return self.name is None or self.primary in (None, self.name)

    @property
    def role(self) -> str:
        return "primary" if self.is_primary else "replica"


class ReplayRequired(Exception):
    """A write was attempted outside the primary region: the request must be replayed."""


class ReplicaStorage:
    """The store as a region other than the primary sees it: reads pass through (to the
    nearest replica), and any other method raises ``ReplayRequired`` before it runs.

    An allowlist, not a list of writes: a method added to the storage protocol later
    is replayed (slower) until it is named here, never run against a replica."""

    READS = frozenset(
        {
            "open", "close", "ping", "get_org", "get_api_key_by_hash", "find_api_keys",
            "get_link", "list_links", "pending_links_by_session_waba", "open_grants",
            "wabas_by_meta_id", "find_phone_by_meta_id", "phones_by_meta_id", "get_phone",
            "list_phones", "get_waba", "list_wabas", "phones_of_wabas", "get_webhook",
            "list_webhooks", "get_webhooks", "active_webhooks", "get_event", "list_events",
            "failed_deliveries", "get_delivery", "get_events", "get_deliveries",
            "list_deliveries", "due_deliveries", "replica_staleness",
        }
    )  # fmt: skip

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if name in self.READS or not callable(value):
            return value

        async def write(*args: Any, **kwargs: Any) -> Any:
            raise ReplayRequired(name)

        return write


class RecentWriters:
    """API keys (by hash) that wrote through this process lately: their reads are
    replayed to the primary until their window ends. In this process's memory: the mark
    is made when this process answers the write with a replay, so it is in place before
    the client can send its next request (a mark kept in a store would race the write's
    own replication)."""

    def __init__(self, window: float, *, monotonic: Callable[[], float] = time.monotonic):
        self.window = window
        self._monotonic = monotonic
        self._until: OrderedDict[str, float] = OrderedDict()

    def mark(self, client: str) -> None:
        self._until[client] = self._monotonic() + self.window
        self._until.move_to_end(client)
        while len(self._until) > RECENT_WRITERS:
            self._until.popitem(last=False)

    def recent(self, client: str) -> bool:
        until = self._until.get(client)
        if until is None:
            return False
        if until <= self._monotonic():
            del self._until[client]
            return False
        return True


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _api_client(scope: Scope) -> str | None:
    """The hash of the request's bearer key, if it has one (never the key itself)."""
    auth = _header(scope, b"authorization")
    if auth is None or not auth[:7].lower() == b"bearer ":
        return None
    return hashlib.sha256(auth[7:].strip()).hexdigest()


def _cookie_until(scope: Scope) -> float:
    raw = _header(scope, b"cookie")
    if raw is None or WINDOW_COOKIE.encode() not in raw:
        return 0.0
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
        return float(jar[WINDOW_COOKIE].value)
    except (KeyError, ValueError, CookieError):
        return 0.0


def replay_state(src: bytes) -> str:
    """The ``state`` field of a ``fly-replay-src`` header (``instance=…;region=…;t=…;
    state=…``), or ''."""
    for field in src.decode("latin-1").split(";"):
        name, _, value = field.strip().partition("=")
        if name == "state":
            return value
    return ""


class RegionRouting:
    """Replays to the primary region what must run there (see the module's docstring);
    in the primary region it only sets the read-your-writes cookie on answers to
    replayed writes of browsers."""

    def __init__(
        self,
        app: ASGIApp,
        region: Region,
        writers: RecentWriters,
        *,
        secure_cookie: bool = True,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.region = region
        self.writers = writers
        self.secure_cookie = secure_cookie
        self._now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        src = _header(scope, REPLAY_SRC)
        if self.region.is_primary:
            if src is not None and replay_state(src) == "write":
                send = self._with_window_cookie(scope, send)
            await self.app(scope, receive, send)
            return
        if src is not None:  # replayed here once already: never on again
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        client = _api_client(scope)
        if method not in _READS or scope["path"].startswith(PRIMARY_ONLY):
            if await _too_large(scope, receive):
                await _refuse_too_large(scope, receive, send)
                return
            if client is not None:
                self.writers.mark(client)
            await self._replay(scope, receive, send, "write")
            return
        if (client is not None and self.writers.recent(client)) or (
            client is None and _cookie_until(scope) > self._now()
        ):
            await self._replay(scope, receive, send, "threshold")
            return
        await self._read_here(scope, receive, send, keyed=client is not None)

    async def _read_here(self, scope: Scope, receive: Receive, send: Send, *, keyed: bool) -> None:
        """The read, answered from the replicas unless it misses or tries to write."""
        # Answers that may only mean "not replicated here yet": 404, and 401 for a key.
        misses = (404, 401) if keyed else (404,)
        held: list[bool] = []  # [dropped] once the answer's start was seen
        started = False

        async def send_or_drop(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if message["status"] in misses:
                    held.append(True)
                    return
                started = True
                held.append(False)
            elif held and held[0]:
                return
            await send(message)

        try:
            await self.app(scope, receive, send_or_drop)
        except ReplayRequired:
            if started:
                raise
            await self._replay(scope, receive, send, "captured_write")
            return
        if held and held[0]:
            await self._replay(scope, receive, send, "miss")

    async def _replay(self, scope: Scope, receive: Receive, send: Send, state: str) -> None:
        primary = self.region.primary
        error = ApiError(
            503,
            "replayed_to_primary",
            f"This request runs in the primary region ({primary}); the platform's proxy "
            "was asked to replay it there. Retry if it reached you instead.",
            headers={"fly-replay": f"region={primary};state={state}", "Retry-After": "1"},
        )
        await error.response()(scope, receive, send)

    def _with_window_cookie(self, scope: Scope, send: Send) -> Send:
        """fly-ruby's threshold: a browser whose write was replayed here reads from the
        primary until the window ends (API clients send no cookies: see RecentWriters)."""
        if _api_client(scope) is not None or self.writers.window <= 0:
            return send
        until = int(self._now() + self.writers.window) + 1
        cookie = (
            f"{WINDOW_COOKIE}={until}; Max-Age={int(self.writers.window) + 1}; Path=/; "
            f"HttpOnly; SameSite=Lax{'; Secure' if self.secure_cookie else ''}"
        ).encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
            await send(message)

        return send_with_cookie


async def _too_large(scope: Scope, receive: Receive) -> bool:
    """Whether the body is over what Fly replays. The declared length decides; a body
    sent without one (chunked) is read up to the limit, and no further: Fly's proxy
    keeps its own copy for the replay."""
    length = _header(scope, b"content-length")
    if length is not None:
        try:
            return int(length) > MAX_REPLAY_BODY
        except ValueError:
            return False  # malformed: the primary answers it as any bad request
    if _header(scope, b"transfer-encoding") is None:
        return False
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        size += len(message.get("body", b""))
        if size > MAX_REPLAY_BODY:
            return True
        if not message.get("more_body", False):
            return False


async def _refuse_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    error = ApiError(
        413,
        "request_too_large",
        "The request body is larger than 1 MB, the most that can be passed on to the "
        "primary region; nothing was done.",
    )
    await error.response()(scope, receive, send)
