"""What the fake Meta can post for a test-mode number beyond messages, one sample per
kind, so customers can build against every event before Meta sends them one: each is a
webhook field and its value, in the shapes of Meta's webhook reference, for
``SandboxMeta.emit_sample`` (which posts it with ``deliver``).

``sample(kind, phone)`` fills in the number; a customer's number and ids are made up.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

Value = dict[str, Any]
_CUSTOMER = "15550001234"
_USER_ID = "US.13491208655302741918"
_CONTACTS = [
    {
        "profile": {"name": "Sandbox Customer", "username": "sandbox.customer"},
        "wa_id": _CUSTOMER,
        "user_id": _USER_ID,
    }
]


def _now() -> str:
    return str(int(time.time()))


def _id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18)


def _number(phone: dict[str, Any]) -> str:
    return "".join(c for c in str(phone.get("display_phone_number", "")) if "0" <= c <= "9")


def _history(phone: dict[str, Any]) -> Value:
    message = {
        "from": _CUSTOMER,
        "id": _id("wamid.SandboxHistory"),
        "timestamp": _now(),
        "type": "text",
        "text": {"body": "Hello from before the Cloud API"},
        "history_context": {"status": "READ"},
    }
    chunk = {"phase": 0, "chunk_order": 1, "progress": 100}
    return {"history": [{"metadata": chunk, "threads": [{"id": _CUSTOMER, "messages": [message]}]}]}


def _history_declined(phone: dict[str, Any]) -> Value:
    error = {
        "code": 2593109,
        "title": "History sync is turned off by the business from the WhatsApp Business App",
        "message": "History sync is turned off by the business from the WhatsApp Business App",
        "error_data": {"details": "History sharing is turned off"},
    }
    return {"history": [{"errors": [error]}]}


def _state_sync(phone: dict[str, Any]) -> Value:
    contact = {"full_name": "Sandbox Customer", "first_name": "Sandbox", "phone_number": _CUSTOMER}
    item = {"type": "contact", "contact": contact, "action": "add"}
    return {"state_sync": [{**item, "metadata": {"timestamp": _now()}}]}


def _preferences(phone: dict[str, Any]) -> Value:
    item = {
        "wa_id": _CUSTOMER,
        "user_id": _USER_ID,
        "detail": "User requested to stop marketing messages",
        "category": "marketing_messages",
        "value": "stop",
        "timestamp": int(time.time()),
    }
    return {"contacts": _CONTACTS, "user_preferences": [item]}


def _call(event: str) -> Callable[[dict[str, Any]], Value]:
    def value(phone: dict[str, Any]) -> Value:
        call: Value = {
            "id": _id("wacid.Sandbox"),
            "from": _CUSTOMER,
            "to": _number(phone),
            "event": event,
            "timestamp": _now(),
            "direction": "USER_INITIATED",
        }
        if event == "terminate":
            call.update(status="COMPLETED", start_time=_now(), end_time=_now(), duration=0)
        else:
            call["session"] = {"sdp": "v=0", "sdp_type": "offer"}
        return {"contacts": _CONTACTS, "calls": [call]}

    return value


def _call_status(phone: dict[str, Any]) -> Value:
    status = {
        "id": _id("wacid.Sandbox"),
        "timestamp": _now(),
        "type": "call",
        "status": "RINGING",
        "recipient_id": _CUSTOMER,
    }
    return {"contacts": _CONTACTS, "statuses": [status]}


def _group(phone: dict[str, Any]) -> Value:
    item = {
        "timestamp": _now(),
        "group_id": "Sandbox" + secrets.token_hex(8),
        "type": "group_participants_add",
        "reason": "invite_link",
        "added_participants": [{"input": _USER_ID, "wa_id": _CUSTOMER, "user_id": _USER_ID}],
    }
    return {"groups": [item]}


def _user_id_update(phone: dict[str, Any]) -> Value:
    item = {
        "wa_id": _CUSTOMER,
        "user_id": "US." + secrets.token_hex(9),
        "previous_user_id": _USER_ID,
        "timestamp": _now(),
    }
    return {"user_id_update": [item]}


def _template(**value: Any) -> Callable[[dict[str, Any]], Value]:
    def sample(phone: dict[str, Any]) -> Value:
        return {
            "message_template_id": int(time.time()),
            "message_template_name": "sandbox_template",
            "message_template_language": "en_US",
            **value,
        }

    return sample


def _account(event: str, **info: Any) -> Callable[[dict[str, Any]], Value]:
    return lambda phone: {"event": event, **info}


# kind → (Meta's field, its value for the phone).
SAMPLES: dict[str, tuple[str, Callable[[dict[str, Any]], Value]]] = {
    "history": ("history", _history),
    "history_declined": ("history", _history_declined),
    "contact_synced": ("smb_app_state_sync", _state_sync),
    "preferences_changed": ("user_preferences", _preferences),
    "call_connected": ("calls", _call("connect")),
    "call_ended": ("calls", _call("terminate")),
    "call_updated": ("calls", _call_status),
    "group_participants_changed": ("group_participants_update", _group),
    "user_id_update": ("user_id_update", _user_id_update),
    "template_status": (
        "message_template_status_update",
        _template(event="APPROVED", reason="NONE", message_template_category="UTILITY"),
    ),
    "template_quality": (
        "message_template_quality_update",
        _template(previous_quality_score="GREEN", new_quality_score="YELLOW"),
    ),
    "template_category": ("template_category_update", _template(new_category="MARKETING")),
    "template_components": (
        "message_template_components_update",
        _template(message_template_element="Hello {{1}}"),
    ),
    "account_review": ("account_review_update", lambda phone: {"decision": "APPROVED"}),
    "capabilities": (
        "business_capability_update",
        lambda phone: {"max_daily_conversations_per_business": 1000},
    ),
    "account_restricted": (
        "account_update",
        _account(
            "ACCOUNT_RESTRICTION",
            restriction_info=[
                {
                    "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                    "expiration": int(time.time()) + 86400,
                }
            ],
        ),
    ),
    "account_offboarded": ("account_update", _account("ACCOUNT_OFFBOARDED")),
    "account_reconnected": ("account_update", _account("ACCOUNT_RECONNECTED")),
    "verified_account": ("account_update", _account("VERIFIED_ACCOUNT")),
    "username": (
        "business_username_update",
        lambda phone: {
            "display_phone_number": _number(phone),
            "username": "sandbox.business",
            "status": "APPROVED",
        },
    ),
}


def sample(kind: str, phone: dict[str, Any]) -> tuple[str, Value] | None:
    """Meta's field and value of ``kind`` for ``phone`` (None: no such kind)."""
    found = SAMPLES.get(kind)
    return None if found is None else (found[0], found[1](phone))
