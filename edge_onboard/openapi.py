"""The OpenAPI 3.1 description of the public API, served at ``/openapi.json``.

Written by hand so the schema states every validation rule; the test suite runs
schemathesis over it against the live app, which keeps both honest.
"""

from __future__ import annotations

from typing import Any

from edge_onboard import event_schemas, prefill
from edge_onboard.completion import FINISH_EVENTS
from edge_onboard.events import EVENT_TYPES
from edge_onboard.links import (
    CONNECTION_TYPES,
    MAX_EXPIRES_IN,
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    MIN_EXPIRES_IN,
)
from edge_onboard.reports import REASONS
from edge_onboard.storage import PhonePlatform, PhoneStatus
from edge_onboard.urls import MAX_URL_LENGTH

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _data(schema: Schema) -> Schema:
    """The envelope of one object: ``{"data": {...}}``."""
    return {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {"data": schema},
    }


def _listing(items: Schema) -> Schema:
    """The envelope of a page: ``{"data": [...], "pagination": {...}}``."""
    return {
        "type": "object",
        "required": ["data", "pagination"],
        "additionalProperties": False,
        "properties": {"data": {"type": "array", "items": items}, "pagination": _ref("Pagination")},
    }


def _html(description: str) -> Schema:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


_TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
}
_UUID: Schema = {"type": "string", "format": "uuid"}
_URL: Schema = {
    "type": "string",
    "format": "uri",
    "maxLength": MAX_URL_LENGTH,
    "pattern": r"^https?://[^\s/@]+(/\S*)?$",
}
_EVENT: Schema = {"type": "string", "enum": list(EVENT_TYPES)}
_COMMON_ERRORS: Schema = {
    "401": _error("Missing, malformed or revoked API key."),
    "429": _error("Too many requests."),
    "default": _error("Unexpected error (api_error)."),
}
_VERIFICATION_ERRORS: Schema = {
    "400": _error("Invalid body."),
    "404": _error("No such phone in this organisation."),
    "409": _error("The number is not pending verification, or Idempotency-Key in use."),
    "415": _error("Body is not JSON."),
    "422": _error("Meta refused: verification_code_incorrect, or meta_rejected."),
    "502": _error("Meta unreachable."),
    "503": _error("No Meta app configured."),
    **_COMMON_ERRORS,
}


def _schemas() -> Schema:
    metadata: Schema = {
        "type": "object",
        "maxProperties": MAX_METADATA_PAIRS,
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_METADATA_KEY,
            "pattern": prefill.KEY_PATTERN,
        },
        "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["type", "code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {
                            "type": "string",
                            "enum": [
                                "invalid_request_error",
                                "authentication_error",
                                "rate_limit_error",
                                "api_error",
                            ],
                        },
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "param": {"type": "string"},
                    },
                }
            },
        },
        "Pagination": {
            "type": "object",
            "required": ["page", "limit", "total", "hasMore"],
            "additionalProperties": False,
            "properties": {
                "page": {"type": "integer", "minimum": 1},
                "limit": {"type": "integer", "minimum": 1},
                "total": {"type": "integer", "minimum": 0},
                "hasMore": {"type": "boolean"},
            },
        },
        "LinkError": {
            "type": "object",
            "required": ["code", "message", "at"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "from the service's catalog"},
                "at": _TIMESTAMP,
                "metaSessionId": {"type": "string"},
                "metaStep": {"type": "string", "description": "Meta's current_step"},
                "metaErrorCode": {"type": "string"},
            },
        },
        "OnboardingLinkCreate": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                "externalId": _nullable({"type": "string", "minLength": 1, "maxLength": 255}),
                "redirectUrl": _nullable(
                    {
                        **_URL,
                        "description": "https; http only for localhost",
                        "pattern": r"^(https://[^\s/@]+|http://(localhost|127\.0\.0\.1|\[::1\])"
                        r"(:\d+)?)(/\S*)?$",
                    }
                ),
                "webhookUrl": _nullable(
                    {
                        **_URL,
                        "description": "https to a public host (http and private hosts only "
                        "with EDGE_WEBHOOK_ALLOW_PRIVATE=1); requires webhookEvents",
                    }
                ),
                "webhookSecret": _nullable(
                    {
                        "type": "string",
                        "minLength": 16,
                        "maxLength": 256,
                        "description": "requires webhookUrl; generated (whsec_...) if omitted",
                    }
                ),
                "webhookEvents": _nullable(
                    {
                        "type": "array",
                        "items": _EVENT,
                        "minItems": 1,
                        "uniqueItems": True,
                        "description": "required with webhookUrl, rejected without it",
                    }
                ),
                "expiresInSeconds": _nullable(
                    {"type": "integer", "minimum": MIN_EXPIRES_IN, "maximum": MAX_EXPIRES_IN}
                ),
                "metadata": _nullable(metadata),
                "prefill": _nullable(prefill.schema()),
                "locale": _nullable({"type": "string", "pattern": r"^[a-z]{2,3}(_[A-Z]{2})?$"}),
                "connectionTypes": _nullable(
                    {
                        "type": "array",
                        "items": {"type": "string", "enum": list(CONNECTION_TYPES)},
                        "minItems": 1,
                        "uniqueItems": True,
                        "contains": {"const": "cloud_api"},
                        "description": "Which numbers are welcome: cloud_api (default) and "
                        "business_app (WhatsApp Business app numbers, coexistence).",
                    }
                ),
            },
            # null means "not given", so the pairing rules are written on string/array values.
            "allOf": [
                {
                    "if": {
                        "required": ["webhookUrl"],
                        "properties": {"webhookUrl": {"type": "string"}},
                    },
                    "then": {
                        "required": ["webhookEvents"],
                        "properties": {"webhookEvents": {"type": "array"}},
                    },
                    "else": {
                        "properties": {
                            "webhookEvents": {"type": "null"},
                            "webhookSecret": {"type": "null"},
                        }
                    },
                },
            ],
        },
        "OnboardingLink": {
            "type": "object",
            "required": [
                "id",
                "name",
                "status",
                "externalId",
                "redirectUrl",
                "hostedUrl",
                "phoneNumberId",
                "phoneNumber",
                "wabaId",
                "isPhoneRegistered",
                "webhookUrl",
                "createdAt",
                "completedAt",
                "expiresAt",
                "metadata",
                "lastError",
            ],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "completed", "expired"]},
                "externalId": _nullable({"type": "string"}),
                "redirectUrl": _nullable({"type": "string"}),
                "hostedUrl": {"type": "string"},
                "phoneNumberId": _nullable(_UUID),
                "phoneNumber": _nullable({"type": "string", "pattern": r"^\+[1-9]\d{6,14}$"}),
                "wabaId": _nullable(_UUID),
                "isPhoneRegistered": _nullable({"type": "boolean"}),
                "webhookUrl": _nullable({"type": "string"}),
                "webhookSecret": _nullable({"type": "string"}),
                "webhookEvents": _nullable({"type": "array", "items": _EVENT}),
                "outgoingWebhookId": _nullable(_UUID),
                "createdAt": _TIMESTAMP,
                "completedAt": _nullable(_TIMESTAMP),
                "expiresAt": _TIMESTAMP,
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                "lastError": _nullable(_ref("LinkError")),
            },
        },
        "OnboardingLinkResponse": _data(_ref("OnboardingLink")),
        "OnboardingLinkList": _listing(_ref("OnboardingLink")),
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
            },
        },
        "Waba": {
            "type": "object",
            "required": ["id", "metaWabaId", "metaBusinessId", "phoneNumberIds", "createdAt"],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "metaWabaId": {"type": "string"},
                "metaBusinessId": _nullable({"type": "string"}),
                "phoneNumberIds": {"type": "array", "items": _UUID},
                "createdAt": _TIMESTAMP,
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
        "SessionReport": {
            "type": "object",
            "required": ["event", "wabaId"],
            "additionalProperties": False,
            "properties": {
                "event": {"type": "string", "enum": sorted(FINISH_EVENTS)},
                "wabaId": {"type": "string", "pattern": "^[0-9]{1,32}$"},
                "phoneNumberId": _nullable({"type": "string", "pattern": "^[0-9]{1,32}$"}),
                "businessId": _nullable({"type": "string", "pattern": "^[0-9]{1,32}$"}),
                "sessionId": _nullable({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}),
            },
        },
        "SessionRecorded": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["recorded"]}},
        },
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
                        "issues": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "entityType",
                                    "code",
                                    "description",
                                    "possibleSolution",
                                ],
                            },
                        },
                    },
                }
            },
        },
        "CallbackRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["code", "wabaId"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "wabaId": {"type": "string", "pattern": "^[0-9]{1,32}$"},
                        "phoneNumberId": _nullable({"type": "string", "pattern": "^[0-9]{1,32}$"}),
                        "businessId": _nullable({"type": "string", "pattern": "^[0-9]{1,32}$"}),
                        "event": _nullable(
                            {
                                "type": "string",
                                "enum": sorted(FINISH_EVENTS),
                            }
                        ),
                    },
                },
                {
                    "type": "object",
                    "required": ["error"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {
                            "type": "object",
                            "additionalProperties": False,
                            "description": "Why the signup did not finish. Nothing here is "
                            "shown to anyone as words: the answer, lastError.message and the "
                            "redirect's error= come from the service's catalog.",
                            "properties": {
                                "code": _nullable(
                                    {
                                        "oneOf": [
                                            {"type": "string", "enum": sorted(REASONS)},
                                            {"type": "string", "pattern": "^[0-9]{1,16}$"},
                                            {"type": "integer", "minimum": 0},
                                        ],
                                        "description": "a reason, or Meta's numeric error "
                                        "code (meaning meta_signup_error); default "
                                        "signup_cancelled",
                                    }
                                ),
                                "step": _nullable(
                                    {"type": "string", "pattern": "^[A-Z0-9_]{1,64}$"}
                                ),
                                "metaErrorCode": _nullable(
                                    {"type": "string", "pattern": "^[0-9]{1,16}$"}
                                ),
                                "sessionId": _nullable(
                                    {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}
                                ),
                                "message": _nullable(
                                    {
                                        "type": "string",
                                        "maxLength": 500,
                                        "description": "accepted and ignored",
                                    }
                                ),
                            },
                        }
                    },
                },
            ]
        },
        "CallbackResponse": {
            "type": "object",
            "required": ["status", "redirectUrl"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "string", "enum": ["success", "error"]},
                "redirectUrl": _nullable({"type": "string"}),
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "param": {"type": "string"},
                    },
                },
            },
        },
        "OutgoingWebhookCreate": {
            "type": "object",
            "required": ["url", "events"],
            "additionalProperties": False,
            "properties": {
                "url": {**_URL, "description": "https to a public host"},
                "events": {"type": "array", "items": _EVENT, "minItems": 1, "uniqueItems": True},
                "wabaId": _nullable({**_UUID, "description": "only this WABA's events"}),
                "secret": _nullable({"type": "string", "minLength": 16, "maxLength": 256}),
            },
        },
        "OutgoingWebhookUpdate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {**_URL},
                "events": {"type": "array", "items": _EVENT, "minItems": 1, "uniqueItems": True},
                "wabaId": _nullable(_UUID),
                "status": {"type": "string", "enum": ["active", "disabled"]},
            },
        },
        "OutgoingWebhook": {
            "type": "object",
            "required": ["id", "url", "events", "wabaId", "status", "createdAt"],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "url": {"type": "string"},
                "events": {"type": "array", "items": _EVENT},
                "wabaId": _nullable(_UUID),
                "status": {"type": "string", "enum": ["active", "disabled"]},
                "createdAt": _TIMESTAMP,
                "secret": {"type": "string", "description": "only in the create response"},
            },
        },
        "OutgoingWebhookResponse": _data(_ref("OutgoingWebhook")),
        "OutgoingWebhookList": _listing(_ref("OutgoingWebhook")),
        "WebhookDelivery": {
            "type": "object",
            "required": [
                "id",
                "webhookId",
                "eventId",
                "event",
                "status",
                "attempts",
                "nextAttemptAt",
                "lastAttemptAt",
                "lastStatusCode",
                "lastError",
                "createdAt",
                "attemptLog",
            ],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "webhookId": _UUID,
                "eventId": {"type": "string"},
                "event": _EVENT,
                "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
                "attempts": {"type": "integer", "minimum": 0},
                "nextAttemptAt": _nullable(_TIMESTAMP),
                "lastAttemptAt": _nullable(_TIMESTAMP),
                "lastStatusCode": _nullable({"type": "integer"}),
                "lastError": _nullable({"type": "string"}),
                "createdAt": _TIMESTAMP,
                "attemptLog": {"type": "array", "items": {"type": "object"}},
            },
        },
        "WebhookDeliveryResponse": _data(_ref("WebhookDelivery")),
        "WebhookDeliveryList": _listing(_ref("WebhookDelivery")),
        "Deleted": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "object",
                    "required": ["id", "deleted"],
                    "additionalProperties": False,
                    "properties": {"id": _UUID, "deleted": {"const": True}},
                }
            },
        },
        "SendMessage": {
            "type": "object",
            "required": ["to", "type"],
            "additionalProperties": False,
            "properties": {
                "to": {"type": "string", "pattern": "^\\+?[1-9][0-9]{6,14}$"},
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
        "Event": {
            "type": "object",
            "required": ["id", "event", "timestamp", "organizationId", "data"],
            "properties": {
                "id": {"type": "string", "description": "also the webhook-id header"},
                "event": _EVENT,
                "timestamp": _TIMESTAMP,
                "organizationId": _UUID,
                "data": {"type": "object"},
            },
        },
        "EventTypeList": {
            "type": "object",
            "required": ["data", "pagination"],
            "properties": {
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "description"],
                        "properties": {"type": _EVENT, "description": {"type": "string"}},
                    },
                },
                "pagination": _ref("Pagination"),
            },
        },
    }


def build_openapi(public_url: str) -> Schema:
    link_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The link's id (a UUID); anything else is 404.",
    }
    phone_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The phone's id (a UUID); anything else is 404.",
    }
    webhook_id = {**phone_id, "description": "The webhook's id (a UUID)."}
    delivery_id = {**phone_id, "description": "The delivery's id (a UUID)."}
    waba_id = {**phone_id, "description": "The WABA's id (a UUID)."}
    paging = [  # every list: edge_onboard/api.py _paging
        {
            "name": "page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1},
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
    ]
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": r"^[\x20-\x7e]+$",
        },
        "description": "Replays the stored response for 24 h; another body → 409.",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edge-onboard",
            "version": "1",
            "description": "Hosted WhatsApp Embedded Signup onboarding links.",
        },
        "servers": [{"url": public_url}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "sk_org_..."}
            },
            "schemas": _schemas(),
        },
        "webhooks": event_schemas.webhooks(),
        "paths": {
            "/v1/onboarding-links": {
                "post": {
                    "operationId": "createOnboardingLink",
                    "summary": "Create an onboarding link",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("OnboardingLinkCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("OnboardingLinkResponse"), "The new link."),
                        "400": _error("Invalid parameters or JSON."),
                        "409": _error("Idempotency-Key reused with another body, or in use."),
                        "413": _error("Body over 1 MB."),
                        "415": _error("Body is not JSON."),
                        **_COMMON_ERRORS,
                    },
                },
                "get": {
                    "operationId": "listOnboardingLinks",
                    "summary": "List onboarding links, newest first",
                    "parameters": [
                        *paging,
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["pending", "completed", "expired"],
                            },
                        },
                        {
                            "name": "externalId",
                            "in": "query",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("OnboardingLinkList"), "A page of links."),
                        "400": _error("Invalid query parameter."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/onboarding-links/{id}": {
                "parameters": [link_id],
                "get": {
                    "operationId": "getOnboardingLink",
                    "summary": "Retrieve an onboarding link",
                    "responses": {
                        "200": _json(_ref("OnboardingLinkResponse"), "The link."),
                        "404": _error("No such link in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteOnboardingLink",
                    "summary": "Delete a pending onboarding link",
                    "responses": {
                        "200": _json(_ref("Deleted"), "Deleted."),
                        "404": _error("No such link in this organisation."),
                        "409": _error("The link is not pending (link_not_pending)."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/phones/{id}/messages": {
                "parameters": [phone_id],
                "post": {
                    "operationId": "sendMessage",
                    "summary": "Send a text or template message through a connected number",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SendMessage")}},
                    },
                    "responses": {
                        "201": _json(_ref("SentMessage"), "Meta accepted it."),
                        "400": _error("Invalid parameters or JSON."),
                        "404": _error("No such phone in this organisation."),
                        "409": _error("Not registered (phone_not_registered), or key in use."),
                        "413": _error("Body over 1 MB."),
                        "415": _error("Body is not JSON."),
                        "422": _error("Meta refused the message (meta_rejected)."),
                        "502": _error("Meta unreachable: retry with the same Idempotency-Key."),
                        "503": _error("No Meta app configured."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/outgoing-webhooks": {
                "post": {
                    "operationId": "createOutgoingWebhook",
                    "summary": "Create an outgoing webhook (the secret is shown once)",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("OutgoingWebhookCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("OutgoingWebhookResponse"), "The new webhook."),
                        "400": _error("Invalid parameters or JSON."),
                        "404": _error("No such WABA (wabaId) in this organisation."),
                        "409": _error("Idempotency-Key reused with another body, or in use."),
                        "413": _error("Body over 1 MB."),
                        "415": _error("Body is not JSON."),
                        **_COMMON_ERRORS,
                    },
                },
                "get": {
                    "operationId": "listOutgoingWebhooks",
                    "summary": "List outgoing webhooks, newest first",
                    "parameters": paging,
                    "responses": {
                        "200": _json(_ref("OutgoingWebhookList"), "A page of webhooks."),
                        "400": _error("Invalid query parameter."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/outgoing-webhooks/{id}": {
                "parameters": [webhook_id],
                "get": {
                    "operationId": "getOutgoingWebhook",
                    "summary": "Retrieve an outgoing webhook",
                    "responses": {
                        "200": _json(_ref("OutgoingWebhookResponse"), "The webhook."),
                        "404": _error("No such webhook in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
                "patch": {
                    "operationId": "updateOutgoingWebhook",
                    "summary": "Change url, events, scope or status (re-enable a disabled one)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("OutgoingWebhookUpdate")}},
                    },
                    "responses": {
                        "200": _json(_ref("OutgoingWebhookResponse"), "The updated webhook."),
                        "400": _error("Invalid parameters or JSON."),
                        "404": _error("No such webhook in this organisation."),
                        "413": _error("Body over 1 MB."),
                        "415": _error("Body is not JSON."),
                        **_COMMON_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteOutgoingWebhook",
                    "summary": "Delete an outgoing webhook",
                    "responses": {
                        "200": _json(_ref("Deleted"), "Deleted."),
                        "404": _error("No such webhook in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/outgoing-webhooks/{id}/deliveries": {
                "parameters": [webhook_id],
                "get": {
                    "operationId": "listWebhookDeliveries",
                    "summary": "The webhook's deliveries and their attempts, newest first",
                    "parameters": paging,
                    "responses": {
                        "200": _json(_ref("WebhookDeliveryList"), "A page of deliveries."),
                        "400": _error("Invalid query parameter."),
                        "404": _error("No such webhook in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/webhook-deliveries/{id}/retry": {
                "parameters": [delivery_id],
                "post": {
                    "operationId": "retryWebhookDelivery",
                    "summary": "Deliver again now",
                    "responses": {
                        "202": _json(_ref("WebhookDeliveryResponse"), "Queued."),
                        "404": _error("No such delivery in this organisation."),
                        "409": _error("The endpoint is disabled (webhook_disabled)."),
                        "413": _error("Body over 1 MB."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/event-types": {
                "get": {
                    "operationId": "listEventTypes",
                    "summary": "The catalog of webhook event types",
                    "responses": {
                        "200": _json(_ref("EventTypeList"), "Every event type."),
                        **_COMMON_ERRORS,
                    },
                }
            },
            "/v1/phones": {
                "get": {
                    "operationId": "listPhones",
                    "summary": "List connected phone numbers, newest first",
                    "parameters": paging,
                    "responses": {
                        "200": _json(_ref("PhoneList"), "A page of phones."),
                        "400": _error("Invalid query parameter."),
                        **_COMMON_ERRORS,
                    },
                }
            },
            "/v1/phones/{id}": {
                "parameters": [phone_id],
                "get": {
                    "operationId": "getPhone",
                    "summary": "Retrieve a connected phone number",
                    "responses": {
                        "200": _json(_ref("PhoneResponse"), "The phone."),
                        "404": _error("No such phone in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/phones/{id}/verification-code": {
                "parameters": [phone_id],
                "post": {
                    "operationId": "requestVerificationCode",
                    "summary": "Send a verification code to a number that finished unverified",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref("VerificationCodeRequest")}
                        },
                    },
                    "responses": {
                        "200": _json(_ref("PhoneResponse"), "The code is on its way."),
                        **_VERIFICATION_ERRORS,
                    },
                },
            },
            "/v1/phones/{id}/verify": {
                "parameters": [phone_id],
                "post": {
                    "operationId": "verifyPhone",
                    "summary": "Verify the number with its code, then register it",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("VerifyRequest")}},
                    },
                    "responses": {
                        "200": _json(
                            _ref("PhoneResponse"),
                            "Verified; status connected (or registration_failed).",
                        ),
                        **_VERIFICATION_ERRORS,
                    },
                },
            },
            "/v1/wabas": {
                "get": {
                    "operationId": "listWabas",
                    "summary": "List connected WhatsApp Business Accounts, newest first",
                    "parameters": paging,
                    "responses": {
                        "200": _json(_ref("WabaList"), "A page of WABAs."),
                        "400": _error("Invalid query parameter."),
                        **_COMMON_ERRORS,
                    },
                }
            },
            "/v1/wabas/{id}": {
                "parameters": [waba_id],
                "get": {
                    "operationId": "getWaba",
                    "summary": "Retrieve a WhatsApp Business Account",
                    "responses": {
                        "200": _json(_ref("WabaResponse"), "The WABA."),
                        "404": _error("No such WABA in this organisation."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/wabas/{id}/phones/sync": {
                "parameters": [waba_id],
                "post": {
                    "operationId": "syncWabaPhones",
                    "summary": "Connect the numbers added to the WABA at Meta since",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("SyncRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("WabaResponse"), "The WABA with its numbers."),
                        "400": _error("Invalid body."),
                        "404": _error("No such WABA in this organisation."),
                        "409": _error("Idempotency-Key reused with another body, or in use."),
                        "415": _error("Body is not JSON."),
                        "422": _error("Meta refused a step."),
                        "502": _error("Meta unreachable."),
                        "503": _error("No Meta app configured."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/phones/{id}/health": {
                "parameters": [phone_id],
                "get": {
                    "operationId": "getPhoneHealth",
                    "summary": "Live health of a phone number from Meta (cached 30 s)",
                    "responses": {
                        "200": _json(_ref("PhoneHealth"), "Health and capabilities."),
                        "404": _error("No such phone in this organisation."),
                        "502": _error("Meta unreachable or refused the check."),
                        "503": _error("No Meta app configured."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/phones/{id}/media/{mediaId}": {
                "parameters": [
                    phone_id,
                    {
                        "name": "mediaId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "Meta's media id (media.id in a message event); "
                        "anything but digits is 404.",
                    },
                ],
                "get": {
                    "operationId": "getPhoneMedia",
                    "summary": "A received media file, streamed from Meta (up to 100 MB)",
                    "responses": {
                        "200": {
                            "description": "The file, with Meta's content type and length.",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "404": _error("No such phone in this organisation, or no such media."),
                        "413": _error("The file is over 100 MB (media_too_large)."),
                        "502": _error("Meta unreachable, or its download failed or left Meta."),
                        "503": _error("No Meta app configured."),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/signup/{id}": {
                "parameters": [link_id],
                "get": {
                    "operationId": "hostedSignupPage",
                    "security": [],
                    "summary": "The hosted signup page (HTML) an end-user opens",
                    "responses": {
                        "200": _html("The page, or the 'already connected' page."),
                        "404": _html("Unknown link."),
                        "410": _html("Expired or deleted link."),
                    },
                },
            },
            "/signup/{id}/session": {
                "parameters": [link_id],
                "post": {
                    "operationId": "hostedSignupSession",
                    "security": [],
                    "summary": "The hosted page reports Meta's session message, before the code",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SessionReport")}},
                    },
                    "responses": {
                        "202": _json(_ref("SessionRecorded"), "Kept on the pending link."),
                        **{
                            code: _json(_ref("CallbackResponse"), text)
                            for code, text in {
                                "400": "Malformed report.",
                                "403": "Cross-origin request.",
                                "404": "Unknown link.",
                                "408": "The body did not arrive within 10 s.",
                                "409": "Already completed.",
                                "410": "Expired or deleted link.",
                                "413": "Body over 1 MB.",
                                "415": "Not JSON.",
                                "429": "Too many requests from this address.",
                            }.items()
                        },
                    },
                },
            },
            "/signup/{id}/callback": {
                "parameters": [link_id],
                "post": {
                    "operationId": "hostedSignupCallback",
                    "security": [],
                    "summary": "The hosted page reports the Embedded Signup result",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CallbackRequest")}},
                    },
                    "responses": {
                        code: _json(_ref("CallbackResponse"), text)
                        for code, text in {
                            "200": "Completed; redirect the end-user.",
                            "400": "Malformed report.",
                            "403": "Cross-origin request.",
                            "404": "Unknown link.",
                            "409": "Already completed, or being completed.",
                            "410": "Expired or deleted link.",
                            "413": "Body over 1 MB.",
                            "415": "Not JSON.",
                            "408": "The body did not arrive within 10 s.",
                            "422": "Signup cancelled, or Meta refused it; the link stays pending.",
                            "429": "Too many requests from this address; see Retry-After.",
                            "502": "Meta unreachable; the link stays pending.",
                            "503": "No Meta app configured.",
                        }.items()
                    },
                },
            },
            "/webhook/phone/{id}": {
                "parameters": [phone_id],
                "post": {
                    "operationId": "phoneWebhook",
                    "security": [],
                    "summary": "Meta's deliveries (messages, statuses), signed X-Hub-Signature-256",
                    "parameters": [
                        {
                            "name": "X-Hub-Signature-256",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {}}},
                    },
                    "responses": {
                        code: {
                            "description": text,
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                        for code, text in {
                            "200": "Received (also when nothing in it was usable).",
                            "401": "Missing or wrong signature.",
                            "404": "Malformed phone id.",
                            "413": "Body over 1 MB.",
                        }.items()
                    },
                },
                "get": {
                    "operationId": "phoneWebhookHandshake",
                    "security": [],
                    "summary": "Meta's webhook verification handshake",
                    "parameters": [
                        {"name": "hub.mode", "in": "query", "schema": {"type": "string"}},
                        {"name": "hub.verify_token", "in": "query", "schema": {"type": "string"}},
                        {"name": "hub.challenge", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "The challenge, echoed.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "403": {
                            "description": "Wrong verify token.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "404": {
                            "description": "Malformed phone id.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                    },
                },
            },
            "/static/{name}": {
                "get": {
                    "operationId": "staticAsset",
                    "security": [],
                    "summary": "The hosted page's script and stylesheet (ETag, cached)",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The asset.",
                            "content": {
                                "application/javascript": {"schema": {"type": "string"}},
                                "text/css": {"schema": {"type": "string"}},
                            },
                        },
                        "304": {"description": "Not modified."},
                        "404": {
                            "description": "No such asset.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "security": [],
                    "summary": "Liveness",
                    "responses": {"200": _json({"type": "object"}, "Alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "security": [],
                    "summary": "Readiness: storage and Redis reachable",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "A dependency is down."),
                    },
                }
            },
        },
    }
