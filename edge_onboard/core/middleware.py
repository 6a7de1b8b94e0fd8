"""Pure ASGI middleware: request ids and the last line of defence against 500 leaks;
the hot routes' dispatch ahead of the router."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_onboard.core.errors import ApiError

log = logging.getLogger("edge_onboard.request")


class RequestIdMiddleware:
    """Gives every HTTP request an id, sent back as ``Request-Id``.

    An exception that escapes the app is logged with its traceback and request id,
    and answered with a generic ``api_error`` that leaks nothing about it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = "req_" + os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error request_id=%s method=%s path=%s",
                request_id,
                scope.get("method"),
                scope.get("path"),
            )
            if started:
                raise
            error = ApiError(
                500,
                "internal_error",
                f"Something went wrong on our side. Quote request id {request_id} if you "
                "contact support.",
            )
            await error.response()(scope, receive, send_with_id)


Endpoint = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
_READS = frozenset({"GET", "HEAD"})


class HotRoutes:
    """Reads of the hottest routes, dispatched ahead of Starlette's router.

    ``routes`` maps a prefix such as ``/signup/`` to the endpoint of ``/signup/{param}``
    and the name of that one path parameter. A GET or HEAD whose path is such a prefix
    plus one segment goes straight to the endpoint, with the app's own exception
    handlers; everything else (other methods, deeper paths) goes on to the router as
    usual. The endpoint answers exactly as it would through the router: this saves the
    route-by-route matching and the per-request wrappers, which on the hosted page and
    a link lookup are a tenth of the time the whole request takes.
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, tuple[Endpoint, str]],
        handlers: Mapping[type[Exception], ExceptionHandler],
    ) -> None:
        self.app = app
        self.routes = tuple((prefix, len(prefix), *target) for prefix, target in routes.items())
        self.handlers = tuple(handlers.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _READS:
            path: str = scope["path"]
            for prefix, length, endpoint, param in self.routes:
                if path.startswith(prefix) and len(path) > length and "/" not in path[length:]:
                    scope["path_params"] = {param: path[length:]}
                    request = Request(scope, receive)
                    try:
                        response = await endpoint(request)
                    except Exception as exc:
                        response = await self._handle(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        for kind, handler in self.handlers:
            if isinstance(exc, kind):
                return await handler(request, exc)
        raise exc
