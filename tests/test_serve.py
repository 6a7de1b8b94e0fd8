"""hypercorn as `edge-onboard serve` configures it: connections closed by their clients
are let go at once, not after the keep-alive timeout (config/hypercorn.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypercorn.asyncio import serve
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Scope,
)

from edge_onboard.config.hypercorn import hypercorn_config
from tests.conftest import make_settings
from tests.live import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # hypercorn.asyncio


async def hello(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    if scope["type"] != "http":
        return
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": []}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"ok", "more_body": False}
    await send(start)
    await send(body)


async def test_closed_connections_do_not_wait_out_the_keep_alive() -> None:
    port = free_port()
    config = hypercorn_config(make_settings(EDGE_PORT=str(port)))
    assert config.keep_alive_timeout >= 60  # long, as load balancers need
    stop = asyncio.Event()
    server = asyncio.create_task(serve(hello, config, shutdown_trigger=stop.wait))
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    idle = len(asyncio.all_tasks())

    async def one_request() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        writer.close()  # the client leaves; the connection would stay open for more
        await writer.wait_closed()

    await asyncio.gather(*(one_request() for _ in range(20)))
    for _ in range(40):  # far less than the keep-alive timeout
        if len(asyncio.all_tasks()) <= idle:
            break
        await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= idle, "closed connections are still being served"
    stop.set()
    await server
