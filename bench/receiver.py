"""A fast webhook receiver for the delivery benchmark: answers 200 and notes when each
``webhook-id`` first arrived (``GET /stats`` returns them; ``DELETE /stats`` clears)."""

from __future__ import annotations

import time
from typing import Any

import orjson

_first_seen: dict[str, float] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain the body
        message = await receive()
        if not message.get("more_body"):
            break
    body = b""
    if scope["method"] == "POST":
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                _first_seen.setdefault(value.decode(), time.time())
    elif scope["path"] == "/stats":
        if scope["method"] == "DELETE":
            _first_seen.clear()
        body = orjson.dumps(_first_seen)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
