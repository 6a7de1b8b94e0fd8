"""The OpenAPI document's components: the schema of every body."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _EVENT,
    _TIMESTAMP,
    _URL,
    _UUID,
    Schema,
    _data,
    _listing,
    _nullable,
    _ref,
)
from edge_onboard.core import i18n
from edge_onboard.core.validation import NON_BLANK_PATTERN
from edge_onboard.onboarding import prefill
from edge_onboard.onboarding.completion import FINISH_EVENTS
from edge_onboard.onboarding.links import (
    CONNECTION_TYPES,
    MAX_EXPIRES_IN,
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    MIN_EXPIRES_IN,
)
from edge_onboard.onboarding.reports import REASONS
from edge_onboard.storage import PhonePlatform, PhoneStatus

_LOCALE: Schema = {
    "type": "string",
    "enum": list(i18n.SUPPORTED),
    "description": "The hosted page's language (and Meta's popup's); without it the page "
    "follows the browser's Accept-Language, else English.",
}

# Where the hosted page sends the end-user (redirectUrl, refreshUrl): the customer's page.
_RETURN_URL: Schema = {
    **_URL,
    "description": "https; http only for localhost",
    "pattern": r"^(https://[^\s/@]+|http://(localhost|127\.0\.0\.1|\[::1\]))(:\d+)?(/\S*)?$",
}


# A page the end-user is sent to: https, or plain http on localhost (development).
_LOCAL_OR_HTTPS: Schema = {
    **_URL,
    "description": "https; http only for localhost",
    "pattern": r"^(https://[^\s/@]+|http://(localhost|127\.0\.0\.1|\[::1\]))(:\d+)?(/\S*)?$",
}


def schemas() -> Schema:
    """components.schemas: every request and response body."""
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
            "required": [
                "page",
                "limit",
                "total",
                "totalIsEstimate",
                "hasMore",
                "startingAfter",
                "endingBefore",
            ],
            "additionalProperties": False,
            "properties": {
                "page": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "null when the request gave a cursor",
                },
                "limit": {"type": "integer", "minimum": 1},
                "total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "exact up to 1000; past that 1000 with totalIsEstimate",
                },
                "totalIsEstimate": {
                    "type": "boolean",
                    "description": "true: the list holds more than total (counting stopped)",
                },
                "hasMore": {
                    "type": "boolean",
                    "description": "more objects lie beyond this page in its direction "
                    "(older; newer for endingBefore)",
                },
                "startingAfter": {
                    "type": ["string", "null"],
                    "description": "the last item's id: pass it as startingAfter for the next page",
                },
                "endingBefore": {
                    "type": ["string", "null"],
                    "description": "the first item's id: pass it as endingBefore for the "
                    "previous page",
                },
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
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "pattern": NON_BLANK_PATTERN,
                },
                "externalId": _nullable({"type": "string", "minLength": 1, "maxLength": 255}),
                "redirectUrl": _nullable(_RETURN_URL),
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
                "locale": _nullable(_LOCALE),
                "displayName": _nullable(
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "pattern": NON_BLANK_PATTERN,
                        "description": "The name the hosted page shows instead of the "
                        "organization's displayName.",
                    }
                ),
                "refreshUrl": _nullable(
                    {
                        **_RETURN_URL,
                        "description": "Where the hosted page sends an end-user whose link "
                        "expired or was deleted (?onboarding_link_id=…&external_id=…"
                        "&reason=expired|deleted), to mint a new link; https, http only "
                        "for localhost.",
                    }
                ),
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
            # One rule, so no allOf around it: openapi-generator's Python client fails on
            # this allOf (the generators ignore if/then/else; validators apply them).
            "if": {
                "required": ["webhookUrl"],
                "properties": {"webhookUrl": {"type": "string"}},
            },
            "then": {
                "required": ["webhookEvents"],
                "properties": {"webhookEvents": {"type": "array", "items": _EVENT}},
            },
            "else": {
                "properties": {
                    "webhookEvents": {"type": "null"},
                    "webhookSecret": {"type": "null"},
                }
            },
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
                "livemode",
            ],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "completed", "expired"]},
                "externalId": _nullable({"type": "string"}),
                "redirectUrl": _nullable({"type": "string"}),
                "refreshUrl": _nullable({"type": "string"}),
                "displayName": _nullable({"type": "string"}),
                "locale": _nullable(_LOCALE),
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
                "completedVia": _nullable({"type": "string", "enum": ["callback", "recovery"]}),
                "livemode": {"type": "boolean", "description": "false for a test-mode object"},
                "recoverable": {
                    "type": "boolean",
                    "description": "Meta reported the signup finished, but recovering it "
                    "needs EDGE_META_SYSTEM_USER_TOKEN: POST .../recover finishes it.",
                },
                "recovery": _nullable(
                    {
                        "type": "object",
                        "properties": {
                            "metaWabaId": {"type": "string"},
                            "metaBusinessId": _nullable({"type": "string"}),
                            "reason": {"type": "string"},
                        },
                    }
                ),
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
                        # Named: openapi-python-client cannot model it inline.
                        "error": _ref("SignupFailure")
                    },
                },
            ]
        },
        "SignupFailure": {
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
                "step": _nullable({"type": "string", "pattern": "^[A-Z0-9_]{1,64}$"}),
                "metaErrorCode": _nullable({"type": "string", "pattern": "^[0-9]{1,16}$"}),
                "sessionId": _nullable({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}),
                "message": _nullable(
                    {
                        "type": "string",
                        "maxLength": 500,
                        "description": "accepted and ignored",
                    }
                ),
            },
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
            "required": ["id", "url", "events", "wabaId", "status", "createdAt", "livemode"],
            "additionalProperties": False,
            "properties": {
                "id": _UUID,
                "url": {"type": "string"},
                "events": {"type": "array", "items": _EVENT},
                "wabaId": _nullable(_UUID),
                "status": {"type": "string", "enum": ["active", "disabled"]},
                "createdAt": _TIMESTAMP,
                "livemode": {"type": "boolean", "description": "false for a test-mode object"},
                "secret": {
                    "type": "string",
                    "description": "only in the create and rotate-secret responses",
                },
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
                "livemode",
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
                "livemode": {"type": "boolean", "description": "false for a test-mode object"},
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
            "required": ["id", "event", "timestamp", "organizationId", "livemode", "data"],
            "properties": {
                "id": {"type": "string", "description": "also the webhook-id header"},
                "event": _EVENT,
                "timestamp": _TIMESTAMP,
                "organizationId": _UUID,
                "livemode": {"type": "boolean"},
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
