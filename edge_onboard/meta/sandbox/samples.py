"""What a customer's phone would make Meta send, in Meta's shapes: one message of each
type and one status of each kind, for the test helpers (``POST /v1/test-helpers/…``).
The shapes follow Meta's real webhook bodies (docs: meta-payloads)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from edge_onboard.meta.sandbox._state import SCENARIOS

# Media messages carry a media id; the fake keeps a small file under it, so
# ``GET /v1/phones/{id}/media/{mediaId}`` serves it like a received one.
MEDIA_TYPES: dict[str, str] = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg",
    "voice": "audio/ogg; codecs=opus",
    "document": "application/pdf",
    "sticker": "image/webp",
}
MESSAGE_TYPES: tuple[str, ...] = (
    "text",
    *MEDIA_TYPES,
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "edit",
    "revoke",
    "system",
    "unsupported",
)
STATUSES: tuple[str, ...] = ("sent", "delivered", "read", "played", "failed")
DEFAULT_SENDER = "15550001234"
# Endings a test helper can complete a link with: all but the ones that do not complete
# it from the page (Meta's error, a tab closed before the code).
COMPLETE_SCENARIOS = tuple(s for s in SCENARIOS if s not in {"meta_error", "close_tab"})


def new_message_id() -> str:
    return "wamid.Sandbox" + secrets.token_urlsafe(18)


def _now() -> str:
    return str(int(time.time()))


def _content(kind: str, text: str, media_id: str | None, about: str) -> dict[str, Any]:
    """The type-specific part of a message of ``kind`` (``about``: a message it refers to)."""
    if kind in MEDIA_TYPES:
        media: dict[str, Any] = {"id": media_id, "mime_type": MEDIA_TYPES[kind], "sha256": ""}
        if kind == "voice":
            return {"type": "audio", "audio": {**media, "voice": True}}
        if kind in ("image", "video", "document") and text:
            media["caption"] = text
        if kind == "document":
            media["filename"] = "sandbox.pdf"
        return {"type": kind, kind: media}
    simple: dict[str, dict[str, Any]] = {
        "text": {"text": {"body": text}},
        "location": {"location": {"latitude": 52.52, "longitude": 13.405, "name": text}},
        "contacts": {
            "contacts": [
                {
                    "name": {"first_name": "Sandbox", "formatted_name": "Sandbox Contact"},
                    "phones": [{"phone": "+1 555-000-1111", "wa_id": "15550001111"}],
                }
            ]
        },
        "interactive": {
            "context": {"id": about},
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": "sandbox-button", "title": text[:20] or "Yes"},
            },
        },
        "button": {"context": {"id": about}, "button": {"payload": "sandbox", "text": text}},
        "reaction": {"reaction": {"message_id": about, "emoji": "\N{THUMBS UP SIGN}"}},
        "order": {
            "order": {
                "catalog_id": "100000000000001",
                "text": text,
                "product_items": [
                    {
                        "product_retailer_id": "SANDBOX-1",
                        "quantity": 1,
                        "item_price": 10,
                        "currency": "USD",
                    }
                ],
            }
        },
        "edit": {
            "edit": {
                "original_message_id": about,
                "message": {"type": "text", "text": {"body": text}},
            }
        },
        "revoke": {"revoke": {"original_message_id": about}},
        "system": {
            "system": {
                "body": "User changed their phone number",
                "wa_id": "15550009999",
                "type": "user_changed_number",
            }
        },
        "unsupported": {
            "errors": [
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
            "unsupported": {"type": "poll"},
        },
    }
    return {"type": kind, **simple[kind]}


def message_value(
    kind: str,
    *,
    sender: str = DEFAULT_SENDER,
    text: str = "Hello from the sandbox",
    media_id: str | None = None,
    about: str | None = None,
    name: str = "Sandbox Customer",
) -> tuple[str, dict[str, Any]]:
    """The ``messages`` change value of a customer's message of ``kind`` (one of
    MESSAGE_TYPES), and the new message's id."""
    message_id = new_message_id()
    message = {
        "from": sender,
        "id": message_id,
        "timestamp": _now(),
        **_content(kind, text, media_id, about or new_message_id()),
    }
    contacts = [{"profile": {"name": name}, "wa_id": sender}]
    return message_id, {"contacts": contacts, "messages": [message]}


def status_value(status: str, message_id: str, recipient: str = DEFAULT_SENDER) -> dict[str, Any]:
    """The ``messages`` change value of Meta's status for an outgoing message."""
    found: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": _now(),
        "recipient_id": recipient,
    }
    if status == "failed":
        found["errors"] = [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Sandbox: the recipient could not be reached."},
            }
        ]
    return {"statuses": [found]}
