"""The OpenAPI document's test helpers (edge_onboard/api/test_helpers.py): test keys only,
under their own tag."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _COMMON_ERRORS,
    IDEMPOTENCY,
    LINK_ID,
    PHONE_ID,
    Schema,
    _data,
    _error,
    _json,
    _ref,
)
from edge_onboard.meta.sandbox import samples

TAG = "Test helpers"
TAG_DESCRIPTION = (
    "Test keys only (a live key is 400 test_mode_only): cause what end-users and Meta "
    "would, through the built-in fake of Meta, so the real paths run: complete a test "
    "link, make a test phone receive any Meta webhook, a message of any type or a status."
)
_WA_ID: Schema = {"type": "string", "pattern": r"^[0-9]{1,20}$"}
_META_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 256}
_ERRORS: Schema = {
    "400": _error("Invalid body, or a live key (test_mode_only)."),
    "404": _error("No such test object in this organisation."),
    "409": _error("Idempotency-Key in use, or the fake Meta no longer knows this phone."),
    "415": _error("Body is not JSON."),
    **_COMMON_ERRORS,
}


def test_helper_schemas() -> Schema:
    return {
        "TestLinkCompletion": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "scenario": {
                    "type": "string",
                    "enum": list(samples.COMPLETE_SCENARIOS),
                    "default": "ok",
                    "description": "How the fake Meta's signup ends (ok: a verified number "
                    "on the Cloud API; unverified: it still needs its code; only_waba: a "
                    "WABA with no number; business_app: coexistence; ...).",
                }
            },
        },
        "TestWebhook": {
            "type": "object",
            "required": ["field", "value"],
            "additionalProperties": False,
            "properties": {
                "field": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "Meta's webhook field (messages, history, "
                    "smb_message_echoes, account_update, message_template_status_update, "
                    "...). Number-scoped fields go to the number's callback URL with "
                    "`metadata` naming it; others to the app's callback, on its WABA.",
                },
                "value": {"type": "object", "description": "Meta's change value, as sent."},
            },
        },
        "TestMessage": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": list(samples.MESSAGE_TYPES), "default": "text"},
                "from": _WA_ID,
                "text": {"type": "string", "maxLength": 4096},
                "messageId": {
                    **_META_ID,
                    "description": "The message a reaction, reply, edit or revoke refers to.",
                },
            },
        },
        "TestStatus": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "status": {
                    "type": "string",
                    "enum": list(samples.STATUSES),
                    "default": "delivered",
                },
                "messageId": {**_META_ID, "description": "Meta's id of the message sent."},
                "to": _WA_ID,
            },
        },
        "TestWebhookSent": _data(
            {
                "type": "object",
                "required": ["phoneNumberId", "field", "sentTo"],
                "properties": {
                    "phoneNumberId": {"type": "string", "format": "uuid"},
                    "field": {"type": "string"},
                    "sentTo": {"type": "string", "enum": ["phone", "app"]},
                    "type": {"type": "string"},
                    "status": {"type": "string"},
                    "metaMessageId": {"type": "string"},
                },
            }
        ),
    }


def _post(operation_id: str, summary: str, body: str, ok: Schema) -> Schema:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "tags": [TAG],
            "parameters": [IDEMPOTENCY],
            "requestBody": {
                "required": operation_id == "sendTestWebhook",
                "content": {"application/json": {"schema": _ref(body)}},
            },
            "responses": {**ok, **_ERRORS},
        }
    }


def test_helper_paths() -> Schema:
    sent = {"202": _json(_ref("TestWebhookSent"), "Queued: the fake Meta posts it at once.")}
    base = "/v1/test-helpers"
    return {
        f"{base}/onboarding-links/{{id}}/complete": {
            "parameters": [LINK_ID],
            **_post(
                "completeTestOnboardingLink",
                "Complete a test link through the fake Meta",
                "TestLinkCompletion",
                {
                    "200": _json(_ref("OnboardingLinkResponse"), "The completed link."),
                    "410": _error("The link expired or was deleted."),
                    "422": _error("The signup failed as the scenario makes it (its code)."),
                    "502": _error("The fake Meta could not be reached."),
                },
            ),
        },
        f"{base}/phones/{{id}}/webhooks": {
            "parameters": [PHONE_ID],
            **_post(
                "sendTestWebhook", "Send any Meta webhook about a test phone", "TestWebhook", sent
            ),
        },
        f"{base}/phones/{{id}}/messages": {
            "parameters": [PHONE_ID],
            **_post("receiveTestMessage", "A customer messages a test phone", "TestMessage", sent),
        },
        f"{base}/phones/{{id}}/statuses": {
            "parameters": [PHONE_ID],
            **_post(
                "sendTestStatus", "A status for a message a test phone sent", "TestStatus", sent
            ),
        },
    }
