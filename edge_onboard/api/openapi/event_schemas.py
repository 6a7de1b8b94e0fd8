"""The payload schema of every event type, and the OpenAPI ``webhooks`` that publish them.

Every event is ``{"id", "event", "timestamp", "organizationId", "livemode", "data"}``; what ``data``
holds is per type. The inbound (Meta) events take their typed keys from the declarations
that read them (edge_onboard/meta/message_model.py), so a payload and its schema cannot drift
apart. Payloads may gain keys: no schema here forbids additional properties.
"""

from __future__ import annotations

import re
from typing import Any

from edge_onboard.meta.account_model import CHANGE_SCHEMAS, TEMPLATE_PROPERTIES
from edge_onboard.meta.message_model import PROPERTIES
from edge_onboard.meta.platform_model import PLATFORM_PROPERTIES
from edge_onboard.meta.readers import TIMESTAMP_SCHEMA
from edge_onboard.storage import PhonePlatform, PhoneStatus
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.owners import owned

Schema = dict[str, Any]

_UUID: Schema = {"type": "string", "format": "uuid"}
_STR: Schema = {"type": "string"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description}


_PHONE_STATUS: Schema = {"type": "string", "enum": [s.value for s in PhoneStatus]}
_PLATFORM: Schema = {"type": "string", "enum": [p.value for p in PhonePlatform]}
_E164: Schema = _nullable({"type": "string", "pattern": r"^\+[1-9]\d{6,14}$"})
_LINK: dict[str, Schema] = {
    "onboardingLinkId": _described(_nullable(_UUID), "The onboarding link it came through."),
    "externalId": _described(_nullable(_STR), "The link's externalId, yours."),
}
# What the service adds to every event about a connected number's traffic.
_PHONE: dict[str, Schema] = {
    "phoneNumberId": _described(_UUID, "The connected phone (our id)."),
    "wabaId": _described(_UUID, "Its WABA (our id)."),
}
# A few words on the keys customers reach for first; the rest are Meta's, camelCased.
_NOTES = {
    "metaMessageId": "Meta's message id (wamid); statuses of a message share it.",
    "from": "The sender's WhatsApp number (for an echo: the business's).",
    "contactName": "The customer's WhatsApp profile name, when Meta sends it.",
    "userId": "The customer's business-scoped user id, when Meta sends it.",
    "type": "Meta's message type; a type Meta adds later arrives as-is, with raw.",
    "timestamp": "When Meta says it happened.",
    "text": "The text of a text message.",
    "media": "Image, video, audio (voice), document or sticker (animated): fetch the file "
    "with GET /v1/phones/{id}/media/{media.id}.",
    "context": "The message this one replies to, or that it was forwarded.",
    "referral": "The click-to-WhatsApp ad (or post) the customer came from.",
    "errors": "Meta's errors about this message.",
    "raw": "Meta's object, untouched: whatever the typed keys do not cover.",
    "originalMessageId": "The message edited or deleted.",
    "action": "added, or removed (Meta sends an empty emoji).",
    "system": "What changed: user_changed_number (waId is the new number), "
    "user_identity_changed, user_changed_user_id, ...",
    "pricing": "How Meta bills the message, when it says.",
    "conversation": "The conversation Meta counts it in, when it says.",
    "username": "The customer's WhatsApp username, when they have one.",
    "parentUserId": "The customer's parent business-scoped user id, when Meta sends it.",
    "metaField": "Meta's webhook field this came from.",
    "metaEvent": "Meta's event in it, when it names one.",
    "change": "Meta's value, typed (camelCased); null for a field not typed yet (see raw).",
    "threads": "The threads of this chunk, each with its past messages, typed like "
    "message.received's, with Meta's historyContext (their status then).",
    "progress": "How much of the history has been sent, in percent.",
}
# Keys Meta's own notices fill in events the service also sends for its own reasons
# (null in those).
_META_CHANGE: dict[str, Schema] = {
    "metaField": _nullable(_STR),
    "metaEvent": _nullable(_STR),
}


# The link that connected the event's number: null for a number no link connected (one a
# WABA sync found later).
_OWNER: dict[str, Schema] = {
    "onboardingLinkId": {"type": ["string", "null"], "format": "uuid"},
    "externalId": {"type": ["string", "null"]},
}


# An update link's result (edge_onboard/onboarding/updates.py), in the link view and events.
UPDATE_RESULT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["changes", "profileFields"],
    "properties": {
        "changes": {
            "type": "array",
            "items": {
                "type": "string",
                "enum": ["reconnected", "phone_added", "verified", "profile_updated"],
            },
            "description": "What the end-user changed, in order.",
        },
        "profileFields": {
            "type": "array",
            "items": {
                "type": "string",
                "enum": ["about", "description", "address", "email", "websites", "vertical"],
            },
            "description": "The business profile fields sent to Meta (those that differed).",
        },
    },
}


def _object(properties: dict[str, Schema]) -> Schema:
    return {
        "type": "object",
        "required": list(properties),
        "properties": {
            name: _described(schema, _NOTES[name]) if name in _NOTES else schema
            for name, schema in properties.items()
        },
    }


def _data_schemas() -> dict[str, Schema]:
    phone_view: dict[str, Schema] = {
        "id": _UUID,
        "phoneNumber": _E164,
        "metaPhoneNumberId": _STR,
        "wabaId": _UUID,
        "metaWabaId": _STR,
        "isPhoneRegistered": {"type": "boolean"},
        "status": _PHONE_STATUS,
        "platform": _PLATFORM,
        "displayName": _nullable(_STR),
        "nameStatus": _nullable(_STR),
        "qualityRating": _nullable(_STR),
        "messagingLimit": _nullable(_STR),
        "coexistence": _nullable(
            {
                "type": "object",
                "description": "WhatsApp Business app numbers: how each one-shot sync went.",
                "properties": {
                    "stateSync": _STR,
                    "historySync": _STR,
                    "historyProgress": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            }
        ),
        "onboardingLinkId": _nullable(_UUID),
        "createdAt": TIMESTAMP_SCHEMA,
        "livemode": {"type": "boolean"},
    }
    known: dict[str, Schema] = {
        "phone_number.connected": _object(
            {
                **_LINK,
                "phoneNumberId": _UUID,
                "phoneNumber": _E164,
                "wabaId": _UUID,
                "metaWabaId": _STR,
                "isPhoneRegistered": {"type": "boolean"},
                "status": _PHONE_STATUS,
                "platform": _PLATFORM,
            }
        ),
        "phone_number.updated": _object(
            {
                **phone_view,
                "previousStatus": _nullable(_PHONE_STATUS),
                **_META_CHANGE,
                "change": CHANGE_SCHEMAS["phone_number.updated"],
                "metaState": _nullable(
                    {
                        "type": "object",
                        "description": "What the change set on the phone (kept with it).",
                        "properties": {
                            name: _nullable(_STR)
                            for name in (
                                "qualityEvent",
                                "messagingLimit",
                                "nameStatus",
                                "requestedName",
                                "rejectionReason",
                                "username",
                                "usernameStatus",
                            )
                        },
                    }
                ),
                "raw": {
                    "type": ["object", "null"],
                    "description": "Meta's value, as sent (null: not Meta's notice).",
                },
            }
        ),
        "waba.connected": _object({**_LINK, "wabaId": _UUID, "metaWabaId": _STR}),
        "waba.updated": _object(
            {
                "wabaId": _UUID,
                "metaWabaId": _STR,
                "status": {"type": "string", "enum": ["connected", "disconnected"]},
                "event": _described(
                    _STR, "Meta's account_update event (e.g. ACCOUNT_VIOLATION), else its field."
                ),
                **_META_CHANGE,
                "change": CHANGE_SCHEMAS["waba.updated"],
                "raw": _described({"type": "object"}, "Meta's value, as sent."),
            }
        ),
        "waba.disconnected": _object(
            {
                "wabaId": _UUID,
                "metaWabaId": _STR,
                **_META_CHANGE,
                "change": CHANGE_SCHEMAS["waba.updated"],
                "raw": _described({"type": "object"}, "Meta's PARTNER_REMOVED, as sent."),
            }
        ),
        "template.updated": _object(
            {
                "wabaId": _UUID,
                "metaWabaId": _STR,
                "metaField": _STR,
                **TEMPLATE_PROPERTIES,
                "raw": _described({"type": "object"}, "Meta's value, as sent."),
            }
        ),
    }
    link_base = {
        "onboardingLinkId": _UUID,
        "externalId": _nullable(_STR),
        "status": {"type": "string", "enum": ["pending", "completed", "expired"]},
        "metadata": {"type": "object", "additionalProperties": _STR},
    }
    done = {
        **link_base,
        "completedVia": {"type": "string", "enum": ["callback", "recovery"]},
        "wabaId": _UUID,
        "phoneNumberId": _nullable(_UUID),
        "type": _described(
            {"type": "string", "enum": ["onboarding", "update"]}, "The link's type."
        ),
        "result": _described(
            _nullable(UPDATE_RESULT), "An update link's result: what changed (null otherwise)."
        ),
    }
    known.update(
        {
            "onboarding_link.opened": _object(link_base),
            "onboarding_link.failed": _object(
                {
                    **link_base,
                    "code": _described(_STR, "Why, e.g. signup_cancelled, waba_not_granted."),
                    "message": _described(_STR, "The service's plain sentence for the code."),
                }
            ),
            "onboarding_link.completed": _object(done),
            "onboarding_link.expired": _object(link_base),
            "onboarding_link.recovered": _object(done),
        }
    )
    inbound = {**PROPERTIES, **PLATFORM_PROPERTIES}
    known.update({name: _object({**_PHONE, **properties}) for name, properties in inbound.items()})
    # Whose it is (edge_onboard/webhooks/owners.py): every kind but the links' own.
    for name, schema in known.items():
        if owned(name):
            for field, value in _OWNER.items():
                schema["properties"].setdefault(field, value)
                if field not in schema["required"]:
                    schema["required"].append(field)
    return known


def event_schema(event_type: str) -> Schema:
    """The whole body an endpoint receives for ``event_type``."""
    return {
        "type": "object",
        "required": ["id", "event", "timestamp", "organizationId", "livemode", "data"],
        "properties": {
            "id": {"type": "string", "description": "Also the webhook-id header."},
            "event": {"type": "string", "const": event_type},
            "timestamp": TIMESTAMP_SCHEMA,
            "organizationId": _UUID,
            "livemode": {"type": "boolean", "description": "False for a test object's event."},
            "data": _DATA[event_type],
        },
    }


def _pascal(event_type: str) -> str:
    return "".join(word.capitalize() for word in re.split(r"[._]", event_type))


def schema_name(event_type: str) -> str:
    """The payload's name under components/schemas: ``phone_number.connected`` is
    ``PhoneNumberConnectedEvent`` (its ``data``: ``PhoneNumberConnectedEventData``)."""
    return f"{_pascal(event_type)}Event"


def components() -> Schema:
    """components.schemas: every event type's payload and its ``data``, by name."""
    result: Schema = {}
    for name in EVENT_TYPES:
        event = schema_name(name)
        body = event_schema(name)
        result[event] = {
            **body,
            "description": EVENT_TYPES[name],
            "properties": {
                **body["properties"],
                "data": {"$ref": f"#/components/schemas/{event}Data"},
            },
        }
        result[f"{event}Data"] = _DATA[name]
    return result


def webhooks() -> Schema:
    """The OpenAPI 3.1 ``webhooks``: one POST per event type, its body the payload's
    schema in components (see components())."""
    missing = sorted(set(EVENT_TYPES) - set(_DATA))
    if missing:
        raise RuntimeError(f"no payload schema for {missing}: declare it in {__name__}")
    return {
        name: {
            "post": {
                "operationId": f"receive{_pascal(name)}",
                "summary": text,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{schema_name(name)}"}
                        }
                    },
                },
                "responses": {"2XX": {"description": "Any 2xx acknowledges it."}},
            }
        }
        for name, text in EVENT_TYPES.items()
    }


_DATA = _data_schemas()
