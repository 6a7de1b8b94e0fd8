"""hypercorn settings for ``edge-onboard serve``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from hypercorn.config import Config
from hypercorn.events import Updated
from hypercorn.typing import ASGIFramework
from starlette.types import ASGIApp

from edge_onboard.config.settings import Settings


async def serve_asgi(
    app: ASGIApp, config: Config, shutdown_trigger: Callable[[], Awaitable[Any]]
) -> None:
    """hypercorn's ``serve`` for an ASGI app, until ``shutdown_trigger`` returns."""
    from hypercorn.asyncio import serve

    # hypercorn types its ASGI protocol with its own scope TypedDicts; an ASGI app is a
    # plain ASGI 3 callable that mypy cannot match to them, so the one cast is here.
    await serve(cast("ASGIFramework", app), config, shutdown_trigger=shutdown_trigger)


def quiet_startup_line() -> None:
    """hypercorn says "Running on …" at INFO; `serve` says it listens itself, once,
    after storage and Redis are open (edge_onboard/startup.py)."""
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)


def hypercorn_config(settings: Settings) -> Config:
    release_closed_connections()
    quiet_startup_line()
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.keep_alive_timeout = 75  # above common load balancers' idle timeouts
    # A backstop for any wait on a client: hypercorn applies it to every read, idle
    # keep-alive ones included, so it must exceed the keep-alive. Bodies have their
    # own, shorter deadline (validation.BODY_DEADLINE); idle headers end at keep-alive.
    config.read_timeout = config.keep_alive_timeout + 5
    config.graceful_timeout = 20
    config.accesslog = None  # request logging is ours (with request ids), not hypercorn's
    config.errorlog = logging.getLogger("hypercorn.error")  # one format, through ours
    config.server_names = []
    config.include_server_header = False
    config.worker_class = "asyncio"
    # Worker processes are ours (edge_onboard/serving.py), each with its own socket.
    return config


def release_closed_connections() -> None:
    """Let a connection go as soon as its client closes it.

    hypercorn's asyncio worker (0.17, 0.18) keeps serving a connection whose client has
    closed it until its keep-alive timeout runs out: the connection's task group waits
    for the keep-alive timer, which nothing stops when the client goes away. With the
    long keep-alive a load balancer needs (75 s here), every closed connection held
    ~13 KB for 75 s: resident memory climbed by ~0.8 MB per 64 connections closed and
    only levelled off 75 s later (measured with bench/edge.py's memory rounds;
    tests/test_serve.py shows the tasks). This ends the keep-alive wait once the client
    has gone: after the last read, and whenever the connection turns idle after it.
    """
    from hypercorn.asyncio.tcp_server import TCPServer

    if getattr(TCPServer, "_edge_releases_closed", False):
        return
    read_data = TCPServer._read_data
    protocol_send = TCPServer.protocol_send

    async def _read_data(self: Any) -> None:
        await read_data(self)
        await self.idle_task.stop()  # the client is gone: no keep-alive to wait out

    async def _protocol_send(self: Any, event: Any) -> None:
        await protocol_send(self, event)
        if isinstance(event, Updated) and event.idle and self.reader.at_eof():
            await self.idle_task.stop()  # a response finished after the client left

    patched: dict[str, Any] = {
        "_read_data": _read_data,
        "protocol_send": _protocol_send,
        "_edge_releases_closed": True,
    }
    for name, value in patched.items():  # setattr: mypy (rightly) refuses method assignment
        setattr(TCPServer, name, value)
