"""``edge-onboard listen --forward-to URL``: a deployment's events, forwarded to a local
URL signed like the service's own webhooks, with no tunnel: it reads ``GET /v1/events``
with the key it is given, so it works with any deployment the key belongs to.

Each event is POSTed with the service's Standard Webhooks signer
(``edge_onboard.webhooks.delivery``) and a ``whsec_`` secret printed at start (kept in the
state file, so a restart keeps it). A failed local POST (no answer, or not 2xx) is
reported and retried, with backoff, until it succeeds: events go in order and none is
skipped.

The cursor, in the state file, is what was forwarded: the newest event time and the ids
at or near it. Each poll reads the events from ``OVERLAP`` before that time on, so an
event stored a moment late (another process, another region) is still seen, and the ids
already forwarded are not sent twice. The file is rewritten (atomically) after each
event, so a ``listen`` killed and started again resumes where it stopped: at most the
one event in flight at the kill is sent again, never one lost.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from edge_onboard.commands.remote import Remote, RemoteError, unknown
from edge_onboard.webhooks.delivery import signature_header

OVERLAP = timedelta(seconds=10)
PAGE = 100
MAX_BACKOFF = 30.0


def default_state_path(api_url: str, key: str) -> Path:
    """Per deployment and key, in the user's cache folder (no secret in the name)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(f"{api_url}\n{key}".encode()).hexdigest()[:16]
    return base / "edge-onboard" / f"listen-{tag}.json"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@dataclass
class Cursor:
    """What was forwarded: the newest event time, and the ids within OVERLAP of it."""

    secret: str
    since: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # id -> its timestamp

    @classmethod
    def load(cls, path: Path) -> Cursor:
        if not path.exists():
            return cls("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
        state = orjson.loads(path.read_bytes())
        return cls(state["secret"], state.get("since"), dict(state.get("seen") or {}))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        state = {"secret": self.secret, "since": self.since, "seen": self.seen}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the secret
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(state))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def forwarded(self, event: dict[str, Any]) -> None:
        stamp = event["timestamp"]
        self.seen[event["id"]] = stamp
        if self.since is None or stamp > self.since:
            self.since = stamp
        horizon = _iso(_parse(self.since) - OVERLAP)
        self.seen = {i: t for i, t in self.seen.items() if t >= horizon}


class Listener:
    """One ``listen``: poll, forward in order, persist after each event."""

    def __init__(
        self,
        remote: Remote,
        forward_to: str,
        state_path: Path,
        *,
        types: str | None = None,
        interval: float = 1.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.remote = remote
        self.forward_to = forward_to
        self.state_path = state_path
        self.types = types
        self.interval = interval
        self.say = say
        self.cursor = Cursor.load(state_path)
        self.local = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def check_types(self) -> None:
        """Each ``--events`` type (``*`` allowed) names known types; else a clear error."""
        if not self.types:
            return
        known = self.remote.event_types()
        for name in self.types.split(","):
            pattern = name.replace(".", r"\.").replace("*", ".*")
            if not any(re.fullmatch(pattern, k) for k in known):
                raise RemoteError(unknown(name, known))

    def start(self) -> None:
        """A first run starts from now: what exists already is marked, not sent."""
        self.check_types()
        if self.cursor.since is None:
            date = self.remote.call("GET", "/v1/event-types").headers.get("date")
            now = email.utils.parsedate_to_datetime(date) if date else datetime.now(UTC)
            self.cursor.since = _iso(now)
            for event in self.fetch():
                self.cursor.forwarded(event)
            self.cursor.save(self.state_path)
        mode = "live" if self.remote.livemode else "test"
        self.say(
            f"Ready. Forwarding {mode}-mode events{' ' + self.types if self.types else ''} of "
            f"{self.remote.api_url} to {self.forward_to} (Ctrl+C to quit)."
        )
        self.say(f"Your webhook signing secret is {self.cursor.secret}")

    def fetch(self) -> list[dict[str, Any]]:
        """The events from OVERLAP before the cursor on, oldest first."""
        assert self.cursor.since is not None
        params = {
            "limit": str(PAGE),
            "created[gte]": _iso(_parse(self.cursor.since) - OVERLAP),
        }
        if self.types:
            params["type"] = self.types
        found: list[dict[str, Any]] = []
        while True:
            page = self.remote.call("GET", "/v1/events", params=params).json()
            found.extend(page["data"])
            if not page["pagination"]["hasMore"] or not page["data"]:
                break
            params["startingAfter"] = page["pagination"]["startingAfter"]
        found.sort(key=lambda e: (e["timestamp"], e["id"]))
        return found

    def poll_once(self) -> int:
        """Forward what is new; how many were forwarded."""
        sent = 0
        for event in self.fetch():
            if event["id"] in self.cursor.seen:
                continue
            self.forward(event)
            self.cursor.forwarded(event)
            self.cursor.save(self.state_path)
            sent += 1
        return sent

    def forward(self, event: dict[str, Any]) -> None:
        """POST one event, signed, until the local URL takes it (2xx)."""
        body = orjson.dumps(event)
        delay = 1.0
        attempt = 1
        while True:
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": event["id"],
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(
                    [self.cursor.secret], event["id"], timestamp, body
                ),
                "user-agent": "edge-onboard-listen",
            }
            try:
                response = self.local.post(self.forward_to, content=body, headers=headers)
                outcome, ok = str(response.status_code), response.is_success
            except httpx.HTTPError as exc:
                outcome, ok = f"failed ({type(exc).__name__})", False
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            self.say(f"{stamp}  {event['event']:<28} {event['id']}  -> {outcome}")
            if ok:
                return
            self.say(f"          not delivered (attempt {attempt}); retrying in {delay:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
            attempt += 1

    def run(self, *, until: Callable[[], bool] = lambda: False) -> None:
        """Poll and forward until ``until()`` (or Ctrl+C); the deployment unreachable
        is reported and waited out."""
        self.start()
        down = False
        while not until():
            try:
                self.poll_once()
                if down:
                    self.say(f"{self.remote.api_url} answers again")
                    down = False
            except RemoteError as exc:
                if not down:
                    self.say(f"warning: {exc}; retrying")
                    down = True
            time.sleep(self.interval)

    def close(self) -> None:
        self.local.close()
