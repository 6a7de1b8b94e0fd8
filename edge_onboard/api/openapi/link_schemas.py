"""The OpenAPI document's onboarding-link bodies: creating a link, and the link itself."""

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
from edge_onboard.api.openapi.event_schemas import UPDATE_RESULT
from edge_onboard.core import i18n
from edge_onboard.core.validation import NON_BLANK_PATTERN
from edge_onboard.onboarding import prefill
from edge_onboard.onboarding.links import (
    CONNECTION_TYPES,
    LINK_TYPES,
    MAX_EXPIRES_IN,
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    MIN_EXPIRES_IN,
)

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


def link_schemas() -> Schema:
    """The onboarding links' bodies."""
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
                "type": _nullable(
                    {
                        "type": "string",
                        "enum": list(LINK_TYPES),
                        "description": "onboarding (default): a new signup. update: a number "
                        "(phoneNumberId) or a WABA without one (wabaId) of this organisation "
                        "and mode; its page shows only what it needs (reconnect, add a "
                        "number, verify), then its business profile.",
                    }
                ),
                "phoneNumberId": _nullable(
                    {
                        **_UUID,
                        "description": "An update link's number (our phone id); exactly one "
                        "of phoneNumberId and wabaId with type update, neither otherwise. "
                        "Another organisation's or mode's id is 404.",
                    }
                ),
                "wabaId": _nullable(
                    {
                        **_UUID,
                        "description": "An update link's WABA, for one without a number "
                        "(a WABA-only signup): the page adds one.",
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
                "type": {"type": "string", "enum": list(LINK_TYPES)},
                # An update link's result: what changed, in order, as it happens (null for
                # an onboarding link).
                "result": _nullable(_ref("UpdateLinkResult")),
            },
        },
        "UpdateLinkResult": UPDATE_RESULT,
        "OnboardingLinkResponse": _data(_ref("OnboardingLink")),
        "OnboardingLinkList": _listing(_ref("OnboardingLink")),
    }
