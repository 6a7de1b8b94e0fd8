"""The response headers the OpenAPI document describes, as reusable components/headers,
and the pass that puts them on every response that carries them."""

from __future__ import annotations

from edge_onboard.api.openapi._common import METHODS, Schema

HEADERS: Schema = {
    "Request-Id": {
        "description": "This request's id (req_ and 32 hex digits), on every response; "
        "quote it when asking about a request.",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_[0-9a-f]{32}$"},
    },
    "Idempotent-Replayed": {
        "description": "true when this is the stored response to an earlier request with "
        "the same Idempotency-Key (replayed for 24 h), absent otherwise.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
}


def _header(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}


def _idempotent(operation: Schema, shared: list[Schema]) -> bool:
    return any(
        parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key"
        for parameter in [*shared, *operation.get("parameters", ())]
    )


def _replayable(code: str) -> bool:
    # Stored and replayed: the answers the handler gave (not 5xx, and not what the
    # service answers before it reads the key: 401, 429).
    return code[0] in "24" and code not in ("401", "429")


def with_headers(paths: Schema) -> Schema:
    """``paths`` with Request-Id on every response, Retry-After on every 429 and 503, and
    Idempotent-Replayed on the responses an Idempotency-Key replays."""
    result: Schema = {}
    for path, item in paths.items():
        shared = item.get("parameters", [])
        result[path] = {}
        for method, operation in item.items():
            if method not in METHODS:
                result[path][method] = operation
                continue
            idempotent = _idempotent(operation, shared)
            responses: Schema = {}
            for code, response in operation["responses"].items():
                names = ["Request-Id"]
                if code in ("429", "503"):
                    names.append("Retry-After")
                if idempotent and _replayable(code):
                    names.append("Idempotent-Replayed")
                headers = {name: _header(name) for name in names}
                # A copy: the shared error responses (_COMMON_ERRORS) are one object.
                responses[code] = {
                    **response,
                    "headers": {**headers, **response.get("headers", {})},
                }
            result[path][method] = {**operation, "responses": responses}
    return result
