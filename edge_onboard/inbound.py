"""Meta's webhooks to us: messages and statuses of connected numbers become events.

Meta signs each POST with ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the
app secret); a mismatch is 401. Everything else gets a fast 200, even a payload we
cannot use (Meta disables endpoints that keep failing): batches are routed by
``metadata.phone_number_id``, each message or status is recorded once (Meta retries
for days) with its deliveries, and only then queued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
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


def _when(value: Any) -> str | None:
    try:
        return isoformat(datetime.fromtimestamp(int(value), tz=UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class InboundService:
    def __init__(self, storage: Storage, webhooks: WebhookService) -> None:
        self.storage = storage
        self.webhooks = webhooks

    async def handle(self, raw: bytes) -> InboundResult:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("meta webhook: body is not JSON (%d bytes); ignored", len(raw))
            return InboundResult(skipped=1)
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            log.warning("meta webhook: no entry list; ignored")
            return InboundResult(skipped=1)
        emitted = duplicates = skipped = 0
        for entry in payload["entry"]:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            for change in changes if isinstance(changes, list) else []:
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    skipped += 1
                    continue
                if value.get("errors"):
                    log.warning("meta webhook: errors reported: %s", str(value["errors"])[:500])
                metadata = value.get("metadata") or {}
                meta_phone = (
                    _text(metadata.get("phone_number_id")) if isinstance(metadata, dict) else None
                )
                phones = await self.storage.phones_by_meta_id(meta_phone) if meta_phone else []
                if not phones:
                    log.info("meta webhook: no connected phone %s; ignored", meta_phone)
                    skipped += 1
                    continue
                for phone in phones:
                    for kind, event_type, data in self._events(phone, value):
                        event = await self.webhooks.emit(
                            phone.org_id,
                            event_type,
                            data,
                            waba_id=phone.waba_id,
                            event_id=event_id(phone.org_id, kind, data["metaMessageId"]),
                        )
                        if event is None:
                            duplicates += 1
                        else:
                            emitted += 1
        return InboundResult(emitted, duplicates, skipped)

    def _events(self, phone: Phone, value: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        base = {"phoneNumberId": phone.id, "wabaId": phone.waba_id}
        names: dict[str, str | None] = {}
        for contact in value.get("contacts") or []:
            if isinstance(contact, dict):
                profile = contact.get("profile") or {}
                names[str(contact.get("wa_id"))] = (
                    _text(profile.get("name")) if isinstance(profile, dict) else None
                )
        out: list[tuple[str, str, dict[str, Any]]] = []
        for message in value.get("messages") or []:
            if not isinstance(message, dict) or not _text(message.get("id")):
                continue
            kind = _text(message.get("type")) or "unknown"
            sender = _text(message.get("from"))
            data: dict[str, Any] = {
                **base,
                "metaMessageId": message["id"],
                "from": sender,
                "contactName": names.get(str(sender)),
                "type": kind,
                "timestamp": _when(message.get("timestamp")),
                "text": None,
                "media": None,
            }
            content = message.get(kind)
            if kind == "text" and isinstance(content, dict):
                data["text"] = _text(content.get("body"))
            elif isinstance(content, dict) and content.get("id"):
                data["media"] = {
                    "id": _text(content.get("id")),
                    "mimeType": _text(content.get("mime_type")),
                    "caption": _text(content.get("caption")),
                    "filename": _text(content.get("filename")),
                }
            out.append(("received", "message.received", data))
        for status in value.get("statuses") or []:
            if not isinstance(status, dict) or not _text(status.get("id")):
                continue
            event_type = STATUS_EVENTS.get(str(status.get("status")))
            if event_type is None:
                continue
            data = {
                **base,
                "metaMessageId": status["id"],
                "recipientId": _text(status.get("recipient_id")),
                "status": status["status"],
                "timestamp": _when(status.get("timestamp")),
            }
            if event_type == "message.failed":
                data["errors"] = [
                    {
                        "code": e.get("code"),
                        "title": _text(e.get("title")),
                        "message": _text(e.get("message")),
                        "details": _text((e.get("error_data") or {}).get("details"))
                        if isinstance(e.get("error_data"), dict)
                        else None,
                    }
                    for e in status.get("errors") or []
                    if isinstance(e, dict)
                ]
            out.append((str(status["status"]), event_type, data))
        return out
