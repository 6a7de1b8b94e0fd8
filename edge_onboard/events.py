"""The catalog of event types a webhook can subscribe to."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "phone_number.connected": "An end-user completed signup; the phone number is connected.",
    "message.received": "A WhatsApp message arrived at a connected phone number.",
    "message.sent": "Meta accepted an outgoing message for delivery.",
    "message.delivered": "An outgoing message reached the recipient's device.",
    "message.read": "The recipient read an outgoing message.",
    "message.failed": "An outgoing message could not be delivered; Meta's error is included.",
}
