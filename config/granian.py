"""Granian settings for ``edge-onboard serve --server granian``.

Each worker process runs Granian's embeddable server on its own event loop, with the
app object ``serve`` built there (storage and Redis already open): Granian's
documented way for a project that manages its own processes. On Linux Granian binds
its listening socket with SO_REUSEPORT, so every worker has its own and the kernel
spreads connections among them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

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

# Granian's own messages ("Starting granian", "Embedded server is experimental!") stay
# out of the log; its errors reach our handlers (redacted, in EDGE_LOG_FORMAT).
_LOGGING: dict[str, Any] = {
    "loggers": {
        "_granian": {"level": "ERROR", "handlers": [], "propagate": True},
        "granian.access": {"level": "ERROR", "handlers": [], "propagate": True},
    }
}


def granian_server(app: ASGIApp, settings: Settings, on_listening: Callable[[], None]) -> Server:
    """Granian serving ``app`` on ``settings``' host and port; ``on_listening`` runs
    once its socket is bound and it accepts connections."""
    return Server(
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
    """The app, telling ``on_listening`` once Granian listens.

    Granian runs the lifespan startup, then binds its socket and starts accepting in
    the same task with no await in between, so a callback scheduled when the startup
    completes runs right after that: never before the socket accepts connections.
    """

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
                asyncio.get_running_loop().call_soon(self.on_listening)

        await self.app(scope, receive, send_and_tell)
