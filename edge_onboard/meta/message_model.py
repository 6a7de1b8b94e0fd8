"""Meta's message, echo, status and error objects as typed, camelCase event payloads.

Each shape is declared once, as (Meta key, our key, kind) fields: the same declaration
reads a payload (total, see ``readers``) and gives the JSON schema the OpenAPI webhooks
publish (``PROPERTIES``). Every typed key is always present, null (or [] for lists,
false for flags) when Meta did not send it, and Meta's own object rides along untouched
under ``raw``, so a type or field Meta adds tomorrow reaches customers today.

Which event a message becomes: a reaction is ``message.reaction``, an edit
``message.edited`` (the original id and the new content, flattened like a received
message), a revoke ``message.deleted``, a system message ``contact.changed``, an echo of
what the business sent from the WhatsApp Business app ``message.echo``, and everything
else a customer sent ``message.received``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from edge_onboard.meta.readers import (
    BOOL,
    FLAG,
    INT,
    NUM,
    STR,
    TIME,
    Field,
    Kind,
    Node,
    Schema,
    Unusable,
    at,
    obj,
    objects,
    objects_of,
    picked,
    plain,
    read_fields,
    shape,
    storable,
    string,
    when,
)

STATUS_EVENTS = {
    "sent": "message.sent",
    "delivered": "message.delivered",
    "read": "message.read",
    "played": "message.played",
    "failed": "message.failed",
}


class Found(NamedTuple):
    """One event a change holds: its type and payload, and what its id derives from
    (``kind`` and Meta's ``meta_id``: Meta's retries map onto the same id)."""

    kind: str
    event_type: str
    meta_id: str
    data: dict[str, Any]


# Shapes, as Meta documents them (webhooks reference, messages and statuses).

ERROR: tuple[Field, ...] = (
    ("code", "code", INT),
    ("title", "title", STR),
    ("message", "message", STR),
    ("error_data", "details", picked("details", STR)),
    ("href", "href", STR),
)
ERRORS = objects_of(*ERROR)
MEDIA = shape(
    ("id", "id", STR),
    ("mime_type", "mimeType", STR),
    ("sha256", "sha256", STR),
    ("caption", "caption", STR),
    ("filename", "filename", STR),
    ("voice", "voice", BOOL),
    ("animated", "animated", BOOL),
    ("url", "url", STR),
)
LOCATION = shape(
    ("latitude", "latitude", NUM),
    ("longitude", "longitude", NUM),
    ("name", "name", STR),
    ("address", "address", STR),
    ("url", "url", STR),
)
_TYPED_VALUE: tuple[Field, ...] = (("type", "type", STR),)
CONTACTS = objects_of(
    (
        "name",
        "name",
        shape(
            ("formatted_name", "formattedName", STR),
            ("first_name", "firstName", STR),
            ("last_name", "lastName", STR),
            ("middle_name", "middleName", STR),
            ("suffix", "suffix", STR),
            ("prefix", "prefix", STR),
        ),
    ),
    (
        "phones",
        "phones",
        objects_of(
            ("phone", "phone", STR),
            ("wa_id", "waId", STR),
            ("user_id", "userId", STR),
            *_TYPED_VALUE,
        ),
    ),
    ("emails", "emails", objects_of(("email", "email", STR), *_TYPED_VALUE)),
    ("urls", "urls", objects_of(("url", "url", STR), *_TYPED_VALUE)),
    (
        "addresses",
        "addresses",
        objects_of(
            ("street", "street", STR),
            ("city", "city", STR),
            ("state", "state", STR),
            ("zip", "zip", STR),
            ("country", "country", STR),
            ("country_code", "countryCode", STR),
            *_TYPED_VALUE,
        ),
    ),
    (
        "org",
        "org",
        shape(
            ("company", "company", STR),
            ("department", "department", STR),
            ("title", "title", STR),
        ),
    ),
    ("birthday", "birthday", STR),
    # A contact shared in answer to a contact-information request.
    ("vcard", "vcard", STR),
    ("origin", "origin", STR),
)
_REPLY: tuple[Field, ...] = (("id", "id", STR), ("title", "title", STR))
INTERACTIVE = shape(
    ("type", "type", STR),
    ("button_reply", "buttonReply", shape(*_REPLY)),
    ("list_reply", "listReply", shape(*_REPLY, ("description", "description", STR))),
    (
        "nfm_reply",
        "nfmReply",
        shape(
            ("name", "name", STR),
            ("body", "body", STR),
            ("response_json", "responseJson", STR),
        ),
    ),
    # The customer's answer to a call permission request (Calling API).
    (
        "call_permission_reply",
        "callPermissionReply",
        shape(
            ("response", "response", STR),
            ("expiration_timestamp", "expirationTimestamp", TIME),
            ("response_source", "responseSource", STR),
            ("is_permanent", "isPermanent", BOOL),
        ),
    ),
)
BUTTON = shape(("payload", "payload", STR), ("text", "text", STR))
ORDER = shape(
    ("catalog_id", "catalogId", STR),
    ("text", "text", STR),
    (
        "product_items",
        "productItems",
        objects_of(
            ("product_retailer_id", "productRetailerId", STR),
            ("quantity", "quantity", INT),
            ("item_price", "itemPrice", NUM),
            ("currency", "currency", STR),
        ),
    ),
)
UNSUPPORTED = shape(*_TYPED_VALUE)
REACTION = shape(("message_id", "messageId", STR), ("emoji", "emoji", STR))
CONTEXT = shape(
    ("id", "messageId", STR),
    ("from", "from", STR),
    ("forwarded", "forwarded", FLAG),
    ("frequently_forwarded", "frequentlyForwarded", FLAG),
    (
        "referred_product",
        "referredProduct",
        shape(
            ("catalog_id", "catalogId", STR),
            ("product_retailer_id", "productRetailerId", STR),
        ),
    ),
)
REFERRAL = shape(
    ("source_url", "sourceUrl", STR),
    ("source_id", "sourceId", STR),
    ("source_type", "sourceType", STR),
    ("headline", "headline", STR),
    ("body", "body", STR),
    ("media_type", "mediaType", STR),
    ("image_url", "imageUrl", STR),
    ("video_url", "videoUrl", STR),
    ("thumbnail_url", "thumbnailUrl", STR),
    ("ctwa_clid", "ctwaClid", STR),
    ("welcome_message", "welcomeMessage", shape(("text", "text", STR))),
)
SYSTEM = shape(
    ("type", "type", STR),
    ("body", "body", STR),
    ("wa_id", "waId", STR),
    ("new_wa_id", "newWaId", STR),
    ("user_id", "userId", STR),
    ("previous_user_id", "previousUserId", STR),
    ("parent_user_id", "parentUserId", STR),
    ("previous_parent_user_id", "previousParentUserId", STR),
    ("customer", "customer", STR),
    ("identity", "identity", STR),
)
IDENTITY = shape(
    ("acknowledged", "acknowledged", BOOL),
    ("created_timestamp", "createdTimestamp", TIME),
    ("hash", "hash", STR),
)
STATUS: tuple[Field, ...] = (
    ("recipient_id", "recipientId", STR),
    ("recipient_user_id", "recipientUserId", STR),
    ("recipient_parent_user_id", "recipientParentUserId", STR),
    ("recipient_type", "recipientType", STR),
    ("recipient_participant_id", "recipientParticipantId", STR),
    ("recipient_participant_user_id", "recipientParticipantUserId", STR),
    ("recipient_participant_parent_user_id", "recipientParticipantParentUserId", STR),
    ("status", "status", STR),
    ("timestamp", "timestamp", TIME),
    ("biz_opaque_callback_data", "bizOpaqueCallbackData", STR),
    (
        "conversation",
        "conversation",
        shape(
            ("id", "id", STR),
            ("expiration_timestamp", "expirationTimestamp", TIME),
            ("origin", "origin", shape(*_TYPED_VALUE)),
        ),
    ),
    (
        "pricing",
        "pricing",
        shape(
            ("billable", "billable", BOOL),
            ("category", "category", STR),
            ("pricing_model", "pricingModel", STR),
            ("type", "type", STR),
        ),
    ),
    ("errors", "errors", ERRORS),
)
_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
# Meta's message type → our key for its content, and its kind.
CONTENT: dict[str, tuple[str, Kind]] = {
    "text": ("text", picked("body", STR)),
    **{media: ("media", MEDIA) for media in _MEDIA_TYPES},
    "location": ("location", LOCATION),
    "contacts": ("contacts", CONTACTS),
    "interactive": ("interactive", INTERACTIVE),
    "button": ("button", BUTTON),
    "order": ("order", ORDER),
    "unsupported": ("unsupported", UNSUPPORTED),
}
# What the business sends from the app can be a reaction as well.
ECHO_CONTENT: dict[str, tuple[str, Kind]] = {**CONTENT, "reaction": ("reaction", REACTION)}


def _keys(content: dict[str, tuple[str, Kind]]) -> dict[str, Schema]:
    """The content keys' schemas: each is null unless it is the message's type."""
    return {
        out: {"anyOf": [kind.schema, {"type": "null"}]}
        if kind.schema.get("type") == "array"
        else kind.schema
        for out, kind in content.values()
    }


_CONTENT_KEYS = tuple(_keys(CONTENT))
_ECHO_KEYS = tuple(_keys(ECHO_CONTENT))


# The typed keys of each event's payload (below ``phoneNumberId``/``wabaId``) and their
# schemas, for edge_onboard/api/openapi/event_schemas.py.
_STR: Schema = {"type": "string"}
_RAW: Schema = {"type": "object", "description": "Meta's object, untouched."}
_SENDER: dict[str, Schema] = {
    "metaMessageId": _STR,
    "from": STR.schema,
    "contactName": STR.schema,
    "userId": STR.schema,
    "parentUserId": STR.schema,
    "username": STR.schema,
    "groupId": STR.schema,
    "type": _STR,
    "timestamp": TIME.schema,
    "context": CONTEXT.schema,
    "referral": REFERRAL.schema,
    "errors": ERRORS.schema,
}
_STATUS: dict[str, Schema] = {
    "metaMessageId": _STR,
    **{out: kind.schema for _, out, kind in STATUS},
    # The recipient as ``value.contacts`` names them (a group: its participant).
    "recipientName": STR.schema,
    "recipientUsername": STR.schema,
    "groupId": STR.schema,
    "raw": _RAW,
}
PROPERTIES: dict[str, dict[str, Schema]] = {
    "message.received": {**_SENDER, **_keys(CONTENT), "raw": _RAW},
    "message.reaction": {
        **_SENDER,
        "reaction": REACTION.schema,
        "action": {"enum": ["added", "removed"]},
        "raw": _RAW,
    },
    "message.edited": {
        **_SENDER,
        "originalMessageId": STR.schema,
        **_keys(CONTENT),
        "raw": _RAW,
    },
    "message.deleted": {**_SENDER, "originalMessageId": STR.schema, "raw": _RAW},
    "contact.changed": {
        **_SENDER,
        # null for a user_id_update, which is no message.
        "metaMessageId": {"type": ["string", "null"]},
        "system": SYSTEM.schema,
        "identity": IDENTITY.schema,
        "raw": _RAW,
    },
    "message.echo": {
        "metaMessageId": _STR,
        "from": STR.schema,
        "to": STR.schema,
        "toUserId": STR.schema,
        "toParentUserId": STR.schema,
        "toUsername": STR.schema,
        "contactName": STR.schema,
        "type": _STR,
        "timestamp": TIME.schema,
        "context": CONTEXT.schema,
        "errors": ERRORS.schema,
        "originalMessageId": STR.schema,
        **_keys(ECHO_CONTENT),
        "raw": _RAW,
    },
    **{event_type: _STATUS for event_type in STATUS_EVENTS.values()},
    "phone_number.error": {**{out: kind.schema for _, out, kind in ERROR}, "raw": _RAW},
}


@dataclass(frozen=True, slots=True)
class Sender:
    """A customer as ``value.contacts`` names them."""

    name: str | None
    user_id: str | None
    parent_user_id: str | None
    username: str | None = None
    wa_id: str | None = None


_NOBODY = Sender(None, None, None)


def senders(bad: Unusable, value: Node, path: str) -> dict[str, Sender]:
    """``value.contacts`` by WhatsApp id and by business-scoped user id (a user with a
    username may come with the latter only)."""
    found: dict[str, Sender] = {}
    for contact_path, contact in objects(bad, value, "contacts", path):
        wa_id = string(bad, contact, "wa_id", contact_path)
        user_id = string(bad, contact, "user_id", contact_path)
        if wa_id is None and user_id is None:
            bad.add(at(contact_path, "wa_id"), contact.get("wa_id"), "a str (or a user_id)")
            continue
        profile = obj(bad, contact, "profile", contact_path)
        profile_path = at(contact_path, "profile")
        sender = Sender(
            string(bad, profile, "name", profile_path) if profile else None,
            user_id,
            string(bad, contact, "parent_user_id", contact_path),
            string(bad, profile, "username", profile_path) if profile else None,
            wa_id,
        )
        for key in (wa_id, user_id):
            if key is not None:
                found[key] = sender
    return found


def who(known: dict[str, Sender], *keys: str | None) -> Sender:
    """The contact one of ``keys`` (a number or a user id) names; nobody when none does."""
    return _who(known, *keys)


def _who(known: dict[str, Sender], *keys: str | None) -> Sender:
    for key in keys:
        if key is not None and key in known:
            return known[key]
    return _NOBODY


def _content(
    bad: Unusable, node: Node, kind: str, path: str, table: dict[str, tuple[str, Kind]]
) -> dict[str, Any]:
    """Every content key of ``table``, null but the one of the message's type."""
    data: dict[str, Any] = dict.fromkeys(_CONTENT_KEYS if table is CONTENT else _ECHO_KEYS)
    typed = table.get(kind)
    if typed is not None:
        out, reader = typed
        data[out] = reader.read(bad, node, kind, path)
    return data


def message(bad: Unusable, node: Node, path: str, known: dict[str, Sender]) -> Found | None:
    """The event a customer's message becomes (None without an id)."""
    message_id = string(bad, node, "id", path, required=True)
    if message_id is None:
        return None
    kind = string(bad, node, "type", path) or "unknown"
    sender = string(bad, node, "from", path)
    user_id = string(bad, node, "from_user_id", path)
    contact = _who(known, sender, user_id)
    data: dict[str, Any] = {
        "metaMessageId": message_id,
        "from": sender,
        "contactName": contact.name,
        "userId": user_id or contact.user_id,
        "parentUserId": string(bad, node, "from_parent_user_id", path) or contact.parent_user_id,
        "username": contact.username,
        "groupId": string(bad, node, "group_id", path),
        "type": kind,
        "timestamp": when(bad, node, "timestamp", path),
        "context": CONTEXT.read(bad, node, "context", path),
        "referral": REFERRAL.read(bad, node, "referral", path),
        "errors": ERRORS.read(bad, node, "errors", path),
    }
    if kind == "reaction":
        reaction = REACTION.read(bad, node, "reaction", path)
        data["reaction"] = reaction
        # Meta reports a removed reaction as an empty (or absent) emoji.
        data["action"] = "added" if reaction and reaction["emoji"] else "removed"
        event_kind, event_type = "reaction", "message.reaction"
    elif kind == "edit":
        edit = obj(bad, node, "edit", path)
        edit_path = at(path, "edit")
        data["originalMessageId"] = (
            string(bad, edit, "original_message_id", edit_path) if edit else None
        )
        new = obj(bad, edit, "message", edit_path) if edit else None
        if new is not None:
            new_path = at(edit_path, "message")
            data["type"] = new_kind = string(bad, new, "type", new_path) or "unknown"
            data["context"] = CONTEXT.read(bad, new, "context", new_path) or data["context"]
            data.update(_content(bad, new, new_kind, f"{new_path}.{plain(new_kind)}", CONTENT))
        else:
            data.update(dict.fromkeys(_CONTENT_KEYS))
        event_kind, event_type = "edited", "message.edited"
    elif kind == "revoke":
        revoke = obj(bad, node, "revoke", path)
        data["originalMessageId"] = (
            string(bad, revoke, "original_message_id", at(path, "revoke")) if revoke else None
        )
        event_kind, event_type = "deleted", "message.deleted"
    elif kind == "system":
        data["system"] = SYSTEM.read(bad, node, "system", path)
        data["identity"] = IDENTITY.read(bad, node, "identity", path)
        event_kind, event_type = "contact", "contact.changed"
    else:
        data.update(_content(bad, node, kind, f"{path}.{plain(kind)}", CONTENT))
        event_kind, event_type = "received", "message.received"
    data["raw"] = storable(bad, node, f"{path} (raw)")
    return Found(event_kind, event_type, message_id, data)


def echo(bad: Unusable, node: Node, path: str, known: dict[str, Sender]) -> Found | None:
    """What the business sent from the WhatsApp Business app (``smb_message_echoes``)."""
    message_id = string(bad, node, "id", path, required=True)
    if message_id is None:
        return None
    kind = string(bad, node, "type", path) or "unknown"
    to = string(bad, node, "to", path)
    to_user_id = string(bad, node, "to_user_id", path)
    contact = _who(known, to, to_user_id)
    data: dict[str, Any] = {
        "metaMessageId": message_id,
        "from": string(bad, node, "from", path),
        "to": to,
        "toUserId": to_user_id or contact.user_id,
        "toParentUserId": string(bad, node, "to_parent_user_id", path) or contact.parent_user_id,
        "toUsername": contact.username,
        "contactName": contact.name,
        "type": kind,
        "timestamp": when(bad, node, "timestamp", path),
        "context": CONTEXT.read(bad, node, "context", path),
        "errors": ERRORS.read(bad, node, "errors", path),
        "originalMessageId": None,
    }
    if kind in ("edit", "revoke"):
        # The business edited or deleted, from the app, what it had sent.
        change = obj(bad, node, kind, path)
        change_path = at(path, kind)
        if change is not None:
            data["originalMessageId"] = string(bad, change, "original_message_id", change_path)
        new = obj(bad, change, "message", change_path) if change and kind == "edit" else None
        if new is not None:
            new_path = at(change_path, "message")
            data["type"] = new_kind = string(bad, new, "type", new_path) or "unknown"
            data.update(_content(bad, new, new_kind, f"{new_path}.{plain(new_kind)}", ECHO_CONTENT))
        else:
            data.update(dict.fromkeys(_ECHO_KEYS))
    else:
        data.update(_content(bad, node, kind, f"{path}.{plain(kind)}", ECHO_CONTENT))
    data["raw"] = storable(bad, node, f"{path} (raw)")
    return Found("echo", "message.echo", message_id, data)


def status(
    bad: Unusable, node: Node, path: str, known: dict[str, Sender] | None = None
) -> Found | None:
    """A status of a message the business sent; None for one we do not report (Meta has
    added some over time) or without an id."""
    status_id = string(bad, node, "id", path, required=True)
    state = string(bad, node, "status", path, required=True)
    if status_id is None or state is None or state not in STATUS_EVENTS:
        return None
    data = {"metaMessageId": status_id, **read_fields(bad, node, STATUS, path)}
    in_group = data["recipientType"] == "group"
    person = (
        (data["recipientParticipantId"], data["recipientParticipantUserId"])
        if in_group
        else (data["recipientId"], data["recipientUserId"])
    )
    contact = _who(known or {}, *person)
    if not in_group:
        data["recipientUserId"] = data["recipientUserId"] or contact.user_id
        data["recipientParentUserId"] = data["recipientParentUserId"] or contact.parent_user_id
    else:
        data["recipientParticipantUserId"] = data["recipientParticipantUserId"] or contact.user_id
        data["recipientParticipantParentUserId"] = (
            data["recipientParticipantParentUserId"] or contact.parent_user_id
        )
    data["recipientName"] = contact.name
    data["recipientUsername"] = contact.username
    data["groupId"] = data["recipientId"] if in_group else None
    data["raw"] = storable(bad, node, f"{path} (raw)")
    return Found(state, STATUS_EVENTS[state], status_id, data)


def errors(bad: Unusable, value: Node, path: str) -> list[Found]:
    """``value.errors``: problems Meta reports for the number rather than a message. They
    carry no id, so theirs is a digest of the whole change: a retry of it adds nothing."""
    found = [
        (read_fields(bad, error, ERROR, error_path), storable(bad, error, f"{error_path} (raw)"))
        for error_path, error in objects(bad, value, "errors", path)
    ]
    if not found:
        return []
    try:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested past what orjson writes: its storable part
        canonical = orjson.dumps(storable(Unusable(), value, path), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(canonical).hexdigest()[:32]
    return [
        Found("error", "phone_number.error", f"{digest}:{index}", {**fields, "raw": raw})
        for index, (fields, raw) in enumerate(found)
    ]
