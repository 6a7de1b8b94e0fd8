"""What the parts of the OpenAPI document share: references, envelopes, errors."""

from __future__ import annotations

from typing import Any

from edge_onboard.core.urls import MAX_URL_LENGTH
from edge_onboard.webhooks.catalog import EVENT_TYPES

Schema = dict[str, Any]
# The keys of a path item that are operations (the others: parameters, summary, ...).
METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


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


# Parameters the operations share.
LINK_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": _UUID,
    "description": "The link's id (a UUID); anything else is 404.",
}
PHONE_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": _UUID,
    "description": "The phone's id (a UUID); anything else is 404.",
}
WEBHOOK_ID = {**PHONE_ID, "description": "The webhook's id (a UUID)."}
DELIVERY_ID = {**PHONE_ID, "description": "The delivery's id (a UUID)."}
WABA_ID = {**PHONE_ID, "description": "The WABA's id (a UUID)."}
_CURSOR = {"type": "string", "maxLength": 100}
PAGING = [  # every list: edge_onboard/api/pagination.py
    {
        "name": "page",
        "in": "query",
        # No "default": generated SDKs send a parameter's default, and a page with a
        # cursor is 400.
        "schema": {"type": "integer", "minimum": 1, "maximum": 100000},
        "description": "1-based page (1 when absent); (page - 1) * limit may not pass 10000 (400 "
        "page_too_deep): page on from there with startingAfter. Not with a cursor.",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
    {
        "name": "startingAfter",
        "in": "query",
        "schema": _CURSOR,
        "description": "An object id: the page of objects older than it (the next page is "
        "after pagination.startingAfter). An id not in this list is 400 invalid_cursor.",
    },
    {
        "name": "endingBefore",
        "in": "query",
        "schema": _CURSOR,
        "description": "An object id: the page of objects newer than it, still newest "
        "first (the previous page is before pagination.endingBefore).",
    },
]
IDEMPOTENCY = {
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
