"""Meta's number-level webhook fields beyond messages, as typed, camelCased events.

The coexistence syncs (``history``: the WhatsApp Business app's chat history, in chunks,
or the business's refusal; ``smb_app_state_sync``: its contacts), ``user_preferences``
(a customer stopping or resuming marketing messages), the Calling API's ``calls`` and the
Groups API's ``group_participants_update``, and ``user_id_update`` (a customer's
business-scoped user id changed). Like ``message_model``, each shape is declared once,
as (Meta key, our key, kind) fields: it reads the payload and gives the schema the
OpenAPI webhooks publish (``PROPERTIES``). Typed keys are Meta's, camelCased, always
present (null when not sent), and Meta's object rides along under ``raw``.

None of these carries a message id of its own (but calls): an event's id derives from a
digest of Meta's object, so Meta's retry of a body adds nothing.
"""

from __future__ import annotations

from typing import Any

from edge_onboard.meta import message_model as model
from edge_onboard.meta.message_model import ERRORS, PROPERTIES, Found, Sender
from edge_onboard.meta.readers import (
    INT,
    STR,
    TIME,
    Field,
    Node,
    Schema,
    Unusable,
    digest,
    obj,
    objects,
    objects_of,
    read_fields,
    shape,
    storable,
    string,
    when,
)

_RAW: Schema = {"type": "object", "description": "Meta's object, untouched."}
_STR: Schema = {"type": "string"}

# history: one item per chunk of a thread sync, or the business's refusal.
HISTORY_CONTEXT = shape(("status", "status", STR))
_HISTORY_META: tuple[Field, ...] = (
    ("phase", "phase", INT),
    ("chunk_order", "chunkOrder", INT),
    ("progress", "progress", INT),
)
# smb_app_state_sync: a contact of the business app, added, edited or removed.
SYNCED_CONTACT = shape(
    ("full_name", "fullName", STR),
    ("first_name", "firstName", STR),
    ("phone_number", "phoneNumber", STR),
    ("user_id", "userId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("username", "username", STR),
)
STATE_SYNC: tuple[Field, ...] = (
    ("type", "type", STR),
    ("action", "action", STR),
    ("contact", "contact", SYNCED_CONTACT),
)
# user_preferences: marketing messages stopped or resumed.
PREFERENCE: tuple[Field, ...] = (
    ("wa_id", "waId", STR),
    ("user_id", "userId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("detail", "detail", STR),
    ("category", "category", STR),
    ("value", "value", STR),
    ("signup_id", "signupId", STR),
    ("timestamp", "timestamp", TIME),
)
# calls: a call connecting or ending; and the statuses of calls the business placed.
CALL: tuple[Field, ...] = (
    ("from", "from", STR),
    ("to", "to", STR),
    ("from_user_id", "fromUserId", STR),
    ("to_user_id", "toUserId", STR),
    ("event", "event", STR),
    ("direction", "direction", STR),
    ("status", "status", STR),
    ("type", "type", STR),
    ("recipient_id", "recipientId", STR),
    ("recipient_user_id", "recipientUserId", STR),
    ("timestamp", "timestamp", TIME),
    ("start_time", "startTime", TIME),
    ("end_time", "endTime", TIME),
    ("duration", "duration", INT),
    ("biz_opaque_callback_data", "bizOpaqueCallbackData", STR),
    ("session", "session", shape(("sdp", "sdp", STR), ("sdp_type", "sdpType", STR))),
    ("errors", "errors", ERRORS),
)
CALL_EVENTS = {"connect": "call.connected", "terminate": "call.ended"}
# group_participants_update: who joined, left, was added or removed (or failed to be).
PARTICIPANT: tuple[Field, ...] = (
    ("input", "input", STR),
    ("wa_id", "waId", STR),
    ("user_id", "userId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("username", "username", STR),
    ("errors", "errors", ERRORS),
)
GROUP: tuple[Field, ...] = (
    ("group_id", "groupId", STR),
    ("type", "type", STR),
    ("timestamp", "timestamp", TIME),
    ("request_id", "requestId", STR),
    ("join_request_id", "joinRequestId", STR),
    ("initiated_by", "initiatedBy", STR),
    ("reason", "reason", STR),
    ("wa_id", "waId", STR),
    ("user_id", "userId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("added_participants", "addedParticipants", objects_of(*PARTICIPANT)),
    ("removed_participants", "removedParticipants", objects_of(*PARTICIPANT)),
    ("failed_participants", "failedParticipants", objects_of(*PARTICIPANT)),
    ("errors", "errors", ERRORS),
)
# user_id_update: the customer's business-scoped user id (and parent's) changed.
USER_ID_UPDATE: tuple[Field, ...] = (
    ("wa_id", "waId", STR),
    ("user_id", "userId", STR),
    ("previous_user_id", "previousUserId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("previous_parent_user_id", "previousParentUserId", STR),
    ("timestamp", "timestamp", TIME),
)
_PERSON: dict[str, Schema] = {
    "contactName": STR.schema,
    "username": STR.schema,
}


def _fields(fields: tuple[Field, ...]) -> dict[str, Schema]:
    return {out: kind.schema for _, out, kind in fields}


def _history_message_schema() -> Schema:
    properties = {**PROPERTIES["message.received"], "historyContext": HISTORY_CONTEXT.schema}
    return {"type": "object", "required": list(properties), "properties": properties}


_THREAD: Schema = {
    "type": "object",
    "required": ["id", "messages"],
    "properties": {
        "id": {**STR.schema, "description": "The customer's number (null: not said)."},
        "messages": {"type": "array", "items": _history_message_schema()},
    },
}
_CALL_PROPERTIES: dict[str, Schema] = {
    "metaCallId": _STR,
    **_fields(CALL),
    "userId": STR.schema,
    "parentUserId": STR.schema,
    **_PERSON,
    "raw": _RAW,
}
# The typed keys of each event's payload (below phoneNumberId/wabaId).
PLATFORM_PROPERTIES: dict[str, dict[str, Schema]] = {
    "history.received": {
        **_fields(_HISTORY_META),
        "threads": {"type": "array", "items": _THREAD},
        "raw": _RAW,
    },
    "history.declined": {**_fields(_HISTORY_META), "errors": ERRORS.schema, "raw": _RAW},
    "contact.synced": {**_fields(STATE_SYNC), "timestamp": TIME.schema, "raw": _RAW},
    "contact.preferences_changed": {**_fields(PREFERENCE), **_PERSON, "raw": _RAW},
    "call.connected": _CALL_PROPERTIES,
    "call.ended": _CALL_PROPERTIES,
    "call.updated": _CALL_PROPERTIES,
    "group.participants_changed": {**_fields(GROUP), "raw": _RAW},
}


def _person(data: dict[str, Any], contact: Sender) -> dict[str, Any]:
    data["contactName"] = contact.name
    data["username"] = contact.username
    return data


def history(bad: Unusable, value: Node, path: str, known: dict[str, Sender]) -> list[Found]:
    """``history``: each chunk a ``history.received`` (its messages typed like a received
    message's, with Meta's ``historyContext``), a refusal ``history.declined``; media of
    past messages (``value.messages``) a chunk of their own."""
    found: list[Found] = []
    for item_path, item in objects(bad, value, "history", path):
        meta = obj(bad, item, "metadata", item_path) or {}
        data: dict[str, Any] = read_fields(bad, meta, _HISTORY_META, f"{item_path}.metadata")
        raw = storable(bad, item, f"{item_path} (raw)")
        if item.get("errors"):
            data["errors"] = ERRORS.read(bad, item, "errors", item_path)
            found.append(
                Found(
                    "history_declined",
                    "history.declined",
                    digest(item),
                    {
                        **data,
                        "raw": raw,
                    },
                )
            )
            continue
        threads = []
        for thread_path, thread in objects(bad, item, "threads", item_path):
            messages = [
                _past(bad, message, message_path, known)
                for message_path, message in objects(bad, thread, "messages", thread_path)
            ]
            threads.append(
                {
                    "id": string(bad, thread, "id", thread_path),
                    "messages": [m for m in messages if m is not None],
                }
            )
        data["threads"] = threads
        data["raw"] = raw
        found.append(Found("history", "history.received", digest(item), data))
    media = [
        _past(bad, message, message_path, known)
        for message_path, message in objects(bad, value, "messages", path)
    ]
    for message in media:
        if message is not None:
            data = {
                **dict.fromkeys(out for _, out, _ in _HISTORY_META),
                "threads": [{"id": None, "messages": [message]}],
                "raw": message["raw"],
            }
            found.append(Found("history_media", "history.received", digest(message["raw"]), data))
    return found


def _past(bad: Unusable, node: Node, path: str, known: dict[str, Sender]) -> dict[str, Any] | None:
    message = model.message(bad, node, path, known)
    if message is None or message.event_type != "message.received":
        return None if message is None else {**message.data, "historyContext": None}
    return {
        **message.data,
        "historyContext": HISTORY_CONTEXT.read(bad, node, "history_context", path),
    }


def state_sync(bad: Unusable, value: Node, path: str) -> list[Found]:
    """``smb_app_state_sync``: each contact of the business app added, edited or removed."""
    found = []
    for item_path, item in objects(bad, value, "state_sync", path):
        meta = obj(bad, item, "metadata", item_path) or {}
        data = {
            **read_fields(bad, item, STATE_SYNC, item_path),
            "timestamp": when(bad, meta, "timestamp", f"{item_path}.metadata"),
            "raw": storable(bad, item, f"{item_path} (raw)"),
        }
        found.append(Found("contact_sync", "contact.synced", digest(item), data))
    return found


def preferences(bad: Unusable, value: Node, path: str, known: dict[str, Sender]) -> list[Found]:
    """``user_preferences``: a customer stopped or resumed a category of messages."""
    found = []
    for item_path, item in objects(bad, value, "user_preferences", path):
        data = read_fields(bad, item, PREFERENCE, item_path)
        contact = model.who(known, data["waId"], data["userId"])
        data["userId"] = data["userId"] or contact.user_id
        data["parentUserId"] = data["parentUserId"] or contact.parent_user_id
        _person(data, contact)
        data["raw"] = storable(bad, item, f"{item_path} (raw)")
        found.append(Found("preferences", "contact.preferences_changed", digest(item), data))
    return found


def calls(bad: Unusable, value: Node, path: str, known: dict[str, Sender]) -> list[Found]:
    """``calls``: a call connecting (``call.connected``), ending (``call.ended``, with the
    change's errors), anything else about it and the statuses of calls the business
    placed (``call.updated``)."""
    found = []
    shared_errors = ERRORS.read(bad, value, "errors", path)
    items = [(p, item, False) for p, item in objects(bad, value, "calls", path)]
    items += [(p, item, True) for p, item in objects(bad, value, "statuses", path)]
    for item_path, item, is_status in items:
        call_id = string(bad, item, "id", item_path, required=True)
        if call_id is None:
            continue
        data: dict[str, Any] = {"metaCallId": call_id, **read_fields(bad, item, CALL, item_path)}
        if not data["errors"] and not is_status:
            data["errors"] = shared_errors
        # The customer: the caller of a call they placed, else the one called.
        keys: tuple[str | None, ...]
        if data["direction"] == "USER_INITIATED":
            keys = (data["from"], data["fromUserId"])
        else:
            keys = (data["to"], data["toUserId"], data["recipientId"], data["recipientUserId"])
        contact = model.who(known, *keys)
        data["userId"] = contact.user_id
        data["parentUserId"] = contact.parent_user_id
        _person(data, contact)
        data["raw"] = storable(bad, item, f"{item_path} (raw)")
        event_type = "call.updated" if is_status else CALL_EVENTS.get(data["event"] or "")
        event_type = event_type or "call.updated"
        kind = f"call:{data['event'] or ''}:{data['status'] or ''}"
        found.append(Found(kind, event_type, call_id, data))
    return found


def groups(bad: Unusable, value: Node, path: str) -> list[Found]:
    """``group_participants_update``: participants added, removed, joining or leaving."""
    found = []
    for item_path, item in objects(bad, value, "groups", path):
        data = {
            **read_fields(bad, item, GROUP, item_path),
            "raw": storable(bad, item, f"{item_path} (raw)"),
        }
        found.append(Found("group", "group.participants_changed", digest(item), data))
    return found


def user_id_updates(bad: Unusable, value: Node, path: str, known: dict[str, Sender]) -> list[Found]:
    """``user_id_update``: a customer's business-scoped user id changed; it becomes
    ``contact.changed`` like Meta's ``user_changed_user_id`` system message."""
    items = objects(bad, value, "user_id_update", path)
    if not items:  # the change itself, when Meta sends one update bare
        items = [(path, {k: v for k, v in value.items() if k not in _ENVELOPE})]
    found = []
    for item_path, item in items:
        update = read_fields(bad, item, USER_ID_UPDATE, item_path)
        contact = model.who(known, update["waId"], update["userId"])
        data: dict[str, Any] = {
            "metaMessageId": None,
            "from": update["waId"],
            "contactName": contact.name,
            "userId": update["userId"],
            "parentUserId": update["parentUserId"] or contact.parent_user_id,
            "username": contact.username,
            "groupId": None,
            "type": "user_id_update",
            "timestamp": update["timestamp"],
            "context": None,
            "referral": None,
            "errors": [],
            "system": {
                "type": "user_changed_user_id",
                "body": None,
                "waId": update["waId"],
                "newWaId": None,
                "userId": update["userId"],
                "previousUserId": update["previousUserId"],
                "parentUserId": update["parentUserId"],
                "previousParentUserId": update["previousParentUserId"],
                "customer": None,
                "identity": None,
            },
            "identity": None,
            "raw": storable(bad, item, f"{item_path} (raw)"),
        }
        found.append(Found("user_id_update", "contact.changed", digest(item), data))
    return found


# The keys every number-level change carries around its content.
_ENVELOPE = frozenset({"messaging_product", "metadata", "contacts"})
