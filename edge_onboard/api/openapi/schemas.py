"""The OpenAPI document's components: the schema of every body. The shared shapes
(errors, pagination, deletions) live here; each kind of object's bodies in its own
module."""

from __future__ import annotations

from edge_onboard.api.openapi._common import _UUID, Schema
from edge_onboard.api.openapi.link_schemas import link_schemas
from edge_onboard.api.openapi.phone_schemas import phone_schemas
from edge_onboard.api.openapi.signup_schemas import signup_schemas
from edge_onboard.api.openapi.webhook_schemas import webhook_schemas


def schemas() -> Schema:
    """components.schemas: the bodies of links, phones, the signup and outgoing webhooks,
    and the shared shapes."""
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
        **link_schemas(),
        **phone_schemas(),
        **signup_schemas(),
        **webhook_schemas(),
    }
