"""The floor: a bare Starlette route on the same hypercorn settings as the service.

``/bare`` answers a small JSON body. ``/page`` answers the bytes and headers in the
file named by ``BENCH_PAGE`` (the service's hosted page, saved by bench.edge): the
floor for a page of that size, with no work behind it.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PAGE_FILE = os.environ.get("BENCH_PAGE")
_PAGE = orjson.loads(Path(_PAGE_FILE).read_bytes()) if _PAGE_FILE else None


async def bare(request: Request) -> Response:
    await request.body()  # a POST's body is read, as any real handler would
    return Response(b'{"status":"ok"}', media_type="application/json")


async def page(request: Request) -> Response:
    await request.body()
    assert _PAGE is not None, "BENCH_PAGE names no file"
    return Response(_PAGE["body"].encode(), headers=_PAGE["headers"])


app = Starlette(
    routes=[Route("/bare", bare, methods=["GET", "POST"]), Route("/page", page, methods=["GET"])]
)
