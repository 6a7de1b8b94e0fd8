"""The OpenAPI document's business-profile part: ``/v1/phones/{id}/profile`` and its
photo. The PATCH body's schema comes from the validator's own declaration."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _COMMON_ERRORS,
    PHONE_ID,
    Schema,
    _data,
    _error,
    _json,
    _ref,
)
from edge_onboard.onboarding.profile import (
    MAX_PHOTO_BYTES,
    MIN_PHOTO_SIDE,
    PHOTO_TYPES,
    TEXTS,
    profile_schema,
)

_META_ERRORS = {
    "404": _error("No such phone in this organisation."),
    "409": _error("The business took back access to the number (phone_disconnected)."),
    "422": _error("Meta refused the change (meta_rejected, with Meta's code)."),
    "502": _error("Meta could not be reached (meta_unavailable)."),
    "503": _error("No Meta app is configured (meta_not_configured)."),
}


def profile_schemas() -> Schema:
    update = profile_schema()
    shown = {
        **{name: {"type": ["string", "null"]} for name in TEXTS},
        "websites": {"type": "array", "items": {"type": "string"}},
        "vertical": {"type": ["string", "null"]},
        "photoUrl": {
            "type": ["string", "null"],
            "description": "Meta's URL of the profile photo (it changes; do not store it).",
        },
    }
    return {
        "BusinessProfile": {
            "type": "object",
            "required": list(shown),
            "additionalProperties": False,
            "properties": shown,
        },
        "BusinessProfileResponse": _data(_ref("BusinessProfile")),
        "BusinessProfileUpdate": {
            **update,
            "minProperties": 1,
            "description": "Fields to change (at least one); an empty string or list clears "
            "one (except about: Meta requires 1 to 139 characters).",
        },
    }


def profile_paths() -> Schema:
    image = {"type": "string", "format": "binary", "maxLength": MAX_PHOTO_BYTES}
    return {
        "/v1/phones/{id}/profile": {
            "parameters": [PHONE_ID],
            "get": {
                "operationId": "getBusinessProfile",
                "summary": "The number's WhatsApp business profile, as Meta has it",
                "responses": {
                    "200": _json(_ref("BusinessProfileResponse"), "The profile."),
                    **_META_ERRORS,
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "updateBusinessProfile",
                "summary": "Change the business profile (Meta's limits checked first)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BusinessProfileUpdate")}},
                },
                "responses": {
                    "200": _json(_ref("BusinessProfileResponse"), "The profile after it."),
                    "400": _error("A field over Meta's limits, unknown, or none given."),
                    **_META_ERRORS,
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/profile/photo": {
            "parameters": [PHONE_ID],
            "put": {
                "operationId": "putBusinessProfilePhoto",
                "summary": "Set the profile photo: the image's bytes as the body (JPEG or PNG, "
                f"square, at least {MIN_PHOTO_SIDE} px, at most 1 MB)",
                "requestBody": {
                    "required": True,
                    # Declared as application/octet-stream, the one binary body every SDK
                    # generator sends; the image's own type is taken as well.
                    "description": "The image's bytes. Content-Type: application/octet-stream "
                    "(the type is read from the bytes) or the image's own: "
                    f"{', '.join(PHOTO_TYPES)}.",
                    "content": {"application/octet-stream": {"schema": image}},
                },
                "responses": {
                    "200": _json(_ref("BusinessProfileResponse"), "The profile after it."),
                    "400": _error("Empty, not square, too small, or another type than declared."),
                    "413": _error("Over 1 MB (photo_too_large)."),
                    "415": _error("Not JPEG or PNG (unsupported_media_type)."),
                    **_META_ERRORS,
                    **_COMMON_ERRORS,
                },
            },
        },
    }
