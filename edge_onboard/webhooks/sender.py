"""Sending one webhook: a POST to a checked address, over a pooled connection.

The SSRF rules (``edge_onboard/core/urls.py``) hold where a connection is made: the pool's
network backend resolves the host name, checks every address it resolves to and
connects to a checked one, so a name whose DNS answer turns private (rebinding) gets no
connection. The request itself keeps the real host name, so the pool keys connections by
origin (scheme, host name, port) and TLS verifies and sends SNI for that name: a
connection is never reused for another host name, even one on the same address.

Connections are kept alive per origin: every response body is read (at most
``MAX_DRAIN`` bytes; a longer one closes its connection), which lets the next delivery to
that endpoint reuse it instead of a new TCP and TLS handshake.
"""

from __future__ import annotations

import collections.abc
import contextlib
import email.utils
import functools
import select
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import httpcore
import httpx

from edge_onboard.core.urls import IPAddress, address_problem, resolve

TIMEOUT = 15.0
# Bytes of a response body read to keep its connection; past that the connection closes.
MAX_DRAIN = 64 * 1024
# Seconds an idle connection to an endpoint is kept for the next delivery: under the 5 s
# after which many servers (Node, uvicorn, hypercorn) close one, so a request seldom goes
# out on a connection the server is closing.
KEEPALIVE = 4.0
USER_AGENT = b"edge-onboard-webhooks/1"
# What httpcore raises for a request that failed on the network or in HTTP.
_TRANSPORT_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class RefusedTarget(httpcore.ConnectError):
    """No connection may be made to this host (it does not resolve, or resolves to an
    address the rules refuse); the message is the delivery's error."""


async def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = resolve
) -> list[IPAddress]:
    """What ``host`` resolves to, every address allowed; else ``RefusedTarget``."""
    addresses = await resolver(host, port)
    if not addresses:
        raise RefusedTarget(f"could not resolve {host}")
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            raise RefusedTarget(f"refused: {host} resolves to {problem}")
    return addresses


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream, answering "is_readable" from the socket it keeps.

    The pool asks that of every idle connection whenever it hands out or takes back
    one, and anyio's own answer builds a dict of every socket attribute each time: a
    large share of a delivery's CPU with a few dozen connections kept."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, sock: socket.socket | None) -> None:
        self._inner = inner
        self._socket = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _Stream(tls, self._socket)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Readable while idle means closed by the server (or gone): do not reuse.
            if self._socket is None or self._socket.fileno() < 0:
                return True
            poll = select.poll()
            poll.register(self._socket, select.POLLIN)
            return bool(poll.poll(0))
        return self._inner.get_extra_info(info)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, connecting only to addresses the SSRF rules allow,
    checked when the connection is made."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: collections.abc.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(
            host, port, allow_private=self.allow_private, resolver=self.resolver
        )
        stream = await self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        return _Stream(stream, stream.get_extra_info("socket"))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: collections.abc.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedTarget("refused: not a TCP address")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> tuple[httpcore.URL, bytes, str, int]:
    """The request URL (host name IDNA-encoded), its Host header, host and port; parsed
    once per endpoint URL."""
    parsed = httpx.URL(url)
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return target, parsed.netloc, parsed.raw_host.decode("ascii"), port


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which float() refuses
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - now).total_seconds())
    return None


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value.decode("latin-1")
    return None


class Sender:
    """POSTs webhooks over a connection pool whose connections go only to checked
    addresses. ``transport`` (tests) replaces the network with an httpx transport; the
    address is then checked before each send, as a connection would be."""

    def __init__(
        self,
        *,
        allow_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
        max_connections: int = 64,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self._client = (
            httpx.AsyncClient(
                timeout=TIMEOUT,
                follow_redirects=False,
                trust_env=False,
                transport=transport,
                headers={"User-Agent": USER_AGENT.decode()},
            )
            if transport is not None
            else None
        )
        # The pool never holds more connections than deliveries can be in flight; an idle
        # one to another endpoint is closed to make room.
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive,
            network_backend=CheckedBackend(allow_private=allow_private, resolver=resolver),
        )
        timeouts = {"connect": TIMEOUT, "read": TIMEOUT, "write": TIMEOUT, "pool": TIMEOUT}
        self._extensions: dict[str, Any] = {"timeout": timeouts}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self._pool.aclose()

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], now: datetime
    ) -> SendResult:
        started = time.monotonic()
        try:
            if self._client is not None:
                status, retry_after = await self._send_injected(url, body, headers)
            else:
                status, retry_after = await self._send_pooled(url, body, headers)
        except RefusedTarget as exc:
            return SendResult(None, str(exc))
        except (httpx.TimeoutException, httpcore.TimeoutException):
            return SendResult(None, "timed out after 15 s", duration_ms=_ms_since(started))
        except (httpx.HTTPError, *_TRANSPORT_ERRORS) as exc:
            return SendResult(
                None, f"connection failed ({type(exc).__name__})", duration_ms=_ms_since(started)
            )
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return SendResult(status, error, parse_retry_after(retry_after, now), _ms_since(started))

    async def _send_pooled(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str | None]:
        target, host_header, _, _ = _target(url)
        raw = [(b"Host", host_header), (b"User-Agent", USER_AGENT)]
        raw += [(name.encode(), value.encode()) for name, value in headers.items()]
        async with self._pool.stream(
            "POST", target, headers=raw, content=body, extensions=self._extensions
        ) as response:
            retry_after = _header(response.headers, b"retry-after")
            chunks = response.aiter_stream()
            assert isinstance(chunks, collections.abc.AsyncGenerator)
            async with contextlib.aclosing(chunks):
                left = MAX_DRAIN
                async for chunk in chunks:
                    left -= len(chunk)
                    if left < 0:
                        break  # too long to keep: closing the response closes the connection
            return response.status, retry_after

    async def _send_injected(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str | None]:
        assert self._client is not None
        _, _, host, port = _target(url)
        await checked_addresses(
            host, port, allow_private=self.allow_private, resolver=self.resolver
        )
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code, response.headers.get("retry-after")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
