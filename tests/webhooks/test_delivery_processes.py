"""Delivery with real processes: `edge-onboard worker`s on a real Redis, killed mid-run,
a receiver that fails 30 % of the time, and a Redis restart."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from standardwebhooks import Webhook

from edge_onboard.core.crypto import SecretBox
from edge_onboard.storage.sqlite import SQLiteStorage
from edge_onboard.webhooks.delivery import DeliveryEngine, Sender
from edge_onboard.webhooks.endpoints import WebhookService
from edge_onboard.webhooks.queue.redis import RedisQueue
from tests.conftest import FakeClock
from tests.live import QuietHandler, clean_env, free_port, threaded_http

pytestmark = pytest.mark.redis
SECRET = "chaos-test-secret-0123456789"


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, bytes, dict[str, str], int]] = []


@contextlib.contextmanager
def receiver(failure_rate: float, seed: int = 7) -> Iterator[tuple[str, Received]]:
    received = Received()
    rng = random.Random(seed)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            if len(body) < length:
                return  # the sender died mid-request (a killed worker): nothing arrived
            with received.lock:
                status = 500 if rng.random() < failure_rate else 200
                received.requests.append(
                    (self.headers["webhook-id"], body, dict(self.headers.items()), status)
                )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    with threaded_http(Handler) as base:
        yield f"{base}/hook", received


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_onboard", "worker"],
        env=clean_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def emit_events(db: Path, redis_url: str, url: str, count: int) -> str:
    storage = SQLiteStorage(db)
    await storage.open()
    box = SecretBox(SECRET * 2)
    queue = RedisQueue.from_url(redis_url)
    clock = FakeClock(datetime.now(UTC))
    engine = DeliveryEngine(
        storage=storage, queue=queue, clock=clock, box=box, sender=Sender(allow_private=True)
    )
    service = WebhookService(storage, clock, box, engine, allow_private=True)
    webhook = service.build("org", url, ["phone_number.connected"], SECRET, livemode=True)
    await storage.insert_webhook(webhook)
    for i in range(count):
        await service.emit("org", "phone_number.connected", {"n": i}, livemode=True)
    await engine.sender.aclose()
    await queue.close()
    await storage.close()
    return webhook.id


async def pending(db: Path) -> int:
    storage = SQLiteStorage(db)
    await storage.open()
    try:
        return len(await storage.due_deliveries(datetime(9999, 1, 1, tzinfo=UTC), 100_000))
    finally:
        await storage.close()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_workers_killed_twice_with_a_flaky_receiver(tmp_path: Path, redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    db = tmp_path / "chaos.db"
    events = 300
    with receiver(failure_rate=0.3) as (url, received):
        anyio.run(emit_events, db, redis_url, url, events)
        env = {
            "EDGE_STORAGE_URL": f"sqlite:///{db}",
            "EDGE_REDIS_URL": redis_url,
            "EDGE_SECRET_KEY": SECRET * 2,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_DELIVERY_SCHEDULE": "0,0.1,0.2,0.3,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
            "EDGE_DELIVERY_LEASE": "2",
        }
        log = (tmp_path / "workers.log").open("ab")
        workers = [start_worker(env, log), start_worker(env, log)]
        try:
            wait_for(lambda: len(received.requests) >= 60, 60, "the first deliveries")
            workers[0].send_signal(signal.SIGKILL)  # mid-run, leases held
            workers.append(start_worker(env, log))
            wait_for(lambda: len(received.requests) >= 180, 60, "more deliveries")
            workers[1].send_signal(signal.SIGKILL)
            workers.append(start_worker(env, log))
            deadline = time.monotonic() + 90
            while anyio.run(pending, db):
                assert time.monotonic() < deadline, "deliveries still pending after 90 s"
                time.sleep(0.25)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            log.close()
        assert [w.returncode for w in workers[2:]] == [0, 0]  # graceful on SIGTERM

    by_id: dict[str, set[bytes]] = {}
    delivered: set[str] = set()
    verifier = Webhook(SECRET.encode())
    for webhook_id, body, headers, status in received.requests:
        by_id.setdefault(webhook_id, set()).add(body)
        verifier.verify(body, headers)
        if status == 200:
            delivered.add(webhook_id)
    assert len(by_id) == events  # no event invented
    assert delivered == set(by_id)  # none lost: each one reached the receiver with a 2xx
    assert all(len(bodies) == 1 for bodies in by_id.values())  # retries resend the same
    duplicates = sum(1 for *_, status in received.requests if status == 200) - events
    failures = sum(1 for *_, status in received.requests if status != 200)
    print(
        f"\n{events} events, {len(received.requests)} requests, {failures} refused, "
        f"{duplicates} duplicate successes (same webhook-id)"
    )


@contextlib.contextmanager
def own_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        wait_for(lambda: _pings(client), 10, "redis")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.mark.anyio
# redis-py drops a pooled connection whose server died without closing its socket; the
# ResourceWarning that follows is its, not ours (our client and pool are closed below).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_redis_restarted_mid_run_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    del redis_url  # requires a redis-server binary like the other Redis tests
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    storage = SQLiteStorage(tmp_path / "edge.db")
    await storage.open()
    box = SecretBox(SECRET * 2)
    clock = FakeClock(datetime.now(UTC))
    got: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request.headers["webhook-id"])
        return httpx.Response(200)

    sender = Sender(allow_private=True, transport=httpx.MockTransport(handler))
    with own_redis(port):
        queue = RedisQueue.from_url(url)
        engine = DeliveryEngine(storage=storage, queue=queue, clock=clock, box=box, sender=sender)
        service = WebhookService(storage, clock, box, engine, allow_private=True)
        webhook = service.build(
            "org", "http://127.0.0.1:9/h", ["phone_number.connected"], SECRET, livemode=True
        )
        await storage.insert_webhook(webhook)
        first = [
            await service.emit("org", "phone_number.connected", {"n": i}, livemode=True)
            for i in range(3)
        ]
        assert await engine.drain() == 3
        more = [
            await service.emit("org", "phone_number.connected", {"n": i}, livemode=True)
            for i in range(3)
        ]
    # Redis is down: events still land in storage; queueing them fails quietly.
    during = [
        await service.emit("org", "phone_number.connected", {"n": i}, livemode=True)
        for i in range(2)
    ]
    with own_redis(port):  # back, and empty (no persistence)
        assert await engine.drain() == 0
        assert await engine.recover() == 5
        for _ in range(3):  # at most 4 at a time to one endpoint: the rest a second later
            await engine.drain()
            clock.advance(seconds=1)
    await queue.close()
    assert sorted(got) == sorted(e.id for e in first + more + during if e is not None)
    for delivery in await storage.due_deliveries(datetime(9999, 1, 1, tzinfo=UTC), 100):
        raise AssertionError(f"still pending: {delivery}")
    await storage.close()
