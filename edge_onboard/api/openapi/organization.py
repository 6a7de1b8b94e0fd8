"""The OpenAPI document's organisation part: branding for the hosted page and the logo.
(The files the page links to, the logo from our origin and the favicon, are the hosted
page's: edge_onboard/api/openapi/public.py.)"""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _COMMON_ERRORS,
    _TIMESTAMP,
    _URL,
    Schema,
    _data,
    _error,
    _json,
    _nullable,
    _ref,
)
from edge_onboard.core.validation import NON_BLANK_PATTERN
from edge_onboard.onboarding.branding import LOGO_TYPES, MAX_LOGO_BYTES, MAX_LOGO_SIDE

# Host names of at most three labels of 1-63 characters (the service checks the DNS limits).
HTTPS_URL: Schema = {
    **_URL,
    "pattern": r"^https://[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,2}(:[1-9][0-9]{0,3})?(/\S*)?$",
}
_COLOR: Schema = {"type": "string", "pattern": r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"}
_EMAIL: Schema = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$",
}
_BRANDING: dict[str, Schema] = {
    "displayName": {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "pattern": NON_BLANK_PATTERN,
    },
    "brandColor": {
        **_COLOR,
        "description": "The page's accent (buttons, a bar); its text is black or white, "
        "whichever contrasts more.",
    },
    "supportEmail": _EMAIL,
    "supportUrl": HTTPS_URL,
    "privacyUrl": HTTPS_URL,
    "termsUrl": HTTPS_URL,
}


def organization_schemas() -> Schema:
    return {
        "Organization": {
            "type": "object",
            "required": ["id", "name", *_BRANDING, "logoUrl", "createdAt", "updatedAt"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                **{name: _nullable({"type": "string"}) for name in _BRANDING},
                "logoUrl": _nullable(
                    {
                        "type": "string",
                        "description": "Read-only: {EDGE_PUBLIC_URL}/brand/{id}/{sha256}.",
                    }
                ),
                "createdAt": _TIMESTAMP,
                "updatedAt": _nullable(_TIMESTAMP),
            },
        },
        "OrganizationResponse": _data(_ref("Organization")),
        "OrganizationUpdate": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "description": "Fields to change (at least one); null clears one.",
            "properties": {name: _nullable(schema) for name, schema in _BRANDING.items()},
        },
    }


# The organisation is shared by both modes and shown on live pages: a live key changes it.
_LIVE_ONLY: Schema = {
    "403": _error("A test key (sk_test_) cannot change it: livemode_key_required."),
}


def organization_paths() -> Schema:
    image = {"type": "string", "format": "binary", "maxLength": MAX_LOGO_BYTES}
    return {
        "/v1/organization": {
            "get": {
                "operationId": "getOrganization",
                "summary": "The API key's organisation and its branding",
                "responses": {
                    "200": _json(_ref("OrganizationResponse"), "The organisation."),
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "updateOrganization",
                "summary": "Change the hosted page's branding",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OrganizationUpdate")}},
                },
                "responses": {
                    "200": _json(_ref("OrganizationResponse"), "The organisation."),
                    "400": _error("Invalid parameters or JSON, or a read-only field."),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_LIVE_ONLY,
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/organization/logo": {
            "put": {
                "operationId": "putOrganizationLogo",
                "summary": "Upload the logo: the image's bytes as the body (PNG, JPEG or "
                f"WebP, at most {MAX_LOGO_BYTES // 1024} KB and {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} "
                "pixels; never SVG)",
                # Declared as application/octet-stream, the one binary body every SDK
                # generator sends; the image's own type is taken as well.
                "requestBody": {
                    "required": True,
                    "description": "The image's bytes. Content-Type: application/octet-stream "
                    "(the type is read from the bytes) or the image's own: "
                    f"{', '.join(LOGO_TYPES)}.",
                    "content": {"application/octet-stream": {"schema": image}},
                },
                "responses": {
                    "200": _json(_ref("OrganizationResponse"), "The organisation."),
                    "400": _error(
                        "Empty, another type than declared, an unreadable header, or larger"
                        f" than {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} pixels."
                    ),
                    "413": _error("Over 256 KB (logo_too_large) or over 1 MB."),
                    "415": _error(
                        "Not PNG, JPEG or WebP, or another Content-Type (unsupported_media_type)."
                    ),
                    **_LIVE_ONLY,
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "operationId": "deleteOrganizationLogo",
                "summary": "Remove the logo",
                "responses": {
                    "200": _json(_ref("OrganizationResponse"), "The organisation."),
                    **_LIVE_ONLY,
                    **_COMMON_ERRORS,
                },
            },
        },
    }
