"""Meta's webhooks to us: messages, echoes, statuses and errors of connected numbers
become events.

Meta signs each POST with ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the
app secret); a mismatch is 401. Everything else gets a fast 200, even a payload we
cannot use (Meta disables endpoints that keep failing). A verified body is recorded
in the inbox (one write) and acknowledged; the process that received it processes it
after the 200, and deletes it. One left behind (that process died, or storage failed
it) is taken by the sweeper of any process once its lease lapses. Processing: batches
are routed by
``metadata.phone_number_id``, each message or status is recorded once (Meta retries
for days) with its deliveries, and only then queued. What each Meta object becomes is
edge_onboard/meta/message_model.py.

Parsing is total: every field is type-checked where it is read, so a signed body of any
JSON shape yields the events it holds and nothing else. What cannot be used is skipped
and named in one warning per request (path and type only: values may carry message text
or phone numbers).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import orjson

from edge_onboard.meta import message_model as model
from edge_onboard.meta.message_model import Found
from edge_onboard.meta.readers import MISSING, Node, Unusable, at, obj, objects, string
from edge_onboard.storage import InboxItem, Phone, Storage
from edge_onboard.webhooks.endpoints import WebhookService

log = logging.getLogger("edge_onboard.meta.inbound")

_EVENT_NAMESPACE = uuid.UUID("0b5e2c8e-4a0c-4f57-9a3d-7f1f0c9b6e21")
# How long the process that recorded a body has to process it before a sweeper may;
# one processing for longer is joined by a sweeper, harmlessly (each message is
# recorded once whoever gets there first).
INBOX_LEASE = timedelta(seconds=15)
SWEEP_EVERY = 2.0  # seconds between a process's looks for items left behind
SWEEP_BATCH = 20


def signature_ok(app_secret: str, raw: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :].strip().lower())


def sign_body(app_secret: str, raw: bytes) -> str:
    """The ``X-Hub-Signature-256`` Meta would send (for the sandbox and tests)."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def event_id(org_id: str, kind: str, meta_message_id: str) -> str:
    """One id per organisation, kind and Meta message: Meta's retries map onto it."""
    return "evt_" + uuid.uuid5(_EVENT_NAMESPACE, f"{org_id}:{kind}:{meta_message_id}").hex


@dataclass(frozen=True, slots=True)
class InboundResult:
    emitted: int = 0
    duplicates: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One ``entry[].changes[].value``: the number it is for and its events, which still
    lack the connected phone's fields (one Meta number can be connected more than once)."""

    meta_phone_id: str | None
    events: list[Found]


@dataclass(frozen=True, slots=True)
class Parsed:
    changes: list[Change] = field(default_factory=list)
    skipped: int = 0


def parse(raw: bytes) -> Parsed:
    """The changes in a (signed) body. Total: any bytes give a result, never an error."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("meta webhook: body is not JSON (%d bytes); ignored", len(raw))
        return Parsed(skipped=1)
    bad = Unusable()
    try:
        return _payload(bad, payload)
    finally:
        bad.report()


def _payload(bad: Unusable, payload: object) -> Parsed:
    if not isinstance(payload, dict):
        bad.add("body", payload, "an object")
        return Parsed(skipped=1)
    entries = payload.get("entry", MISSING)
    if not isinstance(entries, list):
        bad.add("entry", entries, "a list")
        return Parsed(skipped=1)
    changes: list[Change] = []
    skipped = 0
    for entry_path, entry in objects(bad, payload, "entry", ""):
        for change_path, change in objects(bad, entry, "changes", entry_path):
            value = obj(bad, change, "value", change_path, required=True)
            if value is None:
                skipped += 1
                continue
            changes.append(_change(bad, value, f"{change_path}.value"))
    return Parsed(changes, skipped)


def _change(bad: Unusable, value: Node, path: str) -> Change:
    metadata = obj(bad, value, "metadata", path)
    meta_phone = (
        string(bad, metadata, "phone_number_id", at(path, "metadata"))
        if metadata is not None
        else None
    )
    events = _value_events(bad, value, path)
    reported = [f.data for f in events if f.event_type == "phone_number.error"]
    if reported:
        # Code and title only: Meta's message and details can quote the conversation.
        summary = "; ".join(f"{e['code']} {e['title'] or ''}".rstrip() for e in reported)
        log.warning("meta webhook: errors reported: %s", summary[:500])
    return Change(meta_phone, events)


def _value_events(bad: Unusable, value: Node, path: str) -> list[Found]:
    found: list[Found | None] = []
    known = model.senders(bad, value, path)
    for message_path, message in objects(bad, value, "messages", path):
        found.append(model.message(bad, message, message_path, known))
    # What the business sent from the WhatsApp Business app (field smb_message_echoes).
    for echo_path, echo in objects(bad, value, "message_echoes", path):
        found.append(model.echo(bad, echo, echo_path, known))
    for status_path, status in objects(bad, value, "statuses", path):
        found.append(model.status(bad, status, status_path))
    return [f for f in found if f is not None] + model.errors(bad, value, path)


class InboundService:
    def __init__(
        self, storage: Storage, webhooks: WebhookService, *, lease: timedelta = INBOX_LEASE
    ) -> None:
        self.storage = storage
        self.webhooks = webhooks
        self.lease = lease

    async def accept(self, raw: bytes, *, livemode: bool | None = None) -> InboxItem | None:
        """Record a verified body (one write), to be acknowledged and then ``process``ed:
        the item, or None when the same body is recorded already and not yet processed
        (Meta's retry: its first copy will be processed). Raises ``StorageError``."""
        now = self.webhooks.clock()
        digest = hashlib.sha256(b"%s:" % str(livemode).encode() + raw).hexdigest()
        item = InboxItem(digest, raw, livemode, now, now + self.lease)
        return item if await self.storage.put_inbox(item) else None

    async def process(self, item: InboxItem) -> InboundResult | None:
        """Record what the item holds, then remove it from the inbox; None (logged, and
        the item left for the sweeper) when that failed."""
        try:
            result = await self.handle(item.body, livemode=item.livemode)
            await self.storage.delete_inbox(item.id)
        except Exception as exc:
            log.warning("meta webhook: processing failed (%s); the sweeper retries it", exc)
            return None
        return result

    async def sweep(self) -> int:
        """Process the items whose lease lapsed (left by a process that died, or failed);
        how many were taken."""
        now = self.webhooks.clock()
        items = await self.storage.claim_inbox(now, now + self.lease, SWEEP_BATCH)
        for item in items:
            result = await self.process(item)
            if result is not None:
                log.info(
                    "meta webhook: recovered a body received %s: %d events, %d duplicates",
                    item.received_at.isoformat(),
                    result.emitted,
                    result.duplicates,
                )
        return len(items)

    async def sweep_forever(self, every: float = SWEEP_EVERY) -> None:
        """``sweep`` every ``every`` seconds (at once again while it finds a full batch)."""
        while True:
            try:
                if await self.sweep() >= SWEEP_BATCH:
                    continue
            except Exception as exc:  # storage down: the next round tries again
                log.warning("meta webhook: inbox sweep failed (%s)", exc)
            await anyio.sleep(every)

    async def handle(self, raw: bytes, *, livemode: bool | None = None) -> InboundResult:
        """Record what Meta delivered for the phones it names (of ``livemode`` only, when
        set: a webhook the fake Meta signed never reaches a live phone)."""
        parsed = parse(raw)
        emitted = duplicates = 0
        skipped = parsed.skipped
        for change in parsed.changes:
            meta_phone = change.meta_phone_id
            phones = await self.storage.phones_by_meta_id(meta_phone) if meta_phone else []
            phones = [p for p in phones if livemode is None or p.livemode == livemode]
            if not phones:
                log.info("meta webhook: no connected phone %s; ignored", meta_phone)
                skipped += 1
                continue
            for phone in phones:
                base = {"phoneNumberId": phone.id, "wabaId": phone.waba_id}
                for kind, event_type, meta_id, fields in change.events:
                    event = await self.webhooks.emit(
                        phone.org_id,
                        event_type,
                        {**base, **fields},
                        waba_id=phone.waba_id,
                        event_id=event_id(phone.org_id, kind, meta_id),
                        livemode=phone.livemode,
                    )
                    if event is None:
                        duplicates += 1
                    else:
                        emitted += 1
        return InboundResult(emitted, duplicates, skipped)

    def _events(self, phone: Phone, value: dict[str, Any]) -> list[Found]:
        """One change's events for ``phone``: the parsing stage alone, as bench/inbound.py
        times it. Shape problems are dropped here; ``parse`` is what reports them."""
        base = {"phoneNumberId": phone.id, "wabaId": phone.waba_id}
        return [
            found._replace(data={**base, **found.data})
            for found in _value_events(Unusable(), value, "value")
        ]
