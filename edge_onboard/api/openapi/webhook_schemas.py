"""The OpenAPI document's outgoing-webhook bodies: endpoints, deliveries and the
event types they subscribe to."""

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


def webhook_schemas() -> Schema:
    """The outgoing webhooks' and deliveries' bodies."""
    return {
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
