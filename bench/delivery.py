"""Webhook delivery throughput, worker CPU and connections, against a bare httpx loop.

    python -m bench.delivery [--deliveries 2000] [--repeat 3] [--storage sqlite mongo]

Starts a fast local receiver (one hypercorn process listening on eight ports, one per
endpoint), a Redis, the storage, and one `edge-onboard worker`. Each run records a burst
of events in storage (the outbox, as a signup completion does), fanned out to one
endpoint or to eight, then queues them all while the worker is paused (SIGSTOP), and
resumes it: deliveries per second run from the first receipt to the last, and the
worker's CPU time (user + system, from /proc) over the burst is divided by the
deliveries. The worker retries within a second (EDGE_DELIVERY_SCHEDULE), so a failed
attempt shows as a repeat and a pause rather than a 5-minute wait. The floor, in the
same run, is a bare httpx loop (one client, connections reused) in a process of its
own, as the worker is, posting signed bodies of the same size to the same ports with
the concurrency the worker may use (16 per endpoint, 64 in all), timed as the worker
is (the receiver's first receipt to its last). Every figure is the median of the
repetitions; the ratio is the median of the per-repetition ratios. Then the latency of
a steady trickle (50 events/s to one endpoint), each event stamped before its durable
write and enqueue (bench/latency.py measures the whole path: Meta's POST, or a
signup's callback, to the receipt). Last, the interpreter and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._machine import cpython, machine  # noqa: E402
from bench._servers import wait_for  # noqa: E402
from edge_onboard.core.clock import system_clock  # noqa: E402
from edge_onboard.core.crypto import SecretBox  # noqa: E402
from edge_onboard.storage import OutgoingWebhook, Storage, WebhookStatus, from_url  # noqa: E402
from edge_onboard.webhooks.delivery import webhook_secret_context  # noqa: E402
from edge_onboard.webhooks.endpoints import new_event, plan_deliveries  # noqa: E402
from edge_onboard.webhooks.queue.redis import RedisQueue  # noqa: E402
from tests import services  # noqa: E402
from tests.live import clean_env, free_port  # noqa: E402

SECRET_KEY = "bench-secret-key-" + "x" * 32
WEBHOOK_SECRET = "bench-webhook-secret"
EVENT = "phone_number.connected"
# What one worker may have in flight: per endpoint, and in all (DeliveryEngine's defaults).
PER_ENDPOINT, CONCURRENCY = 16, 64
ENDPOINTS = (1, 8)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RETRIES = "0,0.5,1,1,1,1,1,1,1,1"
# One client for polling the receiver: each ``httpx.get`` would build a TLS context
# (loading the CA bundle: 20-150 ms of this process's CPU, every 50 ms).
LOCAL = httpx.Client(timeout=10, trust_env=False)


@contextlib.contextmanager
def receiver(ports: int) -> Iterator[list[str]]:
    """One hypercorn process (one worker) bound to ``ports`` loopback ports."""
    bound = [free_port() for _ in range(ports)]
    binds = [arg for port in bound for arg in ("--bind", f"127.0.0.1:{port}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--backlog", "2048", *binds, "bench.receiver:app"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bases = [f"http://127.0.0.1:{port}" for port in bound]
    try:
        for base in bases:
            wait_for(f"{base}/stats", LOCAL)
        yield bases
    finally:
        proc.terminate()
        proc.wait()


def stats(base: str) -> dict[str, Any]:
    result: dict[str, Any] = LOCAL.get(f"{base}/stats").json()
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def endpoint(org: str, url: str) -> OutgoingWebhook:
    ident, now = str(uuid.uuid4()), system_clock()
    secret_enc = SecretBox(SECRET_KEY).encrypt(
        WEBHOOK_SECRET, context=webhook_secret_context(ident)
    )
    return OutgoingWebhook(
        id=ident,
        org_id=org,
        url=url,
        secret_enc=secret_enc,
        events=[EVENT],
        status=WebhookStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )


def event_data(i: int) -> dict[str, Any]:
    return {"onboardingLinkId": str(uuid.UUID(int=i)), "phoneNumber": "+15550100000"}


async def bare_loop(urls: list[str], deliveries: int) -> None:
    """The floor: sign and post bodies of the same shape, connections reused."""
    from edge_onboard.webhooks.delivery import sign

    limit = min(CONCURRENCY, PER_ENDPOINT * len(urls))
    limiter = anyio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(limits=limits) as client:

        async def post(i: int) -> None:
            async with limiter:
                payload = orjson.dumps(
                    {
                        "id": f"evt_{i:032x}",
                        "event": EVENT,
                        "timestamp": "2026-11-25T12:00:00.000Z",
                        "organizationId": "org",
                        "data": event_data(i),
                    }
                )
                for attempt in range(3):  # a connection the receiver closed: again
                    ts = int(time.time())
                    try:
                        response = await client.post(
                            urls[i % len(urls)],
                            content=payload,
                            headers={
                                "content-type": "application/json",
                                "webhook-id": f"bare_{i}",
                                "webhook-timestamp": str(ts),
                                "webhook-signature": sign(WEBHOOK_SECRET, f"bare_{i}", ts, payload),
                            },
                        )
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        continue
                    response.raise_for_status()
                    return

        async with anyio.create_task_group() as tg:
            for i in range(deliveries):
                tg.start_soon(post, i)


def floor_rate(urls: list[str], deliveries: int) -> float:
    """``bare_loop`` in a process of its own (as the worker is), timed as the worker is:
    from the receiver's first receipt to its last."""
    LOCAL.delete(f"{urls[0].rsplit('/', 1)[0]}/stats")
    subprocess.run(
        [sys.executable, "-m", "bench.delivery", "--floor", *urls, "--deliveries", str(deliveries)],
        cwd=ROOT,
        check=True,
    )
    seen = stats(urls[0].rsplit("/", 1)[0])
    return deliveries / float(seen["last"] - seen["first"])


@dataclass
class Outbox:
    storage_url: str
    redis_url: str

    async def record(self, urls: list[str], deliveries: int) -> list[str]:
        """Endpoints for a new organisation, and events fanned out to them: the ids of
        ``deliveries`` pending deliveries, recorded but not queued."""
        storage = from_url(self.storage_url)
        await storage.open()
        try:
            return await self._record(storage, urls, deliveries)
        finally:
            await storage.close()

    async def _record(self, storage: Storage, urls: list[str], deliveries: int) -> list[str]:
        org = "org_" + uuid.uuid4().hex[:12]
        webhooks = [endpoint(org, url) for url in urls]
        for webhook in webhooks:
            await storage.insert_webhook(webhook)
        ids: list[str] = []
        for i in range(deliveries // len(urls)):
            event = new_event(org, EVENT, event_data(i), None, system_clock, livemode=True)
            planned = plan_deliveries(event, webhooks)
            await storage.record_event(event, planned)
            ids.extend(d.id for d in planned)
        return ids

    async def enqueue(self, ids: list[str]) -> None:
        queue = RedisQueue.from_url(self.redis_url)
        now = system_clock()
        limiter = anyio.Semaphore(32)

        async def one(ident: str) -> None:
            async with limiter:
                await queue.enqueue(ident, now)

        try:
            async with anyio.create_task_group() as tg:
                for ident in ids:
                    tg.start_soon(one, ident)
        finally:
            await queue.close()


@dataclass
class Run:
    rate: float
    floor: float
    cpu_ms: float
    connections: int
    repeats: int

    @property
    def ratio(self) -> float:
        return self.rate / self.floor


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    health = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "edge_onboard", "worker", "--health-port", str(health)],
        env=clean_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        with contextlib.suppress(httpx.TransportError):
            if LOCAL.get(f"http://127.0.0.1:{health}/healthz", timeout=1).status_code == 200:
                return worker
        time.sleep(0.05)
    raise SystemExit("the worker did not start")


def one_run(
    outbox: Outbox, worker: subprocess.Popen[bytes], bases: list[str], deliveries: int
) -> Run:
    urls = [f"{base}/hook" for base in bases]
    floor = floor_rate(urls, deliveries)
    LOCAL.delete(f"{bases[0]}/stats")
    ids = anyio.run(outbox.record, urls, deliveries)
    worker.send_signal(signal.SIGSTOP)
    try:
        anyio.run(outbox.enqueue, ids)
        cpu_before = cpu_seconds(worker.pid)
    finally:
        worker.send_signal(signal.SIGCONT)
    deadline = time.time() + 600
    while (seen := stats(bases[0]))["count"] < len(ids):
        if time.time() > deadline:
            raise SystemExit(f"only {seen['count']} of {len(ids)} delivered in 600 s")
        time.sleep(0.05)
    cpu = cpu_seconds(worker.pid) - cpu_before
    rate = len(ids) / (seen["last"] - seen["first"])
    connections = max(seen["connections"].values())
    return Run(rate, floor, cpu * 1000 / len(ids), connections, seen["posts"] - len(ids))


async def trickle(outbox: Outbox, url: str, events: int, pace: float) -> dict[str, float]:
    """Events recorded and queued one by one, as the service does: when each was emitted
    (stamped before its write, so the write and the enqueue count in its latency)."""
    storage = from_url(outbox.storage_url)
    await storage.open()
    queue = RedisQueue.from_url(outbox.redis_url)
    emitted: dict[str, float] = {}
    try:
        org = "org_" + uuid.uuid4().hex[:12]
        webhook = endpoint(org, url)
        await storage.insert_webhook(webhook)
        for i in range(events):
            emitted_at = time.time()  # before the durable write and the enqueue
            event = new_event(org, EVENT, event_data(i), None, system_clock, livemode=True)
            (delivery,) = plan_deliveries(event, [webhook])
            await storage.record_event(event, [delivery])
            await queue.enqueue(delivery.id, system_clock())
            emitted[event.id] = emitted_at
            await anyio.sleep(pace)
    finally:
        await queue.close()
        await storage.close()
    return emitted


def bench(storage_name: str, deliveries: int, repeat: int) -> None:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(services.redis_server())
        if storage_name == "mongo":
            storage_url = stack.enter_context(services.mongo_server()).replace("/?", "/bench?")
        else:
            storage_url = f"sqlite:///{work / 'bench.db'}"
        bases = stack.enter_context(receiver(max(ENDPOINTS)))
        outbox = Outbox(storage_url, redis_url)
        env = {
            "EDGE_STORAGE_URL": storage_url,
            "EDGE_REDIS_URL": redis_url,
            "EDGE_SECRET_KEY": SECRET_KEY,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            # Retries within seconds (not 5 s, then 5 min): a failed attempt shows as a
            # repeat and a pause, not as a run that never ends.
            "EDGE_DELIVERY_SCHEDULE": RETRIES,
        }
        log = stack.enter_context((work / "worker.log").open("wb"))
        worker = start_worker(env, log)
        try:
            results = {
                n: [one_run(outbox, worker, bases[:n], deliveries) for _ in range(repeat)]
                for n in ENDPOINTS
            }
            LOCAL.delete(f"{bases[0]}/stats")
            emitted = anyio.run(trickle, outbox, f"{bases[0]}/hook", 200, 0.02)  # 50/s
            deadline = time.time() + 60
            while stats(bases[0])["count"] < len(emitted) and time.time() < deadline:
                time.sleep(0.1)
            received: dict[str, float] = LOCAL.get(f"{bases[0]}/seen").json()
        finally:
            worker.terminate()
            worker.wait()
    latencies = sorted((received[i] - t) * 1000 for i, t in emitted.items() if i in received)

    print(
        f"\nstorage {storage_name}, {deliveries} deliveries a run, {repeat} runs, one worker "
        f"(at most {PER_ENDPOINT} in flight per endpoint, {CONCURRENCY} in all), "
        f"{datetime.now(UTC):%Y-%m-%d}, {sys.implementation.name} {sys.version.split()[0]}"
    )
    print(
        f"{'endpoints':<10} {'bare httpx/s':>13} {'worker/s':>9} {'ratio':>6} "
        f"{'worker CPU/delivery':>20} {'TCP conns/endpoint':>19} {'failed attempts':>16}"
    )
    for n, runs in results.items():
        print(
            f"{n:<10} {statistics.median(r.floor for r in runs):>13.0f} "
            f"{statistics.median(r.rate for r in runs):>9.0f} "
            f"{statistics.median(r.ratio for r in runs):>6.2f} "
            f"{statistics.median(r.cpu_ms for r in runs):>17.2f} ms "
            f"{max(r.connections for r in runs):>19} "
            f"{statistics.median(r.repeats for r in runs):>16.0f}"
        )
        print(
            "  each run (worker/bare = ratio, CPU): "
            + "; ".join(f"{r.rate:.0f}/{r.floor:.0f}={r.ratio:.2f} {r.cpu_ms:.2f} ms" for r in runs)
        )
    print(
        f"event-to-receipt, {len(emitted)} events at 50/s to one endpoint "
        f"({len(latencies)} received): p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage", nargs="+", choices=["sqlite", "mongo"], default=["mongo"])
    parser.add_argument("--floor", nargs="+", help=argparse.SUPPRESS)  # the floor's process
    args = parser.parse_args()
    if args.floor:
        anyio.run(bare_loop, args.floor, args.deliveries)
        return
    load_before = os.getloadavg()
    for storage_name in args.storage:
        bench(storage_name, args.deliveries, args.repeat)
    print(f"\n{cpython(None)}")
    print(machine(load_before))


if __name__ == "__main__":
    main()
