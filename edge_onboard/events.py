"""The catalog of event types a webhook can subscribe to."""

from __future__ import annotations

from typing import Any

from edge_onboard.errors import invalid

EVENT_TYPES: dict[str, str] = {
    "phone_number.connected": "An end-user completed signup; the phone number is connected.",
    "message.received": "A WhatsApp message arrived at a connected phone number.",
    "message.sent": "Meta accepted an outgoing message for delivery.",
    "message.delivered": "An outgoing message reached the recipient's device.",
    "message.read": "The recipient read an outgoing message.",
    "message.failed": "An outgoing message could not be delivered; Meta's error is included.",
}


def parse_event_types(value: Any, param: str) -> list[str]:
    """A non-empty list of distinct known event types, as given (order kept)."""
    if not isinstance(value, list) or not value:
        raise invalid(f"'{param}' must be a non-empty list of event types.", param=param)
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in EVENT_TYPES:
            raise invalid(f"Unknown event type {item!r}; see GET /v1/event-types.", param=param)
        if item in seen:
            raise invalid(f"Event type {item!r} is listed twice.", param=param)
        seen.append(item)
    return seen
