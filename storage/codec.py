"""Records as JSON text, for stores without native dates or bytes (SQLite, the Redis
hot layer): datetimes become ``{"$date": ms}``, bytes ``{"$bytes": base64}``; a
customer's own ``$`` keys are escaped so they are never read as either."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_AS_IS = frozenset({str, int, float, bool, type(None)})


def ms(moment: datetime) -> int:
    # Integer arithmetic: float timestamps lose the last millisecond now and then.
    return (moment - _EPOCH) // _ONE_MS


def _encode_value(value: Any) -> Any:
    if type(value) in _AS_IS:  # most values: one set lookup
        return value
    if isinstance(value, datetime):
        return {"$date": ms(value)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        # Keys of ours never start with "$"; a customer's do get one more "$", so that
        # {"$date": …} in their metadata stays their data and is never read as a date.
        return {("$" + k if k.startswith("$") else k): _encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_value(v) for v in value]
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if "$date" in value:
                return _EPOCH + value["$date"] * _ONE_MS
            if "$bytes" in value:
                return base64.b64decode(value["$bytes"])
        return {(k[1:] if k.startswith("$") else k): _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def dump_doc(doc: Mapping[str, Any]) -> str:
    return orjson.dumps(_encode_value(dict(doc))).decode()


def load_doc(text: str | bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = _decode_value(orjson.loads(text))
    return decoded
