"""The events API: what was sent (``GET /v1/events``, ``GET /v1/events/{id}``), kept
``EDGE_EVENT_RETENTION_DAYS``, and recovering an endpoint's failed deliveries
(``POST /v1/outgoing-webhooks/{id}/recover``).

Events are the delivery outbox itself (storage ``Event``): nothing is copied. The body
served is built by ``delivery.event_body``, the function that builds what a delivery
POSTs, from the same stored record, so the API and the webhook carry the same bytes.

A recovery re-sends the endpoint's failed deliveries created in ``[since, until)``. The
request only checks and answers 202; the deliveries are read and put back on the queue
afterwards, in batches. Each is taken by a conditional update (still failed, and failed
no later than the request), so two recoveries racing send each event once, and a failure
of the re-send itself waits for the next recovery asked for after it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from edge_onboard.core import validation
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.errors import ApiError, invalid, not_found
from edge_onboard.storage import (
    Event,
    EventFilter,
    OutgoingWebhook,
    Storage,
    WebhookStatus,
    utc_ms,
)
from edge_onboard.storage.paging import Key, Page, Window
from edge_onboard.webhooks.catalog import EVENT_TYPES, did_you_mean
from edge_onboard.webhooks.delivery import DeliveryEngine, event_body

log = logging.getLogger("edge_onboard.webhooks.catalog")

EVENT_ID_RE = re.compile(r"^evt_[0-9a-f]{32}$")
FILTERS = ("type", "created[gte]", "created[lte]")
RECOVER_FIELDS = frozenset({"since", "until"})
MAX_TYPE_LENGTH = 1000
# The retention sweep: events per storage call, and calls per reconciliation pass.
SWEEP_BATCH = 500
SWEEP_BATCHES = 20
# Failed deliveries a recovery reads and re-queues per round.
RECOVER_BATCH = 200
# RFC 3339 (ISO 8601 with seconds and a zone): what every timestamp the API writes is.
# The OpenAPI schemas (openapi/events.py) state these same patterns.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"
TYPE_PATTERN = r"^[a-z_.*]+(,[a-z_.*]+)*$"
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_TYPE_RE = re.compile(TYPE_PATTERN)


def parse_timestamp(value: Any, param: str) -> datetime:
    """An ISO 8601 timestamp with its zone (``2026-11-30T12:00:00.000Z``), to the
    millisecond in UTC: the precision of every stored time, so each backend compares alike."""
    if isinstance(value, str) and _TIMESTAMP_RE.fullmatch(value):
        try:
            return utc_ms(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
        except ValueError:
            pass  # shaped like one, but not a real date: the same 400 below
    raise invalid(
        f"'{param}' must be an ISO 8601 timestamp with a time zone, e.g. 2026-11-30T12:00:00.000Z.",
        param=param,
    )


def expand_types(value: str) -> frozenset[str] | None:
    """``type``: comma-separated event types, each may hold ``*`` (any characters), as
    ``message.*`` or ``*.failed``. Expanded here against the catalog (GET /v1/event-types)
    into exact types, so storage reads one index range per type (an index on type then
    time) and merges them in time order; a prefix range over ``type`` would have to sort
    every matching event by time instead. None when every type matches (no filter)."""
    if len(value) > MAX_TYPE_LENGTH or not _TYPE_RE.fullmatch(value):
        raise invalid(
            f"'type' must be event types or patterns (a-z, _, ., *), comma-separated, at most "
            f"{MAX_TYPE_LENGTH} characters.",
            param="type",
        )
    matched: set[str] = set()
    for pattern in value.split(","):
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        found = {kind for kind in EVENT_TYPES if regex.fullmatch(kind)}
        if not pattern or not found:
            hint = did_you_mean(pattern) if "*" not in pattern else ""
            raise invalid(
                f"'type' {pattern[:100]!r} matches no event type.{hint} See GET "
                "/v1/event-types (use * as a wildcard, e.g. message.*).",
                param="type",
            )
        matched |= found
    return None if matched == set(EVENT_TYPES) else frozenset(matched)


def parse_filter(query: Mapping[str, str], *, livemode: bool) -> EventFilter:
    types = expand_types(query["type"]) if "type" in query else None
    gte = (
        parse_timestamp(query["created[gte]"], "created[gte]") if "created[gte]" in query else None
    )
    lte = (
        parse_timestamp(query["created[lte]"], "created[lte]") if "created[lte]" in query else None
    )
    if gte is not None and lte is not None and gte > lte:
        raise invalid("'created[gte]' must not be after 'created[lte]'.", param="created[gte]")
    return EventFilter(livemode=livemode, types=types, created_gte=gte, created_lte=lte)


class EventLog:
    def __init__(
        self, storage: Storage, clock: Clock, engine: DeliveryEngine, retention: timedelta
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.engine = engine
        self.retention = retention

    def horizon(self) -> datetime:
        """The oldest moment an event is still kept at (older ones are gone, swept or not)."""
        return self.clock() - self.retention

    async def list(self, org_id: str, flt: EventFilter, window: Window) -> Page[Event]:
        horizon = self.horizon()
        if flt.created_gte is None or flt.created_gte < horizon:
            flt = dataclasses.replace(flt, created_gte=horizon)
        return await self.storage.list_events(org_id, flt, window)

    async def _visible(self, org_id: str, livemode: bool, event_id: str) -> Event | None:
        event = await self.storage.get_event(event_id) if EVENT_ID_RE.match(event_id) else None
        if (
            event is None
            or event.org_id != org_id
            or event.livemode != livemode
            or event.created_at < self.horizon()
        ):
            return None
        return event

    async def get(self, org_id: str, livemode: bool, event_id: str) -> Event:
        event = await self._visible(org_id, livemode, event_id)
        if event is None:
            raise not_found("event", event_id[:100], param="id")
        return event

    async def locate(self, org_id: str, livemode: bool, event_id: str) -> Key | None:
        event = await self._visible(org_id, livemode, event_id)
        return (event.created_at, event.id) if event is not None else None

    view = staticmethod(event_body)

    # Recovery

    def start_recovery(
        self, webhook: OutgoingWebhook, body: dict[str, Any]
    ) -> tuple[dict[str, Any], Callable[[], Awaitable[int]]]:
        """Check a recover request: its 202 body, and the job that re-sends (run after
        the answer)."""
        validation.reject_unknown(body, RECOVER_FIELDS)
        if body.get("since") is None:
            raise invalid("Missing required param: since.", param="since", code="parameter_missing")
        now = self.clock()
        since = parse_timestamp(body["since"], "since")
        until = now if body.get("until") is None else parse_timestamp(body["until"], "until")
        if since >= until:
            raise invalid("'since' must be before 'until' (default: now).", param="since")
        if since < now - self.retention:
            days = self.retention // timedelta(days=1)
            raise invalid(
                f"'since' may go back at most {days} days: older events are not kept.",
                param="since",
            )
        if webhook.status is not WebhookStatus.ACTIVE:
            raise ApiError(
                409,
                "webhook_disabled",
                "The endpoint is disabled; enable it (PATCH status=active) first.",
            )
        recovery_id = "rcv_" + uuid.uuid4().hex
        view = {
            "id": recovery_id,
            "webhookId": webhook.id,
            "since": isoformat(since),
            "until": isoformat(until),
            "status": "started",
            "createdAt": isoformat(now),
        }

        async def job() -> int:
            try:
                return await self.recover(webhook.id, since, until, now, recovery_id)
            except Exception:  # nobody awaits a background job: say why it stopped
                log.exception("recovery %s of webhook %s stopped", recovery_id, webhook.id)
                return 0

        return view, job

    async def recover(
        self, webhook_id: str, since: datetime, until: datetime, asked_at: datetime, ident: str
    ) -> int:
        """Re-queue the webhook's failed deliveries created in ``[since, until)`` that had
        failed by ``asked_at``, oldest first; how many this recovery took."""
        after: Key | None = None
        taken = 0
        while True:
            batch = await self.storage.failed_deliveries(
                webhook_id, since, until, after, RECOVER_BATCH
            )
            if not batch:
                break
            after = (batch[-1].created_at, batch[-1].id)
            requeued = await self.storage.requeue_failed(
                [d.id for d in batch], asked_at, ident, self.clock()
            )
            taken += len(requeued)
            await self.engine.dispatch(requeued)
            if len(batch) < RECOVER_BATCH:
                break
        log.info("recovery %s of webhook %s re-sends %d deliveries", ident, webhook_id, taken)
        return taken


async def sweep_events(storage: Storage, before: datetime) -> int:
    """Remove events created before ``before`` (and their deliveries), at most
    ``SWEEP_BATCH`` times ``SWEEP_BATCHES`` per call: a backlog shrinks pass by pass."""
    deleted = 0
    for _ in range(SWEEP_BATCHES):
        count = await storage.delete_events_before(before, SWEEP_BATCH)
        deleted += count
        if count < SWEEP_BATCH:
            break
    return deleted
