"""``prefill``: business data handed to Meta's Embedded Signup as ``extras.setup``.

One description of its shape drives both the validator and the OpenAPI schema, so the
two cannot drift. Values are kept to what every store holds faithfully: strings,
booleans, null and 64-bit integers, under keys without control characters, ".", "[",
"]" or a leading "$".
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from edge_onboard.core.errors import invalid

MAX_BYTES = 64_000
INT64 = 2**63
KEY_PATTERN = r"^[^\x00-\x1f$.\[\]][^\x00-\x1f.\[\]]*$"
SAFE_KEY = re.compile(KEY_PATTERN.removesuffix("$") + r"\Z")

FLAT = "flat"  # an object of scalars
IDS = "ids"  # a list of strings
# Top-level key → None for a string, or {nested key: FLAT | IDS} for an object of scalars
# with those nested members (Meta's business.phone, business.address, ….ids).
SHAPE: dict[str, dict[str, str] | None] = {
    "business": {"phone": FLAT, "address": FLAT},
    "phone": {},
    "preVerifiedPhone": {"ids": IDS},
    "whatsAppBusinessAccount": {"ids": IDS},
    "solutionID": None,
}


def parse(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("'prefill' must be an object (Meta's extras.setup).", param="prefill")
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key not in SHAPE:
            raise invalid(
                f"Received unknown parameter: prefill.{key}",
                param=f"prefill.{key}",
                code="unknown_parameter",
            )
        if item is None:
            continue
        nested = SHAPE[key]
        path = f"prefill.{key}"
        if nested is None:
            if not isinstance(item, str):
                raise invalid(f"'{path}' must be a string.", param=path)
        else:
            _object(item, path, nested)
        result[key] = item
    if len(orjson.dumps(result)) > MAX_BYTES:
        raise invalid(f"'prefill' must be at most {MAX_BYTES} bytes of JSON.", param="prefill")
    return result


def _object(value: Any, path: str, nested: dict[str, str]) -> None:
    if not isinstance(value, dict):
        raise invalid(f"'{path}' must be an object.", param=path)
    for key, item in value.items():
        if not isinstance(key, str) or not SAFE_KEY.match(key):
            raise invalid(f"'{path}' has a key that is not allowed: {key!r}.", param=path)
        kind = nested.get(key)
        if kind == FLAT:
            _object(item, f"{path}.{key}", {})
        elif kind == IDS:
            if not isinstance(item, list) or not all(isinstance(i, str) for i in item):
                raise invalid(f"'{path}.{key}' must be a list of strings.", param=f"{path}.{key}")
        else:
            _scalar(item, f"{path}.{key}")


def _scalar(value: Any, path: str) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 5.0 is the integer 5
    if isinstance(value, int) and -INT64 <= value < INT64:
        return
    raise invalid(f"'{path}' must be a string, a boolean, null or a 64-bit integer.", param=path)


def schema() -> dict[str, Any]:
    # One type list, not an anyOf: openapi-generator's Python client cannot model an anyOf
    # holding null. The bounds apply to the integers only.
    scalar: dict[str, Any] = {
        "type": ["string", "boolean", "null", "integer"],
        "minimum": -INT64,
        "maximum": INT64 - 1,
    }

    def obj(nested: dict[str, str]) -> dict[str, Any]:
        members: dict[str, Any] = {}
        for name, kind in nested.items():
            if kind == FLAT:
                members[name] = obj({})
            else:
                members[name] = {"type": "array", "items": {"type": "string"}}
        return {
            "type": "object",
            "propertyNames": {"pattern": KEY_PATTERN},
            "properties": members,
            "additionalProperties": scalar,
        }

    properties = {
        key: {"anyOf": [{"type": "string"} if nested is None else obj(nested), {"type": "null"}]}
        for key, nested in SHAPE.items()
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "description": "passed to Meta's Embedded Signup as extras.setup",
    }
