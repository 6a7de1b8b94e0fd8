"""Meta's inbound is recorded (one write), acknowledged, then processed: a big batch is
answered at once, and a ``serve`` killed (SIGKILL) between the 200 and the processing
loses nothing: a sweeper of the next process takes what it left. Retries add nothing.
On MongoDB, a process killed mid-write holds nothing that Meta's retries then wait on."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.faults import (
    inbox_size,
    messages_body,
    received,
    seed,
    service_env,
    signed_headers,
    storage_url,
    wait_until,
)
from tests.live import serve

BATCH = 1000
RETRY_FOR = 20.0  # seconds a client resends a body the killed process did not answer


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def test_a_big_batch_is_answered_at_once_and_survives_a_kill(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mongodb_url = request.getfixturevalue("mongodb_url") if backend == "mongo" else None
    url = storage_url(backend, tmp_path, mongodb_url)
    seeded = seed(url)
    ids = [f"wamid.BIG{n}" for n in range(BATCH)]
    raw = messages_body(seeded.meta_phone, ids)
    path = f"/webhook/phone/{seeded.phone_id}"
    env = service_env(url)
    with serve(tmp_path, env=env, wait=60) as (base, process):
        # A first, small body: what a running service answers, not a cold start.
        warm = messages_body(seeded.meta_phone, ["wamid.WARM"])
        assert httpx.post(base + path, content=warm, headers=signed_headers(warm)).is_success
        wait_until(lambda: inbox_size(url) == 0, 30, "the first body processed")
        started = time.monotonic()
        answer = httpx.post(base + path, content=raw, headers=signed_headers(raw), timeout=60)
        took = time.monotonic() - started
        process.send_signal(signal.SIGKILL)  # between the 200 and the end of processing
        process.wait()
    assert answer.status_code == 200, answer.text
    done_before_kill = sum(received(url, seeded, ids).values())
    print(f"\n{backend}: {BATCH} messages answered in {took * 1000:.0f} ms; ", end="")
    print(f"{done_before_kill} recorded when the process was killed")
    assert took < 1.0
    assert done_before_kill < BATCH, "processed before the kill: the test proves nothing"
    assert inbox_size(url) == 1

    with serve(tmp_path, env=env, wait=60) as (base, _):
        # The next process's sweeper takes the body once its lease lapsed.
        recovered = wait_until(lambda: inbox_size(url) == 0, 90, "the body recovered")
        assert received(url, seeded, ids) == dict.fromkeys(ids, 1)
        # Meta's retry of the same body: acknowledged, processed, and adds nothing.
        again = httpx.post(base + path, content=raw, headers=signed_headers(raw), timeout=60)
        assert again.status_code == 200
        wait_until(lambda: inbox_size(url) == 0, 60, "the retry processed")
        assert received(url, seeded, ids) == dict.fromkeys(ids, 1)
    print(f"recovered by the next process in {recovered:.1f} s; the retry added nothing")


class Posting:
    """Meta: posts bodies of a few messages without pause, resending one until it gets a
    200 (a killed process's in-flight posts go to the next one)."""

    def __init__(self) -> None:
        self.base = ""
        self.acknowledged: list[str] = []
        # After the kill: (seconds since the new process answered its first request,
        # status) for every answer the retries got.
        self.after_kill: list[tuple[float, int]] = []
        self.restarted_at: float | None = None
        self.stop = anyio.Event()

    async def client(self, worker: int, phone_id: str, meta_phone: str) -> None:
        n = 0
        async with httpx.AsyncClient(timeout=30) as client:
            while not self.stop.is_set():
                ids = [f"wamid.K{worker}-{n}-{m}" for m in range(20)]
                n += 1
                raw = messages_body(meta_phone, ids)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        answer = await client.post(
                            f"{self.base}/webhook/phone/{phone_id}",
                            content=raw,
                            headers=signed_headers(raw),
                        )
                    except httpx.TransportError:  # the process died: resend to the next
                        await anyio.sleep(0.1)
                        continue
                    if self.restarted_at is not None:
                        since = time.monotonic() - self.restarted_at
                        self.after_kill.append((since, answer.status_code))
                    if answer.status_code == 200:
                        self.acknowledged += ids
                        break
                    await anyio.sleep(float(answer.headers.get("retry-after", "1")))


@pytest.mark.mongo
def test_retries_after_a_kill_mid_write_are_not_refused(tmp_path: Path, mongodb_url: str) -> None:
    """A ``serve`` killed under inbound load on MongoDB: the next process answers Meta's
    retries at once (nothing the dead one was writing blocks them), and every message
    acknowledged is recorded once."""
    url = storage_url("mongo", tmp_path, mongodb_url)
    seeded = seed(url)
    env = service_env(url, EDGE_RATE_LIMIT_INBOUND="5000")
    posting = Posting()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            with serve(tmp_path, env=env, wait=60) as (base, process):
                posting.base = base
                for worker in range(6):
                    tg.start_soon(posting.client, worker, seeded.phone_id, seeded.meta_phone)
                await anyio.sleep(3)
                process.send_signal(signal.SIGKILL)  # mid-write, under load
                process.wait()
            with serve(tmp_path, env=env, wait=60) as (base, _):
                posting.restarted_at = time.monotonic()
                posting.base = base
                await anyio.sleep(RETRY_FOR)
                posting.stop.set()
                await anyio.to_thread.run_sync(
                    wait_until,
                    lambda: inbox_size(url) == 0,
                    60,
                    "every acknowledged body processed",
                )

    anyio.run(run)
    refused = [(round(since, 1), status) for since, status in posting.after_kill if status != 200]
    print(
        f"\n{len(posting.acknowledged)} messages acknowledged; after the kill "
        f"{len(posting.after_kill)} answers, {len(refused)} not 200: {refused[:10]}"
    )
    assert not refused
    counts = received(url, seeded, posting.acknowledged)
    assert counts == dict.fromkeys(posting.acknowledged, 1)
