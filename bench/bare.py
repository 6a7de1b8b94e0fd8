"""The floor: a bare Starlette route on the same hypercorn settings as the service."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def bare(request: Request) -> Response:
    await request.body()  # a POST's body is read, as any real handler would
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/bare", bare, methods=["GET", "POST"])])
