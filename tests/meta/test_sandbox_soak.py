"""The fake Meta answers anonymous requests on every deployment: a flood of them must not
grow a real ``serve`` process's memory. Without Redis (its state lives only in the
process) and with the public budget raised out of the way, so the fake's own bounds are
what is measured: its call log a ring, its state trimmed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.meta.sandbox.sharing import ALONE_WABAS
from tests.live import serve

# The most the whole flood may take (about 4 000 requests).
DEADLINE = 150.0
LONG = "9" * 10_000  # a 10 KB Graph path, as in the attack run
# What the resident set may grow over the measured round (on the fake's unbounded call
# log that round alone kept 20 MB of paths).
GROWTH_MB = 8.0
Call = tuple[str, str, "dict[str, object] | None"]
# Every /_sandbox/* route, anonymous, and how often in a round.
ROUTES: list[tuple[int, Call]] = [
    (1000, ("GET", f"/_sandbox/graph/v25.0/{LONG}", None)),
    (1000, ("POST", f"/_sandbox/graph/v25.0/{LONG}/messages", {"to": "1"})),
    (20, ("GET", "/_sandbox/graph/v25.0/oauth/access_token?code=" + LONG[:2000], None)),
    (500, ("POST", "/_sandbox/dialog/finish", {"scenario": "ok"})),
    (100, ("POST", "/_sandbox/dialog/finish", {"scenario": "close_tab"})),
    (20, ("GET", "/_sandbox/dialog?locale=" + LONG[:2000], None)),
    (20, ("GET", "/_sandbox/dialog.js", None)),
    (20, ("GET", f"/_sandbox/media/{LONG}", None)),
    (20, ("GET", f"/_sandbox/{LONG}", None)),
    (20, ("POST", "/_sandbox/inbound", {"phone_number_id": "1", "from": "1", "text": LONG})),
    (20, ("POST", "/_sandbox/remove-access", {"waba_id": LONG})),
]
# The warm-up: past the fake's bound on WABAs kept, and every route once.
WARM_UP: list[tuple[int, Call]] = [(1100, ROUTES[3][1]), *((1, call) for _, call in ROUTES)]


@pytest.mark.anyio
async def test_without_redis_the_fakes_state_and_call_log_are_bounded() -> None:
    fake = SandboxMeta()
    transport = httpx.ASGITransport(app=Starlette(routes=fake.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        finish = {"scenario": "ok"}
        first = (await client.post("/_sandbox/dialog/finish", json=finish)).json()
        for _ in range(ALONE_WABAS + 50):
            assert (await client.post("/_sandbox/dialog/finish", json=finish)).is_success
        ring = fake.calls.maxlen
        assert ring is not None
        for _ in range(ring + 10):
            await client.get(f"/_sandbox/graph/v25.0/{LONG}")
    assert len(fake.waba_phones) <= ALONE_WABAS and len(fake.phones) <= ALONE_WABAS
    assert len(fake.tokens) <= 4 * ALONE_WABAS and len(fake.businesses) <= ALONE_WABAS
    assert first["data"]["waba_id"] not in fake.waba_phones  # the least recently used went
    assert len(fake.calls) == ring
    assert all(len(path) <= 256 for _, path in fake.calls)  # each path cut short


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process below it, in MB (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        status = Path(f"/proc/{current}/status").read_text()
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            todo.extend(int(child) for child in children)
    return total / 1024


def flood(client: httpx.Client, plan: list[tuple[int, Call]], deadline: float) -> None:
    """Each call of ``plan`` its number of times, anonymous; never a 5xx."""
    for times, (method, path, body) in plan:
        for _ in range(times):
            assert time.monotonic() < deadline, "the flood took too long"
            try:
                status = client.request(method, path, json=body).status_code
            except httpx.RemoteProtocolError:  # the server closed a kept-alive connection
                status = client.request(method, path, json=body).status_code
            assert status < 500, (method, path[:60], status)


def test_an_anonymous_flood_of_the_fake_meta_leaves_memory_flat(tmp_path: Path) -> None:
    env = {"EDGE_RATE_LIMIT_PUBLIC": "100000", "EDGE_STORAGE_URL": "memory://"}
    deadline = time.monotonic() + DEADLINE
    with serve(tmp_path, env=env) as (base, proc), httpx.Client(base_url=base) as client:
        flood(client, WARM_UP, deadline)  # caches, pools, the allocator's arenas
        before = rss_mb(proc.pid)
        flood(client, ROUTES, deadline)
        after = rss_mb(proc.pid)
    print(f"serve's RSS: {before:.1f} MB after the warm-up, {after:.1f} MB after the flood")
    assert after - before < GROWTH_MB, f"{before:.1f} MB -> {after:.1f} MB after the flood"
