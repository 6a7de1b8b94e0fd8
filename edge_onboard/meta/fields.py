"""Every webhook field Meta documents for a WhatsApp Business Account, and the events it
becomes here (docs/reference/webhook-fields.md is this table in words; a test holds the two
together).

A change is number-level when its ``value`` names the number (``metadata.phone_number_id``):
edge_onboard/meta/inbound.py reads it for each connected phone. Otherwise it is about the
WABA (or the business) and edge_onboard/hosted/meta_webhook.py applies it. A field not in
this table, or a change of a known field that holds nothing we read, still becomes the
closest event (``phone_number.updated`` or ``waba.updated``) with ``metaField``,
``metaEvent`` and Meta's value untouched under ``raw``; it is logged once per process.
"""

from __future__ import annotations

import logging

log = logging.getLogger("edge_onboard.meta.inbound")

_TEMPLATE = ("template.updated",)
_PHONE = ("phone_number.updated",)
_WABA = ("waba.updated",)

WEBHOOK_FIELDS: dict[str, tuple[str, ...]] = {
    "account_alerts": _PHONE,
    "account_review_update": _WABA,
    "account_update": ("waba.updated", "waba.disconnected", "onboarding_link.recovered"),
    "automatic_events": _PHONE,
    "business_capability_update": _WABA,
    "business_username_update": _PHONE,
    "calls": ("call.connected", "call.ended", "call.updated"),
    "flows": _WABA,
    "group_lifecycle_update": _PHONE,
    "group_participants_update": ("group.participants_changed",),
    "group_settings_update": _PHONE,
    "group_status_update": _PHONE,
    "history": ("history.received", "history.declined"),
    "message_template_components_update": _TEMPLATE,
    "message_template_quality_update": _TEMPLATE,
    "message_template_status_update": _TEMPLATE,
    "messages": (
        "message.received",
        "message.reaction",
        "message.edited",
        "message.deleted",
        "message.sent",
        "message.delivered",
        "message.read",
        "message.played",
        "message.failed",
        "contact.changed",
        "phone_number.error",
    ),
    "messaging_handovers": _PHONE,
    "partner_solutions": _WABA,
    "payment_configuration_update": _WABA,
    "phone_number_name_update": _PHONE,
    "phone_number_quality_update": _PHONE,
    "security": _PHONE,
    "smb_app_state_sync": ("contact.synced",),
    "smb_message_echoes": ("message.echo",),
    "template_category_update": _TEMPLATE,
    "tracking_events": _PHONE,
    "user_id_update": ("contact.changed",),
    "user_preferences": ("contact.preferences_changed",),
}

# Fields whose value names the number (``metadata.phone_number_id``); the others are
# about the WABA or the business.
NUMBER_FIELDS = frozenset(
    {
        "automatic_events",
        "calls",
        "group_lifecycle_update",
        "group_participants_update",
        "group_settings_update",
        "group_status_update",
        "history",
        "messages",
        "messaging_handovers",
        "smb_app_state_sync",
        "smb_message_echoes",
        "tracking_events",
        "user_id_update",
        "user_preferences",
    }
)

_told: set[tuple[str, str]] = set()


def unknown(field: str | None, event: str | None = None) -> None:
    """Log, once per process, a field (or an ``account_update`` event) we read nothing
    of: it still became an event, with Meta's value under ``raw``."""
    key = (_name(field), _name(event))
    if key in _told or len(_told) > 1000:
        return
    _told.add(key)
    log.info(
        "meta webhook: field %s%s is not typed yet; sent on with metaField and raw",
        key[0],
        f" event {key[1]}" if event else "",
    )


def _name(value: str | None) -> str:
    if value is None:
        return "-"
    return value if value.replace("_", "").isalnum() and len(value) <= 64 else "<unusual>"
