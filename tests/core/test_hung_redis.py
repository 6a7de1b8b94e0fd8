"""A hung Redis (SIGSTOP for 15 s: a partition, a failover, a slow command) under API and
inbound load on a real ``serve``: every request still answers within a second, from the
fallbacks a Redis that is down gets (the store, in-process limits, the recovery sweep),
with no 5xx and no 429 the hang caused. On SQLite and on MongoDB."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.faults import messages_body, received, seed, service_env, signed_headers, storage_url
from tests.faults import stopped as process_stopped
from tests.live import free_port, serve
from tests.webhooks.test_delivery_processes import own_redis

pytestmark = pytest.mark.redis
HANG = 15.0  # seconds Redis is stopped
API_CLIENTS, INBOUND_CLIENTS = 3, 2
# Far above this bounded load: any 429 would be the hang's doing.
LIMITS = {
    "EDGE_RATE_LIMIT_API": "5000",
    "EDGE_RATE_LIMIT_PUBLIC": "5000",
    "EDGE_RATE_LIMIT_INBOUND": "5000",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    what: str
    started: float
    took: float
    status: int


class Load:
    def __init__(self, client: httpx.AsyncClient, auth: dict[str, str], seeded_phone: str) -> None:
        self.client = client
        self.auth = auth
        self.meta_phone = seeded_phone
        self.answers: list[Answer] = []
        self.acknowledged: list[str] = []  # Meta message ids answered 200
        self.stop = anyio.Event()
        self.hang = (0.0, 0.0)  # when Redis was stopped, when it went on (monotonic)

    async def timed(self, what: str, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = await self.client.send(request)
        self.answers.append(Answer(what, started, time.monotonic() - started, response.status_code))
        return response

    async def api(self, worker: int, link_id: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            build = self.client.build_request
            if n % 3 == 0:
                body = {"name": f"hang-{worker}-{n}"}
                await self.timed(
                    "create", build("POST", "/v1/onboarding-links", json=body, headers=self.auth)
                )
            elif n % 3 == 1:
                params = {"limit": 10}
                request = build("GET", "/v1/onboarding-links", params=params, headers=self.auth)
                await self.timed("list", request)
            else:
                path = f"/v1/onboarding-links/{link_id}"
                await self.timed("read", build("GET", path, headers=self.auth))

    async def inbound(self, worker: int, phone_id: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            ident = f"wamid.HANG{worker}-{n}"
            raw = messages_body(self.meta_phone, [ident])
            request = self.client.build_request(
                "POST", f"/webhook/phone/{phone_id}", content=raw, headers=signed_headers(raw)
            )
            if (await self.timed("inbound", request)).status_code == 200:
                self.acknowledged.append(ident)


async def run_load(base: str, seeded_key: str, phone_id: str, meta_phone: str, pid: int) -> Load:
    auth = {"Authorization": f"Bearer {seeded_key}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        # An endpoint for every event, so each inbound message queues a delivery too
        # (nothing listens on port 9: deliveries fail and are retried later).
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["message.received"]}
        made = await client.post("/v1/outgoing-webhooks", json=hook, headers=auth)
        assert made.status_code == 201, made.text
        created = await client.post("/v1/onboarding-links", json={"name": "hang"}, headers=auth)
        assert created.status_code == 201, created.text
        link_id = created.json()["data"]["id"]
        load = Load(client, auth, meta_phone)
        async with anyio.create_task_group() as tg:
            for worker in range(API_CLIENTS):
                tg.start_soon(load.api, worker, link_id)
            for worker in range(INBOUND_CLIENTS):
                tg.start_soon(load.inbound, worker, phone_id)
            await anyio.sleep(2)
            with process_stopped(pid):
                hung_at = time.monotonic()
                await anyio.sleep(HANG)
            load.hang = (hung_at, time.monotonic())
            await anyio.sleep(2)
            load.stop.set()
    return load


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def test_a_hung_redis_costs_requests_no_more_than_its_deadline(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mongodb_url = request.getfixturevalue("mongodb_url") if backend == "mongo" else None
    url = storage_url(backend, tmp_path, mongodb_url)
    seeded = seed(url)
    port = free_port()
    with own_redis(port) as redis_process:
        env = service_env(url, EDGE_REDIS_URL=f"redis://127.0.0.1:{port}/0", **LIMITS)
        with serve(tmp_path, env=env, wait=60) as (base, _):
            load = anyio.run(
                run_load, base, seeded.key, seeded.phone_id, seeded.meta_phone, redis_process.pid
            )
            start, end = load.hang
            during = [a for a in load.answers if start <= a.started + a.took and a.started <= end]
            bad = [a for a in load.answers if a.status >= 500 or a.status == 429]
            assert not bad, f"{len(bad)} answers 5xx or 429: {bad[:5]}"
            slowest = max(load.answers, key=lambda a: a.took)
            by_kind = {
                kind: round(p99([a.took for a in during if a.what == kind]), 3)
                for kind in ("list", "create", "read", "inbound")
            }
            print(
                f"\n{backend}: {len(load.answers)} requests, {len(during)} during the "
                f"{HANG:.0f} s hang; p99 during it by kind {by_kind} s; slowest {slowest}"
            )
            assert p99([a.took for a in during]) < 1.0, by_kind
            assert all(value < 1.0 for value in by_kind.values()), by_kind
            assert len(during) > 100, "too little load during the hang to judge"
            # What Meta got a 200 for is recorded, once.
            deadline = time.monotonic() + 30
            while True:
                counts = received(url, seeded, load.acknowledged)
                if set(counts.values()) == {1} or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert counts == dict.fromkeys(load.acknowledged, 1)
