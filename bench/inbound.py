"""The inbound path: Meta's signed message webhooks, end to end and by stage.

    python -m bench.inbound [--requests 3000]

1. Over HTTP: `edge-onboard serve --sandbox` (SQLite), one connected number, and an
   httpx client posting distinct signed messages (32 at a time); the same client against
   a bare Starlette route in the same run gives the floor.
2. By stage, in-process, per message: signature check, parsing into events, and the
   durable write (event + deliveries) — the shares of one request's work.
3. Parsing alone over Meta's real payloads of every kind (../shared/meta-payloads/, when
   it is there): what a rich message costs beside the text message of 1 and 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.links import bare_server  # noqa: E402
from edge_onboard.meta.inbound import InboundService, sign_body, signature_ok  # noqa: E402
from edge_onboard.meta.sandbox import APP_SECRET  # noqa: E402
from tests.live import create_key, serve  # noqa: E402
from tests.meta.test_inbound import messages_payload  # noqa: E402

CONCURRENCY = 32
REAL_PAYLOADS = ROOT.parent / "shared" / "meta-payloads"


def payload(meta_phone: str, message_id: str) -> bytes:
    return orjson.dumps(messages_payload(meta_phone, message_id=message_id))


async def drive(url: str, bodies: list[bytes]) -> float:
    limiter = anyio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

        async def post(raw: bytes) -> None:
            async with limiter:
                response = await client.post(
                    url,
                    content=raw,
                    headers={
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": sign_body(APP_SECRET, raw),
                    },
                )
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for raw in bodies:
                tg.start_soon(post, raw)
        return len(bodies) / (time.perf_counter() - started)


def connect(base: str, key: str) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {key}"}
    link = httpx.post(
        f"{base}/v1/onboarding-links",
        headers=auth,
        json={
            "name": "Bench",
            "webhookUrl": "http://127.0.0.1:9/events",
            "webhookEvents": ["message.received"],
        },
    ).json()["data"]
    session = httpx.post(f"{base}/_sandbox/dialog/finish", json={"scenario": "ok"}).json()
    data = session["data"]
    done = httpx.post(
        f"{base}/signup/{link['id']}/callback",
        json={
            "code": session["code"],
            "wabaId": data["waba_id"],
            "phoneNumberId": data["phone_number_id"],
        },
    )
    assert done.status_code == 200, done.text
    view = httpx.get(f"{base}/v1/onboarding-links/{link['id']}", headers=auth).json()["data"]
    return view["phoneNumberId"], data["phone_number_id"]


async def stages(db: Path, meta_phone: str, count: int) -> tuple[dict[str, float], float | None]:
    """Mean microseconds per message for each stage, on the same database; and parsing
    Meta's real payloads."""
    from edge_onboard.core.clock import system_clock
    from edge_onboard.core.crypto import SecretBox
    from edge_onboard.storage.sqlite import SQLiteStorage
    from edge_onboard.webhooks.delivery import DeliveryEngine, Sender
    from edge_onboard.webhooks.endpoints import WebhookService
    from edge_onboard.webhooks.queue.memory import MemoryQueue

    storage = SQLiteStorage(db)
    await storage.open()
    box = SecretBox(Path(f"{db}.key").read_text().strip())
    engine = DeliveryEngine(
        storage=storage,
        queue=MemoryQueue(),
        clock=system_clock,
        box=box,
        sender=Sender(allow_private=True),
    )
    webhooks = WebhookService(storage, system_clock, box, engine, allow_private=True)
    inbound = InboundService(storage, webhooks)
    bodies = [payload(meta_phone, f"wamid.stage{uuid.uuid4().hex}") for _ in range(count)]
    signatures = [sign_body(APP_SECRET, raw) for raw in bodies]

    started = time.perf_counter()
    for raw, signature in zip(bodies, signatures, strict=True):
        assert signature_ok(APP_SECRET, raw, signature)
    verify = (time.perf_counter() - started) / count

    phones = await storage.phones_by_meta_id(meta_phone)
    started = time.perf_counter()
    for raw in bodies:
        value = orjson.loads(raw)["entry"][0]["changes"][0]["value"]
        inbound._events(phones[0], value)
    parse = (time.perf_counter() - started) / count

    started = time.perf_counter()
    for raw in bodies:
        await inbound.handle(raw)  # lookup + parse + record_event (the durable write)
    handle = (time.perf_counter() - started) / count
    real = real_payloads_parse(inbound, phones[0])
    await engine.sender.aclose()
    await storage.close()
    return {
        "signature check": verify * 1e6,
        "parsing": parse * 1e6,
        "phone lookup + durable write": max(0.0, handle - parse) * 1e6,
    }, real


def real_payloads_parse(inbound: InboundService, phone: Any, rounds: int = 200) -> float | None:
    """Mean microseconds to parse one change of Meta's real payloads (all kinds)."""
    values = [
        change["value"]
        for path in sorted(REAL_PAYLOADS.glob("*.json"))
        for entry in orjson.loads(path.read_bytes())["entry"]
        for change in entry["changes"]
    ]
    if not values:
        return None
    started = time.perf_counter()
    for _ in range(rounds):
        for value in values:
            inbound._events(phone, value)
    return (time.perf_counter() - started) / (rounds * len(values)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key = create_key(work)
        env = {"EDGE_WEBHOOK_ALLOW_PRIVATE": "1"}
        with bare_server() as bare:
            floor = anyio.run(drive, f"{bare}/bare", [b"{}"] * args.requests)
        with serve(work, "--sandbox", env=env) as (base, _):
            phone_id, meta_phone = connect(base, key)
            bodies = [
                payload(meta_phone, f"wamid.bench{uuid.uuid4().hex}") for _ in range(args.requests)
            ]
            rps = anyio.run(drive, f"{base}/webhook/phone/{phone_id}", bodies)
        parts, real = anyio.run(stages, work / "edge_onboard.db", meta_phone, 500)

    total = sum(parts.values())
    print(
        f"\nPOST /webhook/phone/{{id}}: {rps:.0f} requests/s, bare route {floor:.0f}/s "
        f"with the same client (ratio {rps / floor:.2f})"
    )
    print("per message, in-process (SQLite):")
    for name, micros in parts.items():
        print(f"  {name:<30} {micros:>8.0f} µs  {micros / total:>5.1%}")
    if real is not None:
        print(f"parsing Meta's real payloads (all kinds): {real:.0f} µs per change")


if __name__ == "__main__":
    main()
