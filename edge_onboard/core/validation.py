"""Small, explicit checks for JSON bodies and query strings, each naming its ``param``."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import anyio
import orjson
from starlette.requests import Request

from edge_onboard.core.errors import ApiError, invalid

# A resource id as the API hands it out (lowercase UUID); anything else is a 404 unread.
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

# "Not blank": at least one character that is whitespace neither to Python (str.isspace:
# includes U+001C-U+001F and U+0085) nor to ECMAScript (\s: includes U+FEFF). Spelled out
# so the server and the OpenAPI document (ECMA-262 patterns) share one definition.
NON_BLANK_PATTERN = (
    r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
NON_BLANK = re.compile(NON_BLANK_PATTERN)

# Digits as the wire spells them. str.isdigit() also says yes to "²" or an Arabic-Indic one,
# which int() then refuses (a 500) or reads as a number nobody sent.
_ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_digits(value: str, *, most: int | None = None) -> bool:
    """Whether ``value`` is one or more ASCII digits (at most ``most`` of them)."""
    return _ASCII_DIGITS.fullmatch(value) is not None and (most is None or len(value) <= most)


MAX_BODY_BYTES = 1024 * 1024
BODY_DEADLINE = 10.0  # seconds for a whole request body to arrive


def json_object(request: Request, raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (the body read by ``read_body``); empty counts as ``{}``."""
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The body is not valid JSON: {exc.msg}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.", code="invalid_json")
    return body


async def read_body(request: Request) -> bytes:
    """The whole body, within ``BODY_DEADLINE`` seconds and ``MAX_BODY_BYTES``.

    A client trickling a body cannot hold a connection (and its memory) open: past the
    deadline it gets 408 and the connection is closed. A client that leaves mid-body
    raises Starlette's ``ClientDisconnect``, which the app answers with one debug line
    (there is nobody to answer)."""
    length = request.headers.get("content-length")
    if length is not None and ascii_digits(length) and int(length) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(BODY_DEADLINE) as deadline:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _too_large()
            chunks.append(chunk)
    if deadline.cancelled_caught:
        raise ApiError(
            408,
            "request_timeout",
            f"The request body did not arrive within {BODY_DEADLINE:.0f} s.",
            headers={"Connection": "close"},
        )
    return b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(413, "request_too_large", "The request body is larger than 1 MB.")


def reject_unknown(given: Collection[str], allowed: Collection[str], *, where: str = "") -> None:
    for name in given:
        if name not in allowed:
            raise invalid(
                f"Received unknown parameter: {where}{name}",
                param=f"{where}{name}",
                code="unknown_parameter",
            )


def reject_repeated(given: Iterable[str]) -> None:
    """Refuse a name given twice (``?limit=5&limit=50``): which one wins is a guess."""
    seen: set[str] = set()
    for name in given:
        if name in seen:
            raise invalid(f"'{name}' must be given at most once.", param=name)
        seen.add(name)


def string(
    body: Mapping[str, Any],
    name: str,
    *,
    min_length: int = 0,
    max_length: int,
    required: bool = False,
    pattern: re.Pattern[str] | None = None,
    hint: str = "",
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
        return None
    if not isinstance(value, str):
        raise invalid(f"'{name}' must be a string.", param=name)
    if not min_length <= len(value) <= max_length:
        raise invalid(
            f"'{name}' must be {min_length}-{max_length} characters long.",
            param=name,
        )
    if pattern is not None and not pattern.search(value):
        raise invalid(f"'{name}' is not valid{': ' + hint if hint else ''}.", param=name)
    return value


def integer(body: Mapping[str, Any], name: str, *, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be an integer.", param=name)
    if not low <= value <= high:
        raise invalid(f"'{name}' must be between {low} and {high}.", param=name)
    return value


def query_int(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise invalid(f"'{name}' must be an integer between {low} and {high}.", param=name)
    value = int(raw)
    if not low <= value <= high:
        raise invalid(f"'{name}' must be an integer between {low} and {high}.", param=name)
    return value
