"""Pure ASGI middleware: request ids and the last line of defence against 500 leaks;
the hot routes answered ahead of the whole middleware stack."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_onboard.core.errors import ApiError

log = logging.getLogger("edge_onboard.request")


def _new_request_id(scope: Scope) -> str:
    # 128 random bits, as before from os.urandom, without a system call per request: an
    # id names a request in logs and support mail, it guards nothing (random reseeds
    # itself in every forked worker).
    request_id = f"req_{random.getrandbits(128):032x}"
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def _log_unhandled(scope: Scope, request_id: str) -> None:
    """The exception being handled, logged with its traceback and request id."""
    log.exception(
        "unhandled error request_id=%s method=%s path=%s",
        request_id,
        scope.get("method"),
        scope.get("path"),
    )


def _internal_error(request_id: str) -> Response:
    """The generic ``api_error`` that answers an unexpected exception, leaking nothing."""
    return ApiError(
        500,
        "internal_error",
        f"Something went wrong on our side. Quote request id {request_id} if you contact support.",
    ).response()


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

        request_id = _new_request_id(scope)
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
            _log_unhandled(scope, request_id)
            if started:
                raise
            await _internal_error(request_id)(scope, receive, send_with_id)


Endpoint = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
_READS = frozenset({"GET", "HEAD"})


class HotStarlette(Starlette):
    """Starlette, with reads of the hottest routes answered ahead of its middleware stack.

    ``hot`` maps a prefix such as ``/signup/`` to the endpoint of ``/signup/{param}``
    and the name of that one path parameter. A GET or HEAD whose path is such a prefix
    plus one segment goes straight to the endpoint, unless ``not_hot`` says otherwise
    for it; everything else (other methods, deeper paths) goes through the middleware
    and the router as usual. The endpoint
    answers exactly as it would there: the app's own exception handlers, a
    ``Request-Id`` header, and an unexpected exception logged and answered with a
    generic 500 (as ``RequestIdMiddleware`` does). What it saves: Starlette's error
    middleware, ours, its exception middleware and the router, each of which wraps
    ``send`` or matches routes one by one; a hot request crosses into the server twice
    (the response's start and its body) and makes no other call on the way.
    """

    def __init__(
        self,
        *,
        hot: Mapping[str, tuple[Endpoint, str]],
        not_hot: Callable[[Scope], bool] = lambda scope: False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._hot = tuple((prefix, len(prefix), *target) for prefix, target in hot.items())
        self._not_hot = not_hot
        self._handlers = tuple(
            (kind, handler)
            for kind, handler in self.exception_handlers.items()
            if isinstance(kind, type)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _READS:
            path: str = scope["path"]
            for prefix, length, endpoint, param in self._hot:
                if path.startswith(prefix) and len(path) > length and "/" not in path[length:]:
                    if self._not_hot(scope):
                        break
                    scope["app"] = self
                    scope["path_params"] = {param: path[length:]}
                    await self._read(scope, receive, send, endpoint)
                    return
        await super().__call__(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint) -> None:
        request_id = _new_request_id(scope)
        request = Request(scope, receive)
        try:
            try:
                response = await endpoint(request)
            except Exception as exc:
                response = await self._handle(request, exc)
        except Exception:
            _log_unhandled(scope, request_id)
            response = _internal_error(request_id)
        header = (b"request-id", request_id.encode())
        if response.background is None and type(response).__call__ is Response.__call__:
            # What Response.__call__ sends, with the id among the headers.
            start = {"type": "http.response.start", "status": response.status_code}
            start["headers"] = [*response.raw_headers, header]
            await send(start)
            await send({"type": "http.response.body", "body": response.body})
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await response(scope, receive, send_with_id)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        for kind, handler in self._handlers:
            if isinstance(exc, kind):
                response: Response = await handler(request, exc)
                return response
        raise exc
