"""Total readers of Meta's webhook JSON, and the typed shapes built from them.

Every reader returns a usable value or a neutral one (None, False, []), never raises, and
reports a present value of the wrong type to the request's ``Unusable``: one warning per
request, naming the first bad field by path and type only (values may carry message text
or phone numbers). Absent keys and JSON nulls are Meta's "nothing here" and are not
reported, unless the field is required.

A ``Kind`` pairs a reader with the JSON schema of what it returns, so the event payloads
and their OpenAPI schemas come from one declaration (``shape``, ``objects_of``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from edge_onboard.core.clock import isoformat

log = logging.getLogger("edge_onboard.meta.inbound")

Schema = dict[str, Any]
Node = dict[str, Any]
# BSON (MongoDB) holds signed 64-bit integers only, and JSON from Meta can carry larger.
INT64 = 2**63
# Deeper than this, Meta's objects are not Meta's: kept out of ``raw`` (stores and
# encoders recurse, and a signed body can nest a thousand levels).
MAX_DEPTH = 32
# A Meta key or type name; one outside this shape is not echoed into logs.
PLAIN_NAME = re.compile(r"[a-z_]{1,32}")
TIMESTAMP_SCHEMA: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
}


class _Missing:
    """Marks an absent key, which is not the same as a JSON null in a log line."""


MISSING = _Missing()


def _type_name(found: object) -> str:
    if isinstance(found, _Missing):
        return "missing"
    if found is None:
        return "null"
    if isinstance(found, dict):
        return "object"
    return type(found).__name__


def at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def plain(name: str) -> str:
    """``name`` for a path in a log line: Meta's own names as they are, others masked."""
    return name if PLAIN_NAME.fullmatch(name) else "<key>"


class Unusable:
    """The unusable fields of one request. Only the first is named, and only by path and
    type, so a batch of bad items costs one log line and the line leaks no values."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.first: str | None = None
        self.count = 0

    def add(self, path: str, found: object, expected: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{path} is {_type_name(found)}, expected {expected}"

    def report(self) -> None:
        if self.first is not None:
            more = f" (and {self.count - 1} more)" if self.count > 1 else ""
            log.warning("inbound: %s; skipped%s", self.first, more)


def _absent(found: object) -> bool:
    return found is None or found is MISSING


def string(bad: Unusable, node: Node, key: str, path: str, *, required: bool = False) -> str | None:
    found = node.get(key, MISSING)
    if isinstance(found, str) and (found or not required):
        return found
    if required or not _absent(found):
        bad.add(at(path, key), found, "a non-empty str" if required else "a str")
    return None


def integer(bad: Unusable, node: Node, key: str, path: str) -> int | None:
    found = node.get(key, MISSING)
    if isinstance(found, int) and not isinstance(found, bool) and -INT64 <= found < INT64:
        return found
    if not _absent(found):
        bad.add(at(path, key), found, "a 64-bit int")
    return None


def number(bad: Unusable, node: Node, key: str, path: str) -> int | float | None:
    found = node.get(key, MISSING)
    if isinstance(found, float) or (
        isinstance(found, int) and not isinstance(found, bool) and -INT64 <= found < INT64
    ):
        return found
    if not _absent(found):
        bad.add(at(path, key), found, "a number")
    return None


def boolean(bad: Unusable, node: Node, key: str, path: str) -> bool | None:
    found = node.get(key, MISSING)
    if isinstance(found, bool):
        return found
    if not _absent(found):
        bad.add(at(path, key), found, "a bool")
    return None


def flag(bad: Unusable, node: Node, key: str, path: str) -> bool:
    """A flag Meta sends only when it is true (``forwarded``)."""
    return boolean(bad, node, key, path) is True


def obj(bad: Unusable, node: Node, key: str, path: str, *, required: bool = False) -> Node | None:
    found = node.get(key, MISSING)
    if isinstance(found, dict):
        return found
    if required or not _absent(found):
        bad.add(at(path, key), found, "an object")
    return None


def objects(bad: Unusable, node: Node, key: str, path: str) -> list[tuple[str, Node]]:
    """The objects in the list at ``node[key]`` with their paths; other items are skipped.
    (A list, not a generator: most of these lists are absent, and that is the cheap case.)"""
    found = node.get(key, MISSING)
    if not isinstance(found, list):
        if not _absent(found):
            bad.add(at(path, key), found, "a list")
        return []
    usable = []
    for index, item in enumerate(found):
        item_path = f"{at(path, key)}[{index}]"
        if isinstance(item, dict):
            usable.append((item_path, item))
        else:
            bad.add(item_path, item, "an object")
    return usable


def when(bad: Unusable, node: Node, key: str, path: str) -> str | None:
    """Meta's Unix time (a string of digits) as ISO 8601."""
    found = node.get(key, MISSING)
    if _absent(found):
        return None
    if isinstance(found, str | int | float) and not isinstance(found, bool):
        try:
            return isoformat(datetime.fromtimestamp(int(found), tz=UTC))
        except (ValueError, OverflowError, OSError):
            pass  # not a time, or one a datetime cannot hold: reported below
    bad.add(at(path, key), found, "a Unix time")
    return None


def strings(bad: Unusable, node: Node, key: str, path: str) -> list[str]:
    """The strings in the list at ``node[key]`` ([] when absent); other items are skipped."""
    found = node.get(key, MISSING)
    if not isinstance(found, list):
        if not _absent(found):
            bad.add(at(path, key), found, "a list")
        return []
    usable = [item for item in found if isinstance(item, str)]
    if len(usable) < len(found):
        bad.add(at(path, key), found, "a list of str (others skipped)")
    return usable


def digest(value: Any) -> str:
    """A short, stable digest of Meta's JSON ``value``: the id of what carries none, so
    Meta's retry of it maps onto the same event."""
    try:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested past what orjson writes: its storable part
        canonical = orjson.dumps(storable(Unusable(), value, "value"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def storable(bad: Unusable, value: Any, path: str) -> Any:
    """``value`` as every store can keep it, untouched when it already is (nearly always):
    integers past 64 bits become their decimal text, NUL in keys U+FFFD, and what nests
    deeper than MAX_DEPTH null."""
    if _fits(value, 0):
        return value
    bad.add(path, value, "JSON every store can hold (kept in part)")
    return _fitted(value, 0)


def _fits(value: Any, depth: int) -> bool:
    # Loops rather than all(): this runs for every message, and generators cost.
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return False
        for key, item in value.items():
            if "\0" in key or not _fits(item, depth + 1):
                return False
        return True
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return False
        for item in value:
            if not _fits(item, depth + 1):
                return False
        return True
    return not isinstance(value, int) or -INT64 <= value < INT64


def _fitted(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return None
        return {k.replace("\0", "\ufffd"): _fitted(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return None if depth >= MAX_DEPTH else [_fitted(v, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return str(value)
    return value


# Typed shapes: a reader and the schema of what it gives.

Reader = Callable[[Unusable, Node, str, str], Any]


@dataclass(frozen=True, slots=True)
class Kind:
    read: Reader
    schema: Schema


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STR = Kind(string, {"type": ["string", "null"]})
INT = Kind(integer, {"type": ["integer", "null"]})
NUM = Kind(number, {"type": ["number", "null"]})
BOOL = Kind(boolean, {"type": ["boolean", "null"]})
FLAG = Kind(flag, {"type": "boolean", "description": "false when Meta leaves it out"})
TIME = Kind(when, _nullable(TIMESTAMP_SCHEMA))
STRS = Kind(strings, {"type": "array", "items": {"type": "string"}})


def identifier(bad: Unusable, node: Node, key: str, path: str) -> str | int | None:
    """An id Meta sends as a string in some payloads and a number in others: as sent."""
    found = node.get(key)
    if isinstance(found, int) and not isinstance(found, bool):
        return integer(bad, node, key, path)
    return string(bad, node, key, path)


ID = Kind(identifier, {"type": ["string", "integer", "null"]})

# One field of a shape: Meta's key, ours, and its kind.
Field = tuple[str, str, Kind]


def _object_schema(fields: tuple[Field, ...]) -> Schema:
    return {
        "type": "object",
        "required": [out for _, out, _ in fields],
        "properties": {out: kind.schema for _, out, kind in fields},
    }


def read_fields(bad: Unusable, node: Node, fields: tuple[Field, ...], path: str) -> Node:
    return {out: kind.read(bad, node, key, path) for key, out, kind in fields}


def shape(*fields: Field) -> Kind:
    """A nested object (None when absent), with our keys."""

    def read(bad: Unusable, node: Node, key: str, path: str) -> Node | None:
        found = obj(bad, node, key, path)
        return None if found is None else read_fields(bad, found, fields, at(path, key))

    return Kind(read, _nullable(_object_schema(fields)))


def objects_of(*fields: Field) -> Kind:
    """A list of objects ([] when absent); items that are not objects are skipped."""

    def read(bad: Unusable, node: Node, key: str, path: str) -> list[Node]:
        return [read_fields(bad, item, fields, p) for p, item in objects(bad, node, key, path)]

    return Kind(read, {"type": "array", "items": _object_schema(fields)})


def picked(inner: str, kind: Kind) -> Kind:
    """``node[key][inner]``: one field of a wrapper object Meta nests it in."""

    def read(bad: Unusable, node: Node, key: str, path: str) -> Any:
        found = obj(bad, node, key, path)
        return None if found is None else kind.read(bad, found, inner, at(path, key))

    return Kind(read, kind.schema)
