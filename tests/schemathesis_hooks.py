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
