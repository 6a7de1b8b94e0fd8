"""A fast webhook receiver for the delivery benchmark: answers 200 to every POST and
notes when each (port, ``webhook-id``) first and last arrived, and which TCP connections
(client address and port) each port saw. ``GET /stats`` returns
``{"count", "posts", "first", "last", "connections": {port: n}}`` (``posts`` counts
repeats too), ``GET /seen`` when each
``webhook-id`` first arrived; ``DELETE /stats`` clears.
Bind it to several ports to stand for several endpoints."""

from __future__ import annotations

import time
from typing import Any

import orjson

_first_seen: dict[tuple[int, str], float] = {}
_posts = [0]
_connections: dict[int, set[tuple[str, int]]] = {}


def stats() -> dict[str, Any]:
    seen = _first_seen.values()
    return {
        "count": len(_first_seen),
        "posts": _posts[0],
        "first": min(seen, default=0.0),
        "last": max(seen, default=0.0),
        "connections": {str(port): len(peers) for port, peers in _connections.items()},
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain the body
        message = await receive()
        if not message.get("more_body"):
            break
    body = b"ok"
    if scope["method"] == "POST":
        _posts[0] += 1
        port = scope["server"][1]
        _connections.setdefault(port, set()).add(tuple(scope["client"]))
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                _first_seen.setdefault((port, value.decode()), time.time())
    elif scope["path"] == "/stats":
        if scope["method"] == "DELETE":
            _first_seen.clear()
            _connections.clear()
            _posts[0] = 0
        body = orjson.dumps(stats())
    elif scope["path"] == "/seen":
        body = orjson.dumps({ident: at for (_, ident), at in _first_seen.items()})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
