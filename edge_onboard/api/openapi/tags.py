"""The OpenAPI document's tags: which group each operation belongs to.

SDK generators make one API class per tag (untagged operations share a "default" one,
where the ``webhooks`` overwrite the paths), so every operation has a tag. An operation
that names its own ``tags`` keeps them; the others get the tag of the first rule below
whose pattern matches their path. A new path outside these rules, or a tag not declared
in TAGS, fails tests/test_openapi.py.
"""

from __future__ import annotations

import re

from edge_onboard.api.openapi._common import METHODS, Schema

# name -> description: the document's top-level ``tags``, in the order docs show them.
TAGS: dict[str, str] = {
    "Onboarding links": "Links an end-user opens to connect a WhatsApp number: create, "
    "list, retrieve, delete, recover.",
    "Phones": "Connected phone numbers: retrieve, verify, check their health.",
    "Messages": "Send messages through a connected number, and fetch received media.",
    "Wabas": "Connected WhatsApp Business Accounts, and syncing the numbers added at Meta.",
    "Outgoing webhooks": "Endpoints that receive the service's signed events, and their "
    "deliveries.",
    "Events": "The catalog of event types.",
    "Organization": "The API key's organisation and the hosted page's branding.",
    "Hosted page": "The signup page end-users open, its callbacks and its files (no API key).",
    "Meta webhooks": "What Meta calls: its signed deliveries and the verification handshake.",
    "Test helpers": "Test keys only: complete test links and make test phones receive "
    "Meta's webhooks, through the built-in fake of Meta.",
    "Service": "The service's liveness and readiness (no API key).",
    "Webhook events": "What the service POSTs to an outgoing webhook: one payload per event "
    "type, signed per Standard Webhooks.",
}

# (pattern on the path, tag): the first match wins.
_RULES: list[tuple[str, str]] = [
    (r"^/v1/onboarding-links(/|$)", "Onboarding links"),
    (r"^/v1/phones/[^/]+/(messages|media)(/|$)", "Messages"),
    (r"^/v1/phones(/|$)", "Phones"),
    (r"^/v1/wabas(/|$)", "Wabas"),
    (r"^/v1/(outgoing-webhooks|webhook-deliveries)(/|$)", "Outgoing webhooks"),
    (r"^/v1/(event-types|events)(/|$)", "Events"),
    (r"^/v1/organization(/|$)", "Organization"),
    (r"^/v1/test-helpers/", "Test helpers"),
    (r"^/(signup|static|brand)/|^/favicon\.ico$", "Hosted page"),
    (r"^/webhook/", "Meta webhooks"),
    (r"^/$|^/(healthz|readyz)$", "Service"),
]
WEBHOOKS_TAG = "Webhook events"


def tag_for(path: str) -> str | None:
    """The tag of the first rule matching ``path``; None when none does."""
    for pattern, tag in _RULES:
        if re.search(pattern, path):
            return tag
    return None


def tagged(paths: Schema, fixed: str | None = None) -> Schema:
    """``paths`` with ``tags`` on every operation that has none: ``fixed``, else the tag
    of the rule its path matches (if one does)."""
    result: Schema = {}
    for path, item in paths.items():
        tag = fixed or tag_for(path)
        result[path] = {
            method: (
                {"tags": [tag], **operation}
                if method in METHODS and tag is not None and "tags" not in operation
                else operation
            )
            for method, operation in item.items()
        }
    return result


def declared(used: set[str] | None = None) -> list[Schema]:
    """The top-level ``tags`` (of those in ``used``, when given)."""
    return [
        {"name": name, "description": text}
        for name, text in TAGS.items()
        if used is None or name in used
    ]
