"""Route helpers shared by the areas that publish routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]
# A hot GET the middleware serves before the router: path prefix -> (endpoint, path param).
HotRoutes = dict[str, tuple[Endpoint, str]]


def resource(path: str, **handlers: Endpoint) -> Route:
    """One route per path, so a 405's ``Allow`` header lists every method it has."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))
