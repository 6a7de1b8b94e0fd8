"""Meta's webhooks to us: messages and statuses of connected numbers become events.

Meta signs each POST with ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the
app secret); a mismatch is 401. Everything else gets a fast 200, even a payload we
cannot use (Meta disables endpoints that keep failing): batches are routed by
``metadata.phone_number_id``, each message or status is recorded once (Meta retries
for days) with its deliveries, and only then queued.

Parsing is total: every field is type-checked where it is read, so a signed body of any
JSON shape yields the events it holds and nothing else. What cannot be used is skipped
and named in one warning per request (path and type only: values may carry message text
or phone numbers).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from edge_onboard.clock import isoformat
from edge_onboard.storage import Phone, Storage
from edge_onboard.webhooks import WebhookService

log = logging.getLogger("edge_onboard.inbound")

STATUS_EVENTS = {
    "sent": "message.sent",
    "delivered": "message.delivered",
    "read": "message.read",
    "failed": "message.failed",
}
_EVENT_NAMESPACE = uuid.UUID("0b5e2c8e-4a0c-4f57-9a3d-7f1f0c9b6e21")
# BSON (MongoDB) holds signed 64-bit integers only, and JSON from Meta can carry larger.
_INT64 = 2**63
# A message type names its content field; one outside this shape is not echoed into logs.
_PLAIN_NAME = re.compile(r"[a-z_]{1,32}")
Events = list[tuple[str, str, dict[str, Any]]]


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
    events: Events


@dataclass(frozen=True, slots=True)
class Parsed:
    changes: list[Change] = field(default_factory=list)
    skipped: int = 0


class _Missing:
    """Marks an absent key, which is not the same as a JSON null in a log line."""


_MISSING = _Missing()


def _type_name(found: object) -> str:
    if isinstance(found, _Missing):
        return "missing"
    if found is None:
        return "null"
    if isinstance(found, dict):
        return "object"
    return type(found).__name__


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Unusable:
    """The unusable fields of one request. Only the first is named, and only by path and
    type, so a batch of bad items costs one log line and the line leaks no values."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.first: str | None = None
        self.count = 0

    def add(self, path: str, found: object, expected: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{path} is {_type_name(found)}, expected {expected}"

    def report(self) -> None:
        if self.first is not None:
            more = f" (and {self.count - 1} more)" if self.count > 1 else ""
            log.warning("inbound: %s; skipped%s", self.first, more)


# The readers below return a usable value or None. Absent keys and JSON nulls are what
# Meta sends for "nothing here", so only a present value of the wrong type is reported,
# unless the field is required.


def _str(
    bad: _Unusable, node: dict[str, Any], key: str, path: str, *, required: bool = False
) -> str | None:
    found = node.get(key, _MISSING)
    if isinstance(found, str) and (found or not required):
        return found
    if required or not (found is None or found is _MISSING):
        bad.add(_at(path, key), found, "a non-empty str" if required else "a str")
    return None


def _int(bad: _Unusable, node: dict[str, Any], key: str, path: str) -> int | None:
    found = node.get(key, _MISSING)
    if isinstance(found, int) and not isinstance(found, bool) and -_INT64 <= found < _INT64:
        return found
    if not (found is None or found is _MISSING):
        bad.add(_at(path, key), found, "a 64-bit int")
    return None


def _object(
    bad: _Unusable, node: dict[str, Any], key: str, path: str, *, required: bool = False
) -> dict[str, Any] | None:
    found = node.get(key, _MISSING)
    if isinstance(found, dict):
        return found
    if required or not (found is None or found is _MISSING):
        bad.add(_at(path, key), found, "an object")
    return None


def _objects(
    bad: _Unusable, node: dict[str, Any], key: str, path: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects in the list at ``node[key]`` with their paths; other items are skipped."""
    found = node.get(key, _MISSING)
    if not isinstance(found, list):
        if not (found is None or found is _MISSING):
            bad.add(_at(path, key), found, "a list")
        return
    for index, item in enumerate(found):
        item_path = f"{_at(path, key)}[{index}]"
        if isinstance(item, dict):
            yield item_path, item
        else:
            bad.add(item_path, item, "an object")


def _when(bad: _Unusable, node: dict[str, Any], key: str, path: str) -> str | None:
    """Meta's Unix time (a string of digits) as ISO 8601."""
    found = node.get(key, _MISSING)
    if found is None or found is _MISSING:
        return None
    if isinstance(found, str | int | float) and not isinstance(found, bool):
        try:
            return isoformat(datetime.fromtimestamp(int(found), tz=UTC))
        except (ValueError, OverflowError, OSError):
            pass  # not a time, or one a datetime cannot hold: reported below
    bad.add(_at(path, key), found, "a Unix time")
    return None


def parse(raw: bytes) -> Parsed:
    """The changes in a (signed) body. Total: any bytes give a result, never an error."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("meta webhook: body is not JSON (%d bytes); ignored", len(raw))
        return Parsed(skipped=1)
    bad = _Unusable()
    try:
        return _payload(bad, payload)
    finally:
        bad.report()


def _payload(bad: _Unusable, payload: object) -> Parsed:
    if not isinstance(payload, dict):
        bad.add("body", payload, "an object")
        return Parsed(skipped=1)
    entries = payload.get("entry", _MISSING)
    if not isinstance(entries, list):
        bad.add("entry", entries, "a list")
        return Parsed(skipped=1)
    changes: list[Change] = []
    skipped = 0
    for entry_path, entry in _objects(bad, payload, "entry", ""):
        for change_path, change in _objects(bad, entry, "changes", entry_path):
            value = _object(bad, change, "value", change_path, required=True)
            if value is None:
                skipped += 1
                continue
            changes.append(_change(bad, value, f"{change_path}.value"))
    return Parsed(changes, skipped)


def _change(bad: _Unusable, value: dict[str, Any], path: str) -> Change:
    reported = [
        (_int(bad, error, "code", error_path), _str(bad, error, "title", error_path))
        for error_path, error in _objects(bad, value, "errors", path)
    ]
    if reported:
        # Code and title only: Meta's message and details can quote the conversation.
        summary = "; ".join(f"{code} {title or ''}".rstrip() for code, title in reported)
        log.warning("meta webhook: errors reported: %s", summary[:500])
    metadata = _object(bad, value, "metadata", path)
    meta_phone = (
        _str(bad, metadata, "phone_number_id", f"{path}.metadata") if metadata is not None else None
    )
    return Change(meta_phone, _value_events(bad, value, path))


def _value_events(bad: _Unusable, value: dict[str, Any], path: str) -> Events:
    names: dict[str, str | None] = {}
    for contact_path, contact in _objects(bad, value, "contacts", path):
        wa_id = _str(bad, contact, "wa_id", contact_path, required=True)
        profile = _object(bad, contact, "profile", contact_path)
        name = (
            _str(bad, profile, "name", f"{contact_path}.profile") if profile is not None else None
        )
        if wa_id is not None:
            names[wa_id] = name
    out: Events = []
    for message_path, message in _objects(bad, value, "messages", path):
        message_id = _str(bad, message, "id", message_path, required=True)
        if message_id is None:
            continue
        kind = _str(bad, message, "type", message_path) or "unknown"
        sender = _str(bad, message, "from", message_path)
        data: dict[str, Any] = {
            "metaMessageId": message_id,
            "from": sender,
            "contactName": names.get(sender) if sender is not None else None,
            "type": kind,
            "timestamp": _when(bad, message, "timestamp", message_path),
            "text": None,
            "media": None,
        }
        if kind == "text":
            text = _object(bad, message, "text", message_path)
            if text is not None:
                data["text"] = _str(bad, text, "body", f"{message_path}.text")
        else:
            # Any other type's content is media when it has an id; the rest (location,
            # reaction, contacts, …) is not read, so its shape is not ours to judge.
            content = message.get(kind)
            if isinstance(content, dict) and content.get("id"):
                content_path = f"{message_path}.{kind if _PLAIN_NAME.fullmatch(kind) else '<type>'}"
                media_id = _str(bad, content, "id", content_path, required=True)
                if media_id is not None:
                    data["media"] = {
                        "id": media_id,
                        "mimeType": _str(bad, content, "mime_type", content_path),
                        "caption": _str(bad, content, "caption", content_path),
                        "filename": _str(bad, content, "filename", content_path),
                    }
        out.append(("received", "message.received", data))
    for status_path, status in _objects(bad, value, "statuses", path):
        status_id = _str(bad, status, "id", status_path, required=True)
        state = _str(bad, status, "status", status_path, required=True)
        if status_id is None or state is None:
            continue
        event_type = STATUS_EVENTS.get(state)
        if event_type is None:
            continue  # a status we do not report (Meta has added some over time)
        data = {
            "metaMessageId": status_id,
            "recipientId": _str(bad, status, "recipient_id", status_path),
            "status": state,
            "timestamp": _when(bad, status, "timestamp", status_path),
        }
        if event_type == "message.failed":
            errors = []
            for error_path, error in _objects(bad, status, "errors", status_path):
                error_data = _object(bad, error, "error_data", error_path)
                errors.append(
                    {
                        "code": _int(bad, error, "code", error_path),
                        "title": _str(bad, error, "title", error_path),
                        "message": _str(bad, error, "message", error_path),
                        "details": _str(bad, error_data, "details", f"{error_path}.error_data")
                        if error_data is not None
                        else None,
                    }
                )
            data["errors"] = errors
        out.append((state, event_type, data))
    return out


class InboundService:
    def __init__(self, storage: Storage, webhooks: WebhookService) -> None:
        self.storage = storage
        self.webhooks = webhooks

    async def handle(self, raw: bytes) -> InboundResult:
        parsed = parse(raw)
        emitted = duplicates = 0
        skipped = parsed.skipped
        for change in parsed.changes:
            meta_phone = change.meta_phone_id
            phones = await self.storage.phones_by_meta_id(meta_phone) if meta_phone else []
            if not phones:
                log.info("meta webhook: no connected phone %s; ignored", meta_phone)
                skipped += 1
                continue
            for phone in phones:
                base = {"phoneNumberId": phone.id, "wabaId": phone.waba_id}
                for kind, event_type, fields in change.events:
                    event = await self.webhooks.emit(
                        phone.org_id,
                        event_type,
                        {**base, **fields},
                        waba_id=phone.waba_id,
                        event_id=event_id(phone.org_id, kind, fields["metaMessageId"]),
                    )
                    if event is None:
                        duplicates += 1
                    else:
                        emitted += 1
        return InboundResult(emitted, duplicates, skipped)

    def _events(self, phone: Phone, value: dict[str, Any]) -> Events:
        """One change's events for ``phone``: the parsing stage alone, as bench/inbound.py
        times it. Shape problems are dropped here; ``parse`` is what reports them."""
        base = {"phoneNumberId": phone.id, "wabaId": phone.waba_id}
        return [
            (kind, event_type, {**base, **fields})
            for kind, event_type, fields in _value_events(_Unusable(), value, "value")
        ]
