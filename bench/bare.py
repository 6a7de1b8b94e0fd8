"""The floor: a bare Starlette route, doing no work a real handler could skip.

    python -m bench.bare --server hypercorn|granian --port PORT

serves it as ``edge-onboard serve`` serves the app (edge_onboard/serving.py), on
127.0.0.1, until SIGTERM. The same ``app`` is also what each server's own command line
serves (``granian --interface asgi bench.bare:app``, ``hypercorn bench.bare:app``):
bench/_servers.py starts both, so a bench prints the floor of the stock server beside
the floor of our embedding.

``/bare`` answers a small JSON body; a POST's body is read first (as any real handler
would), a GET reads nothing (awaiting ``receive`` for a body a GET does not have costs
Granian a second crossing into Python per request). ``/page`` and ``/page.gz`` answer
the bytes and headers in the file named by ``BENCH_PAGE`` (the service's hosted page as
saved by bench.edge, plain and gzip-compressed as a browser gets it): the floor for a
page of that size, with no work behind it. ``POST /bare/insert`` reads and parses its
JSON body and inserts it as one document (with an id and a timestamp) into the MongoDB
named by ``BENCH_MONGO_URL``, through the driver and with the write concern the service
uses: the floor for a request whose work is one durable write.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PAGE_FILE = os.environ.get("BENCH_PAGE")
_PAGE = orjson.loads(Path(_PAGE_FILE).read_bytes()) if _PAGE_FILE else None


async def bare(request: Request) -> Response:
    if request.method == "POST":
        await request.body()  # a POST's body is read, as any real handler would
    return Response(b'{"status":"ok"}', media_type="application/json")


_MONGO_URL = os.environ.get("BENCH_MONGO_URL")
_collections: list[Any] = []  # the one collection, made in the serving loop on first use


async def insert(request: Request) -> Response:
    assert _MONGO_URL, "BENCH_MONGO_URL names no MongoDB"
    if not _collections:
        from pymongo import AsyncMongoClient

        _collections.append(AsyncMongoClient(_MONGO_URL).get_database()["bench_floor"])
    document = orjson.loads(await request.body())
    document.update(_id=str(uuid.uuid4()), created_at=datetime.now(UTC))
    await _collections[0].insert_one(document)
    return Response(b'{"status":"ok"}', status_code=201, media_type="application/json")


def _page_route(variant: str) -> Route:
    saved = _PAGE[variant] if _PAGE else None
    body = base64.b64decode(saved["body"]) if saved else b""

    async def page(request: Request) -> Response:
        assert saved is not None, "BENCH_PAGE names no file"
        return Response(body, headers=saved["headers"])

    return Route("/page" if variant == "plain" else "/page.gz", page, methods=["GET"])


app = Starlette(
    routes=[
        Route("/bare", bare, methods=["GET", "POST"]),
        Route("/bare/insert", insert, methods=["POST"]),
        _page_route("plain"),
        _page_route("gzip"),
    ]
)


def main() -> None:
    from edge_onboard.config import Settings
    from edge_onboard.serving import exit_after_granian, serve_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=("hypercorn", "granian"), default="hypercorn")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(port=args.port, server=args.server)
    asyncio.run(serve_app(app, settings, lambda address: None))
    if args.server == "granian":
        exit_after_granian(0)


if __name__ == "__main__":
    main()
