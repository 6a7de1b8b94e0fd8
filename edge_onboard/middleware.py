"""Pure ASGI middleware: request ids and the last line of defence against 500 leaks."""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_onboard.errors import ApiError

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

        request_id = "req_" + uuid.uuid4().hex
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
