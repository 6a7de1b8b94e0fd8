"""End-to-end event latency as the customer sees it, against a bare loop.

    python -m bench.latency [--rates 50 500] [--seconds 4]

Starts a Redis, a MongoDB, the customer's endpoint (bench/receiver.py on hypercorn),
`edge-onboard serve --sandbox` with `EDGE_INPROCESS_DELIVERY=0` and a separate
`edge-onboard worker` that delivers; the organisation has one endpoint subscribed to
both events below. Then, at each rate, open loop (request i leaves at start + i/rate,
whatever became of the ones before it), --seconds worth of requests on each path:

- inbound: Meta's signed POST of a text message to `/webhook/phone/{id}`, until the
  signed `message.received` delivery reaches the endpoint;
- signup: a completed signup's callback (`POST /signup/{id}/callback`, the fake Meta's
  session finished beforehand, one link each), until `phone_number.connected` reaches
  the endpoint.

A request's latency runs from just before it is sent to the endpoint's first receipt of
its event (wall clock, one machine); each event is matched to its request through `GET
/v1/events`. The floor, at the same rate, is a bare loop in its own process posting
signed bodies of the same size straight to the endpoint, timed the same way. Every
sender is its own process (`--send`), the same code for the floor and the service.
A callback answered `service_busy` (refused before any of it was done) is posted again
after its Retry-After for up to 20 s, as the hosted page does; other answers than 200
are counted in the table (`refused`), not retried.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._machine import cpython, machine  # noqa: E402
from bench.delivery import LOCAL, receiver, start_worker, stats  # noqa: E402
from bench.inbound import payload  # noqa: E402
from edge_onboard.meta.inbound import sign_body  # noqa: E402
from edge_onboard.meta.sandbox import APP_SECRET  # noqa: E402
from edge_onboard.webhooks.delivery import sign  # noqa: E402
from tests import services  # noqa: E402
from tests.live import create_key, serve  # noqa: E402

EVENTS = ["message.received", "phone_number.connected"]
WAMID = re.compile(rb"wamid\.lat[0-9a-f]{32}")
BUSY_RETRY = 20.0  # seconds, as pages/signup.js
# A path's figures: name, rate asked, rate sent, p50, p99 (ms), events received, requests,
# requests answered other than 200.
LatencyRow = tuple[str, float, float, float, float, int, int, int]
# A request: URL, body, headers, and the key its event is found by.
Request = tuple[str, bytes, dict[str, str], str]


async def paced(
    requests: list[Request], rate: float
) -> tuple[list[float], list[int], float, list[str]]:
    """Each request sent at its time: when it left (wall clock), its status, the rate
    achieved and the first answers that were not 200."""
    sent, status = [0.0] * len(requests), [0] * len(requests)
    errors: list[str] = []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:

        async def one(i: int) -> None:
            url, body, headers, _ = requests[i]
            sent[i] = time.time()
            while True:
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.TransportError:
                    status[i] = -1
                    return
                # As the hosted page does: a callback refused before any of it was done
                # (service_busy) is posted again after Retry-After, for up to 20 s.
                wait = int(answer.headers.get("retry-after", "1"))
                busy = answer.status_code == 503 and b'"service_busy"' in answer.content
                if not busy or time.time() + wait - sent[i] >= BUSY_RETRY:
                    break
                await anyio.sleep(wait)
            status[i] = answer.status_code
            if answer.status_code != 200:
                errors.append(answer.text[:300])

        began = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(len(requests)):
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
                tg.start_soon(one, i)
            achieved = len(requests) / max(time.monotonic() - began, 1e-9)
    return sent, status, achieved, errors[:3]


def send_elsewhere(
    requests: list[Request], rate: float, work: Path
) -> tuple[list[float], float, list[int], list[str]]:
    """``paced`` in a process of its own: when each request left, the rate achieved,
    each answer's status and the first answers that were not 200."""
    order = work / "requests.json"
    order.write_bytes(
        orjson.dumps([[u, base64.b64encode(b).decode(), h, k] for u, b, h, k in requests])
    )
    out = subprocess.run(
        [sys.executable, "-m", "bench.latency", "--send", str(order), "--rate", str(rate)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    result = orjson.loads(out.stdout)
    return result["sent"], result["achieved"], result["status"], result["errors"]


def received(base: str, expected: int, before: int) -> dict[str, float]:
    """Wait (up to 120 s) until the endpoint saw ``expected`` more events; when each
    webhook-id first arrived."""
    deadline = time.time() + 120
    while stats(base)["count"] < before + expected and time.time() < deadline:
        time.sleep(0.1)
    seen: dict[str, float] = LOCAL.get(f"{base}/seen").json()
    return seen


def events(base: str, auth: dict[str, str], kind: str) -> list[dict[str, Any]]:
    """Every event of ``kind``, through the API's cursors."""
    found: list[dict[str, Any]] = []
    params: dict[str, str] = {"type": kind, "limit": "100"}
    while True:
        page = LOCAL.get(f"{base}/v1/events", params=params, headers=auth).json()
        found += page["data"]
        if not page["pagination"]["hasMore"]:
            return found
        params["startingAfter"] = page["data"][-1]["id"]


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


@contextlib.contextmanager
def stack_up(work: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """Redis, MongoDB, the endpoint, serve and the worker: the service's base URL, an
    API key's header and the endpoint's base URL."""
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(services.redis_server())
        mongo_url = stack.enter_context(services.mongo_server()).replace("/?", "/latency?")
        (endpoint,) = stack.enter_context(receiver(1))
        env = {
            "EDGE_STORAGE_URL": mongo_url,
            "EDGE_REDIS_URL": redis_url,
            "EDGE_SECRET_KEY": secrets.token_urlsafe(48),
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_INPROCESS_DELIVERY": "0",
            "EDGE_RATE_LIMIT_API": "100000",  # the limits are not what is measured
            "EDGE_RATE_LIMIT_PUBLIC": "100000",
            "EDGE_RATE_LIMIT_INBOUND": "100000",
        }
        key = create_key(work, env=env)
        base, _ = stack.enter_context(serve(work, "--sandbox", env=env, wait=120))
        log = stack.enter_context((work / "worker.log").open("wb"))
        worker = start_worker(env, log)
        stack.callback(worker.wait)
        stack.callback(worker.terminate)
        auth = {"Authorization": f"Bearer {key}"}
        made = LOCAL.post(
            f"{base}/v1/outgoing-webhooks",
            json={"url": f"{endpoint}/hook", "events": EVENTS},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        yield base, auth, endpoint


def connected_phone(base: str, auth: dict[str, str]) -> tuple[str, str]:
    """A link completed through the fake Meta: its phone's id, ours and Meta's."""
    url, body, headers, link_id = prepare_signups(base, auth, 1)[0]
    done = LOCAL.post(url, content=body, headers=headers)
    assert done.status_code == 200, done.text
    view = LOCAL.get(f"{base}/v1/onboarding-links/{link_id}", headers=auth).json()["data"]
    return view["phoneNumberId"], orjson.loads(body)["phoneNumberId"]


def prepare_signups(base: str, auth: dict[str, str], count: int) -> list[Request]:
    """``count`` links, each with the fake Meta's session finished: their callbacks.
    Made 16 at a time just before they are sent: a signup's code lives 30 s, as Meta's."""

    async def prepare() -> list[Request]:
        prepared: list[Request] = []
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:

            async def one() -> None:
                link = await client.post(
                    f"{base}/v1/onboarding-links", json={"name": "L"}, headers=auth
                )
                link_id = link.json()["data"]["id"]
                finished = await client.post(
                    f"{base}/_sandbox/dialog/finish", json={"scenario": "ok"}
                )
                session = finished.json()
                body = orjson.dumps(
                    {
                        "code": session["code"],
                        "wabaId": session["data"]["waba_id"],
                        "phoneNumberId": session["data"]["phone_number_id"],
                    }
                )
                url = f"{base}/signup/{link_id}/callback"
                prepared.append((url, body, {"content-type": "application/json"}, link_id))

            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(one)
        return prepared

    return anyio.run(prepare)


def inbound_requests(base: str, phone_id: str, meta_phone: str, count: int) -> list[Request]:
    requests = []
    for _ in range(count):
        message_id = f"wamid.lat{uuid.uuid4().hex}"
        raw = payload(meta_phone, message_id)
        signature = sign_body(APP_SECRET, raw)
        headers = {"content-type": "application/json", "x-hub-signature-256": signature}
        requests.append((f"{base}/webhook/phone/{phone_id}", raw, headers, message_id))
    return requests


def floor_requests(endpoint: str, like: list[Request], tag: str) -> list[Request]:
    """Signed deliveries of the same sizes, straight to the endpoint."""
    requests = []
    for i, (_, body, _, _) in enumerate(like):
        ident, ts = f"floor-{tag}-{i}", int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": ident,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign("whsec_bench", ident, ts, body),
        }
        requests.append((f"{endpoint}/hook", body, headers, ident))
    return requests


def match(
    requests: list[Request], seen: dict[str, float], base: str, auth: dict[str, str], kind: str
) -> dict[str, float]:
    """When each request's event first reached the endpoint, by the request's key: the
    floor's own webhook-ids, else the events of ``kind`` (their ids are the webhook-ids)
    found by the message id or link id in their data."""
    if not kind:
        return {key: seen[key] for _, _, _, key in requests if key in seen}
    arrival = {}
    for event in events(base, auth, kind):
        if event["id"] not in seen:
            continue
        if kind == EVENTS[0]:
            found = WAMID.search(orjson.dumps(event["data"]))
            key = found.group().decode() if found else ""
        else:
            key = event["data"]["onboardingLinkId"]
        arrival[key] = seen[event["id"]]
    return arrival


def report(rows: list[LatencyRow], load: Any) -> None:
    print(
        "\nevent latency, request sent -> first receipt at the endpoint (ms); one serve, one worker"
    )
    head = f"{'rate/s':>7} {'sent/s':>7} {'p50':>8} {'p99':>8} {'received':>10} {'refused':>8}"
    print(f"{'path':<42} {head}")
    for name, rate, achieved, p50, p99, got, count, refused in rows:
        print(
            f"{name:<42} {rate:>7.0f} {achieved:>7.0f} {p50:>8.1f} {p99:>8.1f} "
            f"{f'{got}/{count}':>10} {refused:>8}"
        )
    print(f"\n{cpython(None)}")
    print(machine(load))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 500])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--send", help=argparse.SUPPRESS)  # a sender process's order
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        order = orjson.loads(Path(args.send).read_bytes())
        requests = [(u, base64.b64decode(b), h, k) for u, b, h, k in order]
        sent, status, achieved, errors = anyio.run(paced, requests, args.rate)
        result = {"sent": sent, "status": status, "achieved": achieved, "errors": errors}
        sys.stdout.buffer.write(orjson.dumps(result))
        return
    load_before = os.getloadavg()
    print(machine(load_before), flush=True)
    rows: list[LatencyRow] = []
    with tempfile.TemporaryDirectory() as tmp, stack_up(Path(tmp)) as (base, auth, endpoint):
        phone_id, meta_phone = connected_phone(base, auth)
        for rate in args.rates:
            count = max(1, int(rate * args.seconds))
            inbound = inbound_requests(base, phone_id, meta_phone, count)
            # Each path's requests made just before it runs (a signup's code lives 30 s).
            paths: list[tuple[str, Callable[[], list[Request]], str]] = [
                (
                    "floor: bare loop -> endpoint",
                    functools.partial(floor_requests, endpoint, inbound, f"{rate}"),
                    "",
                ),
                ("inbound -> message.received", functools.partial(list, inbound), EVENTS[0]),
                (
                    "signup -> phone_number.connected",
                    functools.partial(prepare_signups, base, auth, count),
                    EVENTS[1],
                ),
            ]
            for name, make, kind in paths:
                requests = make()
                before = stats(endpoint)["count"]
                sent, achieved, status, errors = send_elsewhere(requests, rate, Path(tmp))
                refused = sum(1 for code in status if code != 200)
                if errors:
                    print(f"{name} at {rate:.0f}/s: {refused} not 200, e.g. {errors[0]}")
                arrival = match(
                    requests, received(endpoint, len(requests), before), base, auth, kind
                )
                latencies = [
                    (arrival[key] - at) * 1000
                    for (_, _, _, key), at in zip(requests, sent, strict=True)
                    if key in arrival
                ]
                p50, p99 = percentiles(latencies) if latencies else (float("nan"),) * 2
                rows.append(
                    (name, rate, achieved, p50, p99, len(latencies), len(requests), refused)
                )
                print(rows[-1], flush=True)
    report(rows, load_before)


if __name__ == "__main__":
    main()
