"""Hooks for the schemathesis run (loaded through SCHEMATHESIS_HOOKS).

A replayed Idempotency-Key returns the first response by design, even after that
link was deleted; schemathesis's stateful checks would read that as "created
resource not found". Valid generated keys get a unique suffix so each generated
create is its own request; replay itself is tested in test_links_api.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    if headers is None:
        return None
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 200 and key.isprintable() and key.isascii():
        headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex[:12]}"
    return headers


@schemathesis.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """A list cursor must name an object of that list (any other id is the documented 400
    invalid_cursor), and a page may reach the first 10 000 objects only (400
    page_too_deep): generated values would mostly be those 400s. Both are tested in
    test_pagination.py."""
    if query is None:
        return None
    query.pop("startingAfter", None)
    query.pop("endingBefore", None)
    page, limit = query.get("page"), query.get("limit", 20)
    if isinstance(page, int) and isinstance(limit, int) and (page - 1) * limit > 10_000:
        query["page"] = 1
    return query


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """An update link names a number or WABA of the caller's organisation (any other id is
    the documented 404, and type update without one a 400): generated ids name none. The
    create is exercised as an onboarding link here; tests/onboarding/test_update_links.py
    checks every update-link answer."""
    operation = getattr(context, "operation", None)
    if (
        isinstance(body, dict)
        and getattr(operation, "path", None) == "/v1/onboarding-links"
        and str(getattr(operation, "method", "")).upper() == "POST"
    ):
        body.pop("phoneNumberId", None)
        body.pop("wabaId", None)
        if body.get("type") == "update":
            body.pop("type")
    return body
