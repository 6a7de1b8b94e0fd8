"""Granian settings for ``edge-onboard serve --server granian``.

Each worker process runs Granian's embeddable server on its own event loop, with the
app object ``serve`` built there (storage and Redis already open): Granian's
documented way for a project that manages its own processes. It serves the socket
the worker bound, as hypercorn does (SO_REUSEPORT with several workers).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_onboard.config.settings import Settings

# As hypercorn's keep_alive_timeout (config/hypercorn.py): above common load balancers'
# idle timeouts. hyper applies it while it waits for a request's headers, idle
# keep-alive connections included.
HEADER_READ_TIMEOUT_MS = 75_000
# How long a stop waits for the requests in flight, as hypercorn's graceful_timeout.
GRACEFUL_TIMEOUT = 20.0


class _ClientLeft(logging.Filter):
    """When a client disconnects while the app awaits ``receive()`` (a request body),
    Granian cancels that call or answers it with a disconnect; the app then ends with
    ``CancelledError`` (or Starlette's ``ClientDisconnect``, which our app answers
    itself) and Granian logs that as an application error with a traceback. A client
    leaving is not an error (hypercorn says nothing): that record is dropped, any other
    is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().rstrip()
        last = message.rsplit("\n", 1)[-1]
        return not (
            message.startswith("Application callable raised an exception")
            and last.startswith(("CancelledError", "ClientDisconnect"))
        )


# Granian's own messages ("Starting granian", "Embedded server is experimental!") stay
# out of the log; its errors reach our handlers (redacted, in EDGE_LOG_FORMAT).
_LOGGING: dict[str, Any] = {
    "filters": {"client_left": {"()": _ClientLeft}},
    "loggers": {
        "_granian": {"level": "ERROR", "handlers": [], "propagate": True},
        # where Granian's Rust side reports what the app raised
        "_granian.utils": {"handlers": [], "propagate": True, "filters": ["client_left"]},
        "granian.access": {"level": "ERROR", "handlers": [], "propagate": True},
    },
}


def granian_server(
    app: ASGIApp, settings: Settings, sock: socket.socket, on_listening: Callable[[], None]
) -> Server:
    """Granian serving ``app`` on ``sock`` (bound and listening; Granian owns it from
    here); ``on_listening`` runs once the app's lifespan has started."""
    server = _OnOurSocket(
        _ListeningAfterStartup(app, on_listening),
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        backlog=1024,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        log_level=LogLevels.error,  # granian applies it to "_granian" over _LOGGING's
        log_dictconfig=_LOGGING,
    )
    # SocketHolder's stub omits its constructor: (file descriptor, is a Unix socket, backlog).
    holder = cast("Callable[[int, bool, int], SocketHolder]", SocketHolder)
    server.listener = holder(sock.detach(), False, 1024)
    return server


class _OnOurSocket(Server):
    """Granian's embeddable server on the socket ``serve`` bound (startup.listen_socket).

    Left to itself Granian binds its socket from a Rust thread a moment after it
    starts, so a worker could not say truthfully when it listens, nor a port in use in
    one line. Handed a bound socket, it serves it as it does on every platform but
    Linux: as a ``SocketHolder`` in place of its listener spec.
    """

    listener: SocketHolder | None = None

    def _init_shared_socket(self) -> None:
        # setattr: Granian's attributes are typed from their None defaults
        setattr(self, "_ssp", None)  # noqa: B010
        setattr(self, "_shd", self.listener)  # noqa: B010


async def serve_until(server: Server, stop: asyncio.Event) -> None:
    """Run ``server`` until ``stop`` is set, then let the requests in flight finish (up
    to ``GRACEFUL_TIMEOUT``) and run the app's lifespan shutdown."""
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    # Granian's Python side is untyped; stop() sets its interrupt flag and returns.
    cast("Callable[[], None]", server.stop)()
    stopping.cancel()
    try:
        await asyncio.wait_for(serving, GRACEFUL_TIMEOUT + 5)
    except TimeoutError:
        pass  # a request outlived the grace period; it is dropped as hypercorn would


class _ListeningAfterStartup:
    """The app, telling ``on_listening`` once its lifespan has started (the socket
    listens already: connections wait in its backlog until Granian accepts them)."""

    def __init__(self, app: ASGIApp, on_listening: Callable[[], None]) -> None:
        self.app = app
        self.on_listening = on_listening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_tell(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.on_listening()

        await self.app(scope, receive, send_and_tell)
