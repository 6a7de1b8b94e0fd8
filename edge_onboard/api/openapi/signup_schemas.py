"""The OpenAPI document's bodies of the hosted page's signup: the callback, its
answer, and the session report."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    Schema,
    _nullable,
    _ref,
)
from edge_onboard.onboarding.completion import FINISH_EVENTS
from edge_onboard.onboarding.reports import REASONS
from edge_onboard.onboarding.updates import UPDATE_STEPS


def signup_schemas() -> Schema:
    """The signup callback's and session report's bodies."""
    return {
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
        "UpdatePlan": {
            "type": "object",
            "additionalProperties": False,
            "description": "What an update link's number needs now, in order, and the "
            "page's pass (X-Signup-Pass, for this link only, 30 minutes).",
            "required": ["steps", "token", "changes"],
            "properties": {
                "steps": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(UPDATE_STEPS)},
                },
                "token": {"type": "string"},
                "phoneNumberMasked": _nullable({"type": "string"}),
                "displayName": _nullable({"type": "string"}),
                "nameStatus": _nullable({"type": "string"}),
                "changes": {"type": "array", "items": {"type": "string"}},
                "profile": _nullable({"type": "object"}),
                "verification": _nullable({"type": "object"}),
            },
        },
        "CallbackResponse": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "string", "enum": ["success", "error", "sent"]},
                "redirectUrl": _nullable({"type": "string"}),
                "phoneNumberMasked": _nullable({"type": "string"}),
                "verification": {
                    "type": "object",
                    "description": "The number finished unverified: the page goes on to its "
                    "code with this pass (for this link only, 30 minutes).",
                    "required": ["token", "phoneNumberMasked", "laterUrl", "resendAfter"],
                    "properties": {
                        "token": {"type": "string"},
                        "phoneNumberMasked": _nullable({"type": "string"}),
                        "laterUrl": _nullable({"type": "string"}),
                        "resendAfter": {"type": "integer"},
                    },
                },
                "resendAfter": {"type": "integer"},
                # An update link (edge_onboard/onboarding/updates.py): after its signup,
                # the steps left; after its last step, what changed.
                "update": _ref("UpdatePlan"),
                "changes": {"type": "array", "items": {"type": "string"}},
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
    }
