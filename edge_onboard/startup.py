"""Opening what the service stands on, before it says it is listening.

Storage and Redis are opened (and checked) first; what fails becomes a
``StartupError`` whose message is one line an operator can act on, never a
traceback. ``edge-onboard serve`` and ``worker`` print it and exit with status 1.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import anyio

from edge_onboard.config import Settings
from edge_onboard.storage import Storage, StorageError, UnsupportedServerError, from_url

# How long a start waits for Redis to answer a PING.
REDIS_START_TIMEOUT = 5.0


class StartupError(Exception):
    """The service cannot start; the message is one line saying why and what to do."""


def describe_url(url: str) -> str:
    """A storage or Redis URL without credentials or options, for logs and messages."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return f"sqlite {url[len('sqlite:///') :]}"
    if parts.scheme == "memory":
        return "memory (nothing kept after exit)"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path if parts.path not in ('', '/') else ''}"


def _reason(exc: BaseException) -> str:
    """The first line of a driver's message, without pymongo's topology dump."""
    text = str(exc).split(", Timeout:", 1)[0].split(" (configured timeouts", 1)[0]
    return (text.splitlines() or [type(exc).__name__])[0].strip()


async def open_storage(settings: Settings) -> Storage:
    """The configured store, opened (schema, indexes) and checked."""
    # Outside the primary region: reads from the nearest member, no index building.
    staleness = None if settings.in_primary_region else settings.replica_max_staleness
    store = from_url(settings.storage_url, max_staleness=staleness)
    where = describe_url(settings.storage_url)
    try:
        await store.open()
    except UnsupportedServerError as exc:
        await _close_quietly(store)
        raise StartupError(f"EDGE_STORAGE_URL: {exc}") from None
    except StorageError as exc:
        await _close_quietly(store)
        raise StartupError(
            f"EDGE_STORAGE_URL: cannot open storage at {where}: {_reason(exc)}"
        ) from None
    return store


async def _close_quietly(store: Storage) -> None:
    try:
        await store.close()
    except StorageError:
        pass  # it never opened; the error that matters is the one being raised


async def open_redis(settings: Settings, *, max_connections: int = 64) -> Any:
    """The configured Redis client after it answered a PING, or None without Redis: the
    cluster client for a Redis Cluster (``redis+cluster://``, or a plain URL naming one
    of its nodes), else the single-server client."""
    if settings.redis_url is None:
        return None
    from redis.exceptions import RedisClusterException, RedisError

    from edge_onboard.webhooks.queue.redis import open_client

    url = settings.redis_url.reveal()
    client = None
    try:
        with anyio.fail_after(REDIS_START_TIMEOUT):
            client = await open_client(url, max_connections=max_connections)
            await client.ping()
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        if client is not None:
            await client.aclose()
        reason = _reason(exc) if str(exc) else f"no answer within {REDIS_START_TIMEOUT:.0f} s"
        raise StartupError(
            f"EDGE_REDIS_URL: Redis at {describe_url(url)} did not answer: {reason}"
        ) from None
    return client


def listen_socket(settings: Settings, *, reuse_port: bool = False) -> socket.socket:
    """The listening socket, bound before anything says the service is listening;
    ``reuse_port`` lets each worker process bind its own on the same port."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        return socket.create_server(
            (settings.host, settings.port), family=family, backlog=1024, reuse_port=reuse_port
        )
    except OSError as exc:
        raise _port_error(settings, exc) from None


def check_port(settings: Settings) -> tuple[str, int]:
    """That the port is free, before worker processes bind their own sockets on it:
    bound once without SO_REUSEPORT, so a port that anything listens on (another
    edge-onboard too) fails here, then released. The address, with the port the
    system chose for port 0."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As create_server: connections left in TIME_WAIT by a stop do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise _port_error(settings, exc) from None
        host, port = probe.getsockname()[:2]
    return host, port


def _port_error(settings: Settings, exc: OSError) -> StartupError:
    return StartupError(
        f"EDGE_PORT: cannot listen on {settings.host}:{settings.port}: "
        f"{exc.strerror or exc} (another process may be using it; pick another "
        "with --port)"
    )


def _region(settings: Settings) -> str:
    """The start line's region part: which region, which role; nothing in one region."""
    if settings.region is None:
        return ""
    if settings.in_primary_region:
        return f"region {settings.region}, primary; "
    replica = (
        f", Redis replica {describe_url(settings.redis_replica_url.reveal())}"
        if settings.redis_replica_url
        else ""
    )
    return (
        f"region {settings.region}, reads from replicas{replica}, writes replayed to "
        f"{settings.primary_region}; "
    )


def summary(settings: Settings, address: tuple[str, int]) -> str:
    """The one "listening" line: address, public URL, storage, Redis, sandbox and the
    server; without a Meta app (and no EDGE_SANDBOX), that live signups cannot work and
    a test key can."""
    host, port = address
    shown = f"[{host}]" if ":" in host else host
    redis = describe_url(settings.redis_url.reveal()) if settings.redis_url else "off"
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    return (
        f"edge-onboard listening on http://{shown}:{port} (public URL {settings.public_url}; "
        f"{_region(settings)}storage {describe_url(settings.storage_url)}; redis {redis}; "
        f"sandbox {'on' if settings.sandbox else 'for test keys only'}; "
        f"{settings.server}{workers})"
        + (
            ""
            if settings.sandbox or settings.meta_configured
            else ". No Meta app configured: live signups cannot work until EDGE_META_APP_ID, "
            "EDGE_META_APP_SECRET and EDGE_META_CONFIG_ID are set; test keys (edge-onboard "
            "keys create --test) work now, against the built-in fake of Meta"
        )
    )
