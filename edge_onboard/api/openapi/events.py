"""The OpenAPI document's events API: listing and reading events, and recovering an
endpoint's failed deliveries (edge_onboard/webhooks/event_log.py)."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _COMMON_ERRORS,
    _TIMESTAMP,
    IDEMPOTENCY,
    PAGING,
    WEBHOOK_ID,
    Schema,
    _data,
    _error,
    _json,
    _listing,
    _ref,
)
from edge_onboard.api.openapi.event_schemas import schema_name
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.event_log import MAX_TYPE_LENGTH, TIMESTAMP_PATTERN, TYPE_PATTERN

# What the API reads as a timestamp (event_log.parse_timestamp): RFC 3339 with a zone.
_TIMESTAMP_IN: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_PATTERN,
}


def events_schemas() -> Schema:
    return {
        "Event": {
            "description": "An event, exactly as its webhook deliveries carry it: which "
            "one, its `event` says (every type of the catalog is mapped).",
            "oneOf": [_ref(schema_name(name)) for name in EVENT_TYPES],
            "discriminator": {
                "propertyName": "event",
                "mapping": {
                    name: f"#/components/schemas/{schema_name(name)}" for name in EVENT_TYPES
                },
            },
        },
        "EventResponse": _data(_ref("Event")),
        "EventList": _listing(_ref("Event")),
        "WebhookRecoveryCreate": {
            "type": "object",
            "required": ["since"],
            "additionalProperties": False,
            "properties": {
                "since": {
                    **_TIMESTAMP_IN,
                    "description": "Re-send deliveries created at or after this moment; "
                    "at most the event retention (30 days by default) ago.",
                },
                "until": {
                    "anyOf": [_TIMESTAMP_IN, {"type": "null"}],
                    "description": "Before this moment (default: now); after since.",
                },
            },
        },
        "WebhookRecovery": {
            "type": "object",
            "required": ["id", "webhookId", "since", "until", "status", "createdAt"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^rcv_[0-9a-f]{32}$"},
                "webhookId": {"type": "string", "format": "uuid"},
                "since": _TIMESTAMP,
                "until": _TIMESTAMP,
                "status": {
                    "const": "started",
                    "description": "The re-sends run after this answer; each failed "
                    "delivery goes back on the queue once (watch the deliveries list).",
                },
                "createdAt": _TIMESTAMP,
            },
        },
        "WebhookRecoveryResponse": _data(_ref("WebhookRecovery")),
    }


def events_paths() -> Schema:
    return {
        "/v1/events": {
            "get": {
                "tags": ["Events"],
                "operationId": "listEvents",
                "summary": "List events of the last 30 days (configurable), newest first",
                "parameters": [
                    *PAGING,
                    {
                        "name": "type",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_TYPE_LENGTH,
                            "pattern": TYPE_PATTERN,
                        },
                        "description": "Event types, comma-separated; * matches any "
                        "characters (message.*, *.failed). One that matches no type of "
                        "GET /v1/event-types is 400.",
                    },
                    {
                        "name": "created[gte]",
                        "in": "query",
                        "schema": _TIMESTAMP_IN,
                        "description": "Created at or after this moment (ISO 8601 with zone).",
                    },
                    {
                        "name": "created[lte]",
                        "in": "query",
                        "schema": _TIMESTAMP_IN,
                        "description": "Created at or before this moment; not before created[gte].",
                    },
                ],
                "responses": {
                    "200": _json(_ref("EventList"), "A page of events."),
                    "400": _error("A bad filter, page or cursor."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/v1/events/{id}": {
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The event's id (evt_...), also its deliveries' webhook-id.",
                }
            ],
            "get": {
                "tags": ["Events"],
                "operationId": "getEvent",
                "summary": "An event, exactly as delivered",
                "responses": {
                    "200": _json(
                        _ref("EventResponse"),
                        "data holds the JSON body every delivery of it carried, byte for byte.",
                    ),
                    "404": _error("No such event in this organisation, or past retention."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/outgoing-webhooks/{id}/recover": {
            "parameters": [WEBHOOK_ID],
            "post": {
                "tags": ["Outgoing webhooks"],
                "operationId": "recoverOutgoingWebhook",
                "summary": "Re-send the endpoint's failed deliveries created since a time",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("WebhookRecoveryCreate")}},
                },
                "responses": {
                    "202": _json(
                        _ref("WebhookRecoveryResponse"),
                        "Started: the failed deliveries are re-sent in the background, "
                        "each event at most once even when recoveries race.",
                    ),
                    "400": _error(
                        "Invalid body: since missing or malformed, not before until, or "
                        "older than the event retention."
                    ),
                    "404": _error("No such webhook in this organisation."),
                    "409": _error(
                        "The endpoint is disabled (webhook_disabled), or Idempotency-Key "
                        "reused or in use."
                    ),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_COMMON_ERRORS,
                },
            },
        },
    }
