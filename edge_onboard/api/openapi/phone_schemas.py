"""The OpenAPI document's phone and WABA bodies: the views, health, verification and
sending a message."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _TIMESTAMP,
    _UUID,
    Schema,
    _data,
    _listing,
    _nullable,
    _ref,
)
from edge_onboard.storage import PhonePlatform, PhoneStatus


def phone_schemas() -> Schema:
    """The phones' and WABAs' bodies."""
    return {
        "Phone": {
            "type": "object",
            "required": [
                "id",
                "phoneNumber",
                "metaPhoneNumberId",
                "wabaId",
                "metaWabaId",
                "isPhoneRegistered",
                "status",
                "onboardingLinkId",
                "createdAt",
                "livemode",
            ],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "phoneNumber": _nullable({"type": "string", "pattern": r"^\+[1-9]\d{6,14}$"}),
                "metaPhoneNumberId": {"type": "string"},
                "wabaId": _UUID,
                "metaWabaId": {"type": "string"},
                "isPhoneRegistered": {"type": "boolean"},
                "status": {"type": "string", "enum": [s.value for s in PhoneStatus]},
                "platform": {"type": "string", "enum": [p.value for p in PhonePlatform]},
                "displayName": _nullable(
                    {"type": "string", "description": "The name Meta shows (verified_name)."}
                ),
                "nameStatus": _nullable(
                    {
                        "type": "string",
                        "description": "Meta's review of the display name (APPROVED, "
                        "PENDING_REVIEW, DECLINED, …), as Meta last said.",
                    }
                ),
                "qualityRating": _nullable(
                    {"type": "string", "description": "GREEN, YELLOW, RED or UNKNOWN."}
                ),
                "messagingLimit": _nullable(
                    {"type": "string", "description": "Meta's messaging limit tier, if told."}
                ),
                "coexistence": _nullable(
                    {
                        "type": "object",
                        "description": "WhatsApp Business app numbers: how each one-shot "
                        "sync went (requested, failed, or unknown when Meta did not answer).",
                        "properties": {
                            "stateSync": {"type": "string"},
                            "historySync": {"type": "string"},
                        },
                    }
                ),
                "onboardingLinkId": _nullable(_UUID),
                "createdAt": _TIMESTAMP,
                "livemode": {"type": "boolean", "description": "false for a test-mode object"},
            },
        },
        "Waba": {
            "type": "object",
            "required": [
                "id",
                "metaWabaId",
                "metaBusinessId",
                "phoneNumberIds",
                "createdAt",
                "livemode",
            ],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "metaWabaId": {"type": "string"},
                "metaBusinessId": _nullable({"type": "string"}),
                "phoneNumberIds": {"type": "array", "items": _UUID},
                "createdAt": _TIMESTAMP,
                "livemode": {"type": "boolean", "description": "false for a test-mode object"},
            },
        },
        "WabaResponse": _data(_ref("Waba")),
        "WabaList": _listing(_ref("Waba")),
        "VerificationCodeRequest": {
            "type": "object",
            "required": ["method"],
            "additionalProperties": False,
            "properties": {
                "method": {"type": "string", "enum": ["sms", "voice"]},
                "locale": _nullable(
                    {"type": "string", "pattern": r"^[a-z]{2,3}(_[A-Z]{2})?$", "maxLength": 6}
                ),
            },
        },
        "VerifyRequest": {
            "type": "object",
            "required": ["code"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
        },
        "SyncRequest": {"type": "object", "additionalProperties": False, "properties": {}},
        "PhoneResponse": _data(_ref("Phone")),
        "PhoneList": _listing(_ref("Phone")),
        "PhoneHealth": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "object",
                    "required": ["phoneNumberId", "checkedAt", "capabilities", "issues"],
                    "properties": {
                        "phoneNumberId": _UUID,
                        "checkedAt": _TIMESTAMP,
                        "status": _nullable({"type": "string"}),
                        "qualityRating": _nullable({"type": "string"}),
                        "platformType": _nullable({"type": "string"}),
                        "healthStatus": _nullable({"type": "string"}),
                        "webhookSubscribed": {"type": "boolean"},
                        "webhookUrl": _nullable({"type": "string"}),
                        "capabilities": {
                            "type": "object",
                            "required": ["canSendMessages", "canReceiveMessages"],
                            "properties": {
                                "canSendMessages": {"type": "boolean"},
                                "canReceiveMessages": {"type": "boolean"},
                            },
                        },
                        "issues": {"type": "array", "items": _ref("PhoneHealthIssue")},
                    },
                }
            },
        },
        "PhoneHealthIssue": {
            "type": "object",
            "description": "Something that stops or limits the number: Meta's health "
            "errors, and what the service finds itself.",
            "required": ["entityType", "code", "description", "possibleSolution"],
            "properties": {
                # Descriptions outside the anyOf, where generators look for them.
                "entityType": {
                    **_nullable({"type": "string"}),
                    "description": "What it is about: PHONE_NUMBER, WABA, BUSINESS, APP "
                    "(Meta may add others).",
                },
                "code": {
                    **_nullable({"type": ["string", "integer"]}),
                    "description": "Meta's numeric error code, or the service's own "
                    "(partner_removed, app_not_subscribed, not_registered).",
                },
                "description": _nullable({"type": "string"}),
                "possibleSolution": _nullable({"type": "string"}),
            },
        },
        "SendMessage": {
            "type": "object",
            "required": ["to", "type"],
            "additionalProperties": False,
            "properties": {
                "to": {
                    "type": "string",
                    "pattern": "^(\\+?[1-9][0-9]{6,14}|[A-Z]{2}\\.(ENT\\.)?[A-Za-z0-9]{1,128})$",
                    "description": "An E.164 number, or the customer's business-scoped user "
                    "id (userId in events) when Meta gives no number.",
                },
                "type": {"type": "string", "enum": ["text", "template"]},
                "text": {
                    "type": "object",
                    "required": ["body"],
                    "additionalProperties": False,
                    "properties": {
                        "body": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "previewUrl": {"type": "boolean"},
                    },
                },
                "template": {
                    "type": "object",
                    "required": ["name", "language"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z0-9_]{1,512}$"},
                        "language": {
                            "type": "object",
                            "required": ["code"],
                            "additionalProperties": False,
                            "properties": {
                                "code": {"type": "string", "pattern": "^[a-z]{2,3}(_[A-Z]{2})?$"}
                            },
                        },
                        "components": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "text"}}},
                    "then": {"required": ["text"], "not": {"required": ["template"]}},
                },
                {
                    "if": {"properties": {"type": {"const": "template"}}},
                    "then": {"required": ["template"], "not": {"required": ["text"]}},
                },
            ],
        },
        "SentMessage": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "object",
                    "required": ["metaMessageId", "phoneNumberId", "to", "type", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "metaMessageId": {"type": "string"},
                        "phoneNumberId": _UUID,
                        "to": {"type": "string"},
                        "type": {"type": "string", "enum": ["text", "template"]},
                        "status": {"const": "accepted"},
                    },
                }
            },
        },
    }
