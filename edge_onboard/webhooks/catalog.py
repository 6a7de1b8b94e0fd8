"""The catalog of event types a webhook can subscribe to."""

from __future__ import annotations

import difflib
from typing import Any

from edge_onboard.core.errors import invalid

EVENT_TYPES: dict[str, str] = {
    "phone_number.connected": "An end-user completed signup; the phone number is connected.",
    "phone_number.updated": "A phone's status or registration changed (verified, registered, "
    "registration failed); carries the phone and its previous status.",
    "waba.connected": "A signup connected a WhatsApp Business Account, with or without a number.",
    "waba.updated": "Meta restricted, flagged, disabled or deleted a connected account; "
    "carries Meta's event and detail.",
    "waba.disconnected": "The business removed this service's access to its account; its "
    "numbers are disconnected too.",
    "onboarding_link.opened": "The end-user opened the hosted page (the first time).",
    "onboarding_link.failed": "A signup attempt failed (cancelled, refused by Meta...): its code.",
    "onboarding_link.completed": "A link completed (by the page's callback or by recovery).",
    "onboarding_link.expired": "A pending link reached its expiresAt unused.",
    "onboarding_link.recovered": "A signup whose page never reported back was completed from "
    "Meta's own notice (completedVia: recovery).",
    "message.received": "A WhatsApp message arrived at a connected phone number.",
    "message.sent": "Meta accepted an outgoing message for delivery.",
    "message.delivered": "An outgoing message reached the recipient's device.",
    "message.read": "The recipient read an outgoing message.",
    "message.failed": "An outgoing message could not be delivered; Meta's error is included.",
    "message.played": "The recipient played an outgoing voice message.",
    "message.reaction": "A customer reacted to a message, or removed a reaction (empty emoji).",
    "message.edited": "A customer edited a message: the original id and the new content.",
    "message.deleted": "A customer deleted (revoked) a message: the original id.",
    "message.echo": "The business sent a message from the WhatsApp Business app (coexistence).",
    "contact.changed": "A customer changed number or identity (Meta's system message).",
    "phone_number.error": "Meta reported an error for a connected number, not for one message.",
}


def did_you_mean(name: str) -> str:
    """`` Did you mean 'message.received'?`` for the closest known type, else ``""``."""
    close = difflib.get_close_matches(name.strip().lower(), EVENT_TYPES, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_event_types(value: Any, param: str) -> list[str]:
    """A non-empty list of distinct known event types, as given (order kept)."""
    if not isinstance(value, list) or not value:
        raise invalid(f"'{param}' must be a non-empty list of event types.", param=param)
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in EVENT_TYPES:
            hint = did_you_mean(item) if isinstance(item, str) else ""
            raise invalid(
                f"Unknown event type {item!r}.{hint} See GET /v1/event-types.", param=param
            )
        if item in seen:
            raise invalid(f"Event type {item!r} is listed twice.", param=param)
        seen.append(item)
    return seen
