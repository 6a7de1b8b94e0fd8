"""Delivery over real sockets: connections kept per endpoint, bounded body reads, and the
SSRF rules checked where connections are made (a rebinding DNS answer gets none)."""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.urls import IPAddress
from edge_onboard.storage import DeliveryStatus, OutgoingWebhook, Storage, WebhookStatus
from edge_onboard.storage.paging import Window
from edge_onboard.webhooks.delivery import DeliveryEngine, Sender
from edge_onboard.webhooks.endpoints import WebhookService
from edge_onboard.webhooks.queue.memory import MemoryQueue
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
EVENT = "phone_number.connected"
BIG = b"x" * (200 * 1024)


class Seen:
    """What the receiver saw: per TCP connection, the Host headers and paths it carried."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: dict[tuple[str, int], list[tuple[str, str]]] = {}

    def by_path(self, prefix: str) -> dict[tuple[str, int], list[tuple[str, str]]]:
        with self.lock:
            return {
                peer: requests
                for peer, requests in self.connections.items()
                if requests and requests[0][1].startswith(prefix)
            }

    def requests(self) -> int:
        with self.lock:
            return sum(len(r) for r in self.connections.values())


@contextlib.contextmanager
def receiver() -> Iterator[tuple[int, Seen]]:
    """HTTP/1.1 with keep-alive; ``/big…`` answers 200 KB, ``/close…`` closes after."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            with seen.lock:
                peer = (self.client_address[0], self.client_address[1])
                seen.connections.setdefault(peer, []).append((self.headers["host"], self.path))
            body = BIG if self.path.startswith("/big") else b"ok"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            if self.path.startswith("/close"):
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def answers(*addresses: str) -> Any:
    """A resolver giving each answer in turn (the last one from then on)."""
    queue = [ipaddress.ip_address(a) for a in addresses]

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [queue.pop(0) if len(queue) > 1 else queue[0]]

    return resolve


@contextlib.asynccontextmanager
async def delivering(
    storage: Storage, clock: Clock
) -> AsyncIterator[tuple[DeliveryEngine, WebhookService]]:
    """An engine on real sockets (8 slots, 4 per endpoint) and the service feeding it.
    Idle connections are kept for a minute: a slow round on a busy machine must not
    expire one (a new one would be opened, rightly, and counted)."""
    sender = Sender(allow_private=True, keepalive=60.0)
    engine = DeliveryEngine(
        storage=storage,
        queue=MemoryQueue(),
        clock=clock,
        box=SecretBox("connections-test-key-" + "k" * 32),
        sender=sender,
        concurrency=8,
        per_endpoint=4,
    )
    try:
        yield engine, WebhookService(storage, clock, engine.box, engine, allow_private=True)
    finally:
        await sender.aclose()


async def endpoints(service: WebhookService, *urls: str) -> list[OutgoingWebhook]:
    hooks = [service.build("org", url, [EVENT], "s" * 20, livemode=True) for url in urls]
    for hook in hooks:
        await service.storage.insert_webhook(hook)
    return hooks


async def test_one_connection_per_endpoint_per_slot(storage: Storage) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with delivering(storage, clock) as (engine, service):
        with receiver() as (port, seen), receiver() as (big_port, big):
            await endpoints(
                service,
                f"http://127.0.0.1:{port}/a",
                f"http://127.0.0.1:{port}/b",
                f"http://127.0.0.1:{big_port}/big",
            )
            for i in range(60):
                assert await service.emit("org", EVENT, {"n": i}, livemode=True)
            assert await engine.drain() == 180
            assert seen.requests() == 120 and big.requests() == 60
            # /a and /b share an origin (scheme, host, port): a connection serves both,
            # and the two endpoints' slots (4 each) bound how many there are.
            assert 1 <= len(seen.connections) <= 2 * engine.per_endpoint
            # A body past the drain limit closes its connection (it is not read whole).
            assert len(big.connections) == 60
    assert await storage.due_deliveries(clock(), 10) == []  # every one succeeded


async def test_connections_per_endpoint_stay_within_its_slots(storage: Storage) -> None:
    async with delivering(storage, FakeClock(datetime.now(UTC))) as (engine, service):
        with receiver() as (port_a, seen_a), receiver() as (port_b, seen_b):
            await endpoints(service, f"http://127.0.0.1:{port_a}/h", f"http://127.0.0.1:{port_b}/h")
            for i in range(100):
                assert await service.emit("org", EVENT, {"n": i}, livemode=True)
            assert await engine.drain() == 200
            for seen in (seen_a, seen_b):
                assert seen.requests() == 100
                assert 1 <= len(seen.connections) <= engine.per_endpoint


async def test_a_connection_serves_one_host_name() -> None:
    sender = Sender(allow_private=True, resolver=answers("127.0.0.1"))
    now = datetime.now(UTC)
    try:
        with receiver() as (port, seen):
            for _ in range(5):
                for name in ("a.example", "b.example"):
                    result = await sender.send(f"http://{name}:{port}/h", b"{}", {}, now)
                    assert result.ok, result
            # Same address, two names: two connections, each carrying one name only.
            assert len(seen.connections) == 2
            hosts = [{host for host, _ in r} for r in seen.connections.values()]
            assert sorted(hosts, key=sorted) == [{f"a.example:{port}"}, {f"b.example:{port}"}]
    finally:
        await sender.aclose()


async def test_a_rebinding_answer_gets_no_connection() -> None:
    # Public enough (private addresses allowed, as in development) at first, then the
    # name answers the cloud metadata address: the next connection is refused.
    sender = Sender(allow_private=True, resolver=answers("127.0.0.1", "169.254.169.254"))
    now = datetime.now(UTC)
    try:
        with receiver() as (port, seen):
            first = await sender.send(f"http://hooks.example:{port}/close", b"{}", {}, now)
            assert first.ok, first
            second = await sender.send(f"http://hooks.example:{port}/close", b"{}", {}, now)
            assert second.status_code is None and second.error
            assert "refused" in second.error and "metadata" in second.error
            assert seen.requests() == 1
    finally:
        await sender.aclose()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/x", "http://localhost:{port}/x", "http://[::1]:{port}/x"]
)
async def test_private_targets_get_no_connection(url: str) -> None:
    sender = Sender(allow_private=False)
    try:
        with receiver() as (port, seen):
            result = await sender.send(url.format(port=port), b"{}", {}, datetime.now(UTC))
            assert result.status_code is None and result.error and "refused" in result.error
            assert seen.connections == {}
    finally:
        await sender.aclose()


async def test_a_disabled_endpoint_stops_within_the_cache_window(storage: Storage) -> None:
    async with delivering(storage, FakeClock(datetime.now(UTC))) as (engine, service):
        ticks = [0.0]
        engine.monotonic = lambda: ticks[0]
        with receiver() as (port, seen):
            (hook,) = await endpoints(service, f"http://127.0.0.1:{port}/h")
            assert await service.emit("org", EVENT, {"n": 1}, livemode=True)
            assert await engine.drain() == 1  # the worker now holds the endpoint
            assert await service.emit("org", EVENT, {"n": 2}, livemode=True)
            # Disabled by another process (storage only): this worker's copy holds for the
            # cache window, and not longer.
            await storage.update_webhook("org", hook.id, {"status": WebhookStatus.DISABLED})
            ticks[0] += engine.webhook_ttl - 0.1
            held = (await engine.webhooks_by_id([hook.id]))[hook.id]
            assert held is not None and held.status is WebhookStatus.ACTIVE
            ticks[0] += 0.2
            assert await engine.drain() == 1
            assert seen.requests() == 1
            deliveries = (await storage.list_deliveries(hook.id, Window(10))).items
            assert sorted((d.status, d.last_error) for d in deliveries) == [
                (DeliveryStatus.FAILED, "endpoint disabled"),
                (DeliveryStatus.SUCCEEDED, None),
            ]


async def test_changes_through_the_api_reach_the_engine_at_once(storage: Storage) -> None:
    async with delivering(storage, FakeClock()) as (engine, service):
        engine.monotonic = lambda: 0.0  # the cache never expires on its own here
        (hook,) = await endpoints(service, "http://127.0.0.1:9/h")
        held = (await engine.webhooks_by_id([hook.id]))[hook.id]
        assert held is not None and held.status is WebhookStatus.ACTIVE
        await service.update("org", hook.id, {"status": "disabled"}, livemode=True)
        held = (await engine.webhooks_by_id([hook.id]))[hook.id]
        assert held is not None and held.status is WebhookStatus.DISABLED
        rotated, _ = await service.rotate_secret("org", hook.id, {}, livemode=True)
        held = (await engine.webhooks_by_id([hook.id]))[hook.id]
        assert held is not None and held.secret_enc == rotated.secret_enc
        await service.delete("org", hook.id, livemode=True)
        held = (await engine.webhooks_by_id([hook.id]))[hook.id]
        assert held is not None and held.deleted_at is not None
