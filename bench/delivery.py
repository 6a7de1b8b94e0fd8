"""Webhook delivery throughput and latency, against a bare httpx loop in the same run.

    python -m bench.delivery [--events 2000] [--storage sqlite|mongo]

Starts a fast local receiver (hypercorn), a Redis, and one `edge-onboard worker`; emits
a burst of events (each recorded in storage and queued, as a signup completion does),
and measures deliveries per second and event-to-receipt latency. The floor is a bare
httpx loop posting the same bodies to the same receiver with the same concurrency.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._servers import hypercorn_app  # noqa: E402
from edge_onboard.clock import system_clock  # noqa: E402
from edge_onboard.crypto import SecretBox  # noqa: E402
from edge_onboard.delivery import DeliveryEngine, Sender, sign  # noqa: E402
from edge_onboard.queue.redis import RedisQueue  # noqa: E402
from edge_onboard.storage import from_url  # noqa: E402
from edge_onboard.webhooks import WebhookService  # noqa: E402
from tests import services  # noqa: E402
from tests.live import clean_env  # noqa: E402

SECRET_KEY = "bench-secret-key-" + "x" * 32
WEBHOOK_SECRET = "bench-webhook-secret"
CONCURRENCY = 32


def receiver() -> contextlib.AbstractContextManager[str]:
    return hypercorn_app("bench.receiver:app", "/stats")


def body(i: int) -> bytes:
    return orjson.dumps(
        {
            "id": f"evt_{i:032x}",
            "event": "phone_number.connected",
            "timestamp": "2026-11-25T12:00:00.000Z",
            "organizationId": "org",
            "data": {"onboardingLinkId": "x", "phoneNumber": "+15550100000"},
        }
    )


async def bare_loop(base: str, events: int) -> float:
    """The floor: sign and post the same bodies with the same concurrency."""
    limiter = anyio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:

        async def post(i: int) -> None:
            async with limiter:
                payload = body(i)
                ts = int(time.time())
                await client.post(
                    f"{base}/hook",
                    content=payload,
                    headers={
                        "content-type": "application/json",
                        "webhook-id": f"bare_{i}",
                        "webhook-timestamp": str(ts),
                        "webhook-signature": sign(WEBHOOK_SECRET, f"bare_{i}", ts, payload),
                    },
                )

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(events):
                tg.start_soon(post, i)
        return events / (time.perf_counter() - started)


async def emit(
    storage_url: str, redis_url: str, base: str, events: int, pace: float = 0.0
) -> dict[str, float]:
    storage = from_url(storage_url)
    await storage.open()
    box = SecretBox(SECRET_KEY)
    queue = RedisQueue.from_url(redis_url)
    engine = DeliveryEngine(
        storage=storage, queue=queue, clock=system_clock, box=box, sender=Sender(allow_private=True)
    )
    service = WebhookService(storage, system_clock, box, engine, allow_private=True)
    webhook = service.build("org", f"{base}/hook", ["phone_number.connected"], WEBHOOK_SECRET)
    await storage.insert_webhook(webhook)
    emitted: dict[str, float] = {}
    for i in range(events):
        event = await service.emit("org", "phone_number.connected", {"n": i})
        assert event is not None
        emitted[event.id] = time.time()
        if pace:
            await anyio.sleep(pace)
    await engine.sender.aclose()
    await queue.close()
    await storage.close()
    return emitted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--storage", choices=["sqlite", "mongo"], default="sqlite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(services.redis_server())
        if args.storage == "mongo":
            storage_url = stack.enter_context(services.mongo_server()).replace("/?", "/bench?")
        else:
            storage_url = f"sqlite:///{work / 'bench.db'}"
        base = stack.enter_context(receiver())

        floor = anyio.run(bare_loop, base, args.events)
        httpx.delete(f"{base}/stats")

        # Events are recorded first (the outbox), then one worker drains the burst.
        emitted = anyio.run(emit, storage_url, redis_url, base, args.events)
        env = {
            "EDGE_STORAGE_URL": storage_url,
            "EDGE_REDIS_URL": redis_url,
            "EDGE_SECRET_KEY": SECRET_KEY,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
        }
        started = time.time()
        worker = subprocess.Popen(
            [sys.executable, "-m", "edge_onboard", "worker"],
            env=clean_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                seen = httpx.get(f"{base}/stats").json()
                if len(seen) >= args.events:
                    break
                if time.time() - started > 300:
                    raise SystemExit(f"only {len(seen)} of {args.events} delivered in 300 s")
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait()
        first, last = min(seen.values()), max(seen.values())
        rate = args.events / (last - first) if last > first else float("inf")

        # Latency of a steady trickle: events emitted one by one while the worker runs.
        httpx.delete(f"{base}/stats")
        worker = subprocess.Popen(
            [sys.executable, "-m", "edge_onboard", "worker"],
            env=clean_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)
        trickle = anyio.run(emit, storage_url, redis_url, base, 200, 0.02)  # 50 events/s
        deadline = time.time() + 60
        while len(httpx.get(f"{base}/stats").json()) < 200 and time.time() < deadline:
            time.sleep(0.1)
        worker.terminate()
        worker.wait()
        received = httpx.get(f"{base}/stats").json()
        latencies = sorted((received[i] - t) * 1000 for i, t in trickle.items() if i in received)

    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\nstorage {args.storage}, {args.events} events, one worker, {datetime.now(UTC):%Y-%m-%d}"
    )
    print(f"{'':<28} {'per second':>11} {'ratio':>6}")
    print(f"{'bare httpx loop':<28} {floor:>11.0f} {1.0:>6.2f}")
    print(f"{'worker deliveries':<28} {rate:>11.0f} {rate / floor:>6.2f}")
    print(f"event-to-receipt (200 events at 50/s): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    del emitted


if __name__ == "__main__":
    main()
