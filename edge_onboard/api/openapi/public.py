"""The OpenAPI document's operations outside /v1 (no API key): the service's liveness and
readiness, published; and the internal ones, left out of the published document (they
are not the customer's API: no SDK should have methods for them) but described all the
same, for the tests that hold the service to them: the hosted page and its callbacks,
its files (assets, the logo from our origin, the favicon), Meta's webhooks and the
front page."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    LINK_ID,
    PHONE_ID,
    Schema,
    _html,
    _json,
    _ref,
)
from edge_onboard.api.openapi.update_paths import update_paths
from edge_onboard.onboarding.branding import LOGO_TYPES, MAX_LOGO_BYTES


def _verification_paths() -> Schema:
    """The hosted page's verification step (edge_onboard/hosted/verification.py)."""
    pass_header = {
        "name": "X-Signup-Pass",
        "in": "header",
        "required": True,
        "description": "The pass the callback's answer gave this page (verification.token).",
        "schema": {"type": "string"},
    }
    errors = {
        "400": "Malformed request.",
        "403": "No valid pass for this link, or a cross-origin request.",
        "404": "Unknown link.",
        "409": "The number needs no verification now.",
        "422": "Wrong or expired code, or Meta refused.",
        "429": "Too many tries (this address, this link, or Meta's limit): see Retry-After.",
        "502": "Meta could not be reached.",
    }
    steps = {
        "code": (
            "hostedVerificationCode",
            "The page asks Meta for the code (SMS or voice)",
            {"method": {"type": "string", "enum": ["sms", "voice"]}, "locale": {"type": "string"}},
            ["method"],
            "Sent; resendAfter seconds before another.",
        ),
        "verify": (
            "hostedVerificationCheck",
            "The page sends the code back; verified, then registered",
            {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
            ["code"],
            "Verified and registered; redirectUrl says where to go.",
        ),
    }
    return {
        f"/signup/{{id}}/verification/{name}": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": operation,
                "security": [],
                "summary": summary,
                "parameters": [pass_header],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": required,
                                "properties": properties,
                            }
                        }
                    },
                },
                "responses": {
                    code: _json(_ref("CallbackResponse"), text)
                    for code, text in {"200": ok, **errors}.items()
                },
            },
        }
        for name, (operation, summary, properties, required, ok) in steps.items()
    }


def internal_paths() -> Schema:
    """The operations that are not the customer's API (build_openapi(internal=True))."""
    image = {"type": "string", "format": "binary", "maxLength": MAX_LOGO_BYTES}
    return {
        "/signup/{id}": {
            "parameters": [LINK_ID],
            "get": {
                "operationId": "hostedSignupPage",
                "security": [],
                "summary": "The hosted signup page (HTML) an end-user opens",
                "responses": {
                    "200": _html("The page, or the 'already connected' page."),
                    "404": _html("Unknown link."),
                    "410": _html("Expired or deleted link."),
                },
            },
        },
        "/signup/{id}/session": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": "hostedSignupSession",
                "security": [],
                "summary": "The hosted page reports Meta's session message, before the code",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SessionReport")}},
                },
                "responses": {
                    "202": _json(_ref("SessionRecorded"), "Kept on the pending link."),
                    **{
                        code: _json(_ref("CallbackResponse"), text)
                        for code, text in {
                            "400": "Malformed report.",
                            "403": "Cross-origin request.",
                            "404": "Unknown link.",
                            "408": "The body did not arrive within 10 s.",
                            "409": "Already completed.",
                            "410": "Expired or deleted link.",
                            "413": "Body over 1 MB.",
                            "415": "Not JSON.",
                            "429": "Too many requests from this address.",
                        }.items()
                    },
                },
            },
        },
        "/signup/{id}/state": {
            "parameters": [LINK_ID],
            "get": {
                "operationId": "hostedSignupState",
                "security": [],
                "summary": "Whether the link is still pending: a page left open reloads once "
                "the signup finished elsewhere (another tab, or recovery)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "additionalProperties": False,
                            "properties": {
                                "status": {
                                    "type": "string",
                                    "enum": ["pending", "completed", "expired", "deleted"],
                                }
                            },
                        },
                        "The link's state.",
                    ),
                    "404": _json(_ref("CallbackResponse"), "Unknown link."),
                    "429": _json(_ref("CallbackResponse"), "Too many requests from this address."),
                },
            },
        },
        **_verification_paths(),
        **update_paths(),
        "/signup/{id}/callback": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": "hostedSignupCallback",
                "security": [],
                "summary": "The hosted page reports the Embedded Signup result",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CallbackRequest")}},
                },
                "responses": {
                    code: _json(_ref("CallbackResponse"), text)
                    for code, text in {
                        "200": "Completed; redirect the end-user.",
                        "400": "Malformed report.",
                        "403": "Cross-origin request.",
                        "404": "Unknown link.",
                        "409": "Already completed, or being completed.",
                        "410": "Expired or deleted link.",
                        "413": "Body over 1 MB.",
                        "415": "Not JSON.",
                        "408": "The body did not arrive within 10 s.",
                        "422": "Signup cancelled, or Meta refused it; the link stays pending.",
                        "429": "Too many requests from this address; see Retry-After.",
                        "502": "Meta unreachable; the link stays pending.",
                        "503": "No Meta app configured; storage unavailable; or busy "
                        "(service_busy: nothing was done, post the same body again after "
                        "Retry-After).",
                    }.items()
                },
            },
        },
        "/webhook/meta": {
            "post": _meta_delivery(
                "metaAppWebhook",
                "Meta's app-level webhook (account_update, phone quality and name updates), "
                "signed X-Hub-Signature-256",
            ),
            "get": _handshake("metaAppWebhookHandshake", "(app level)"),
        },
        "/webhook/phone/{id}": {
            "parameters": [PHONE_ID],
            "post": _meta_delivery(
                "phoneWebhook",
                "Meta's deliveries (messages, statuses), signed X-Hub-Signature-256",
                {"404": "Malformed phone id."},
            ),
            "get": _handshake(
                "phoneWebhookHandshake", "(one phone)", {"404": "Malformed phone id."}
            ),
        },
        "/static/{name}": {
            "get": {
                "operationId": "staticAsset",
                "security": [],
                "summary": "The hosted page's script and stylesheet (ETag, cached)",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The asset.",
                        "content": {
                            "application/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    "304": {"description": "Not modified."},
                    "404": {
                        "description": "No such asset.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/": {
            "get": {
                "operationId": "root",
                "security": [],
                "summary": "The service's name and its API description's address "
                "(HTML for a browser, JSON for Accept: application/json)",
                "responses": {
                    "200": {
                        "description": "A short page, or the same as JSON.",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name", "openapi"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"const": "edge-onboard"},
                                        "openapi": {"const": "/openapi.json"},
                                    },
                                }
                            },
                        },
                    }
                },
            }
        },
        "/brand/{org_id}/{digest}": {
            "get": {
                "operationId": "brandLogo",
                "security": [],
                "summary": "An organisation's logo, from our origin (immutable: the URL "
                "carries the content's SHA-256)",
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in ("org_id", "digest")
                ],
                "responses": {
                    "200": {
                        "description": "The image.",
                        "content": {media: {"schema": image} for media in LOGO_TYPES},
                    },
                    "404": {"description": "No such logo (or no longer the current one)."},
                },
            },
        },
        "/favicon.ico": {
            "get": {
                "operationId": "favicon",
                "security": [],
                "summary": "The pages' default icon (a branded page links to its logo)",
                "responses": {
                    "200": {
                        "description": "The icon.",
                        "content": {"image/x-icon": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified."},
                },
            },
        },
    }


def service_paths() -> Schema:
    """The service's liveness and readiness: what an operator's probes call."""
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "security": [],
                "summary": "Liveness",
                "responses": {"200": _json({"type": "object"}, "Alive.")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "security": [],
                "summary": "Readiness: storage and Redis reachable",
                "responses": {
                    "200": _json(_READINESS, "Ready."),
                    "503": _json(_READINESS, "A dependency is down."),
                },
            }
        },
    }


_NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
# /readyz: each check "ok" or "error: <kind>"; ``region`` only where regions are set
# (docs/guides/deploy-regions.md).
_READINESS: Schema = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "region": {
            "type": "object",
            "required": ["name", "primary", "role", "rateLimits"],
            "properties": {
                "name": {"type": "string"},
                "primary": {"type": ["string", "null"]},
                "role": {"type": "string", "enum": ["primary", "replica"]},
                "rateLimits": {"type": "string", "enum": ["redis", "in-process"]},
                "redisReplicaLagMs": _NULLABLE_NUMBER,
                "mongoReplicaLagSeconds": _NULLABLE_NUMBER,
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


def _text(responses: dict[str, str]) -> Schema:
    """Plain-text answers, by status code: what Meta's endpoints reply."""
    return {
        code: {"description": text, "content": {"text/plain": {"schema": {"type": "string"}}}}
        for code, text in responses.items()
    }


def _meta_delivery(operation_id: str, summary: str, extra: dict[str, str] | None = None) -> Schema:
    """A POST Meta makes to us: signed, any JSON, answered in plain text."""
    return {
        "operationId": operation_id,
        "security": [],
        "summary": summary,
        "parameters": [
            {"name": "X-Hub-Signature-256", "in": "header", "required": True, "schema": _STRING},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": _text(
            {
                "200": "Received (also when nothing in it was usable).",
                "401": "Missing or wrong signature.",
                "408": "The body did not arrive within 10 s.",
                "413": "Body over 1 MB.",
                "429": "Too many requests from this address (Meta retries).",
                **(extra or {}),
            }
        ),
    }


def _handshake(operation_id: str, which: str, extra: dict[str, str] | None = None) -> Schema:
    """Meta's GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…"""
    return {
        "operationId": operation_id,
        "security": [],
        "summary": f"Meta's webhook verification handshake {which}",
        "parameters": [
            {"name": name, "in": "query", "schema": _STRING}
            for name in ("hub.mode", "hub.verify_token", "hub.challenge")
        ],
        "responses": _text(
            {"200": "The challenge, echoed.", "403": "Wrong verify token.", **(extra or {})}
        ),
    }


_STRING: Schema = {"type": "string"}
