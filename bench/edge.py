"""The edge figures, on the production stack (Redis + a real MongoDB, one worker).

    python -m bench.edge [--duration 10] [--connections 64]

In one run: a bare Starlette route on the same hypercorn settings (twice: with a small
JSON body, and with the hosted page's own bytes and headers, the floor for a page of
that size), then the service's hosted page, GET and POST of a link, and the signup
callback (a cancel report: the callback path up to its durable write; a full
completion needs a fresh Meta code per request), each driven by wrk; the ratio to the
bare route is the figure. Also: time from process start to the first answered request,
import time, and resident memory after those runs and then after each round of 100k
more requests (page, GET and POST in turn).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.links import POST_LUA, bare_server, wrk  # noqa: E402
from tests import services  # noqa: E402
from tests.live import clean_env, create_key, free_port, serve  # noqa: E402

# Every request a new Idempotency-Key (thread number + counter), so none is a replay.
IDEMPOTENT_POST_LUA = """
wrk.method = "POST"
wrk.body = '{"name": "Bench link", "externalId": "bench", "redirectUrl": "https://example.com/done"}'
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. n
  return wrk.format()
end
"""

CALLBACK_LUA = """
wrk.method = "POST"
wrk.body = '{"error": {"message": "closed", "step": "PHONE_NUMBER_SETUP"}}'
wrk.headers["Content-Type"] = "application/json"
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cold_start(env: dict[str, str], cwd: Path) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_onboard", "serve", "--port", str(port)],
        cwd=cwd,
        env=clean_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait()


def import_time() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import edge_onboard.app"], check=True)
    baseline = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (baseline - started) - (time.perf_counter() - baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    opts = {"duration": args.duration, "connections": args.connections}
    rows: list[tuple[str, float, str, str]] = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(services.redis_server())
        mongo_url = stack.enter_context(services.mongo_server()).replace("/?", "/edge_bench?")
        env = {
            "EDGE_STORAGE_URL": mongo_url,
            "EDGE_REDIS_URL": redis_url,
            "EDGE_SECRET_KEY": secrets.token_urlsafe(48),
            "EDGE_RATE_LIMIT_API": "100000",  # the limits are not what is measured
            "EDGE_RATE_LIMIT_PUBLIC": "100000",
            "EDGE_SANDBOX": "1",
        }
        key = create_key(work, env=env)
        base, proc = stack.enter_context(serve(work, env=env))
        auth = {"Authorization": f"Bearer {key}"}
        link = httpx.post(
            f"{base}/v1/onboarding-links", json={"name": "Bench"}, headers=auth
        ).json()["data"]
        page = httpx.get(link["hostedUrl"])
        page_file = work / "page.json"
        page_file.write_bytes(
            orjson.dumps(
                {
                    "body": page.text,
                    "headers": {
                        k: v
                        for k, v in page.headers.items()
                        if k not in {"date", "content-length", "request-id"}
                    },
                }
            )
        )
        base_bare = stack.enter_context(bare_server({"BENCH_PAGE": str(page_file)}))
        rows.append(("bare route", *wrk(f"{base_bare}/bare", headers={}, **opts)))
        rows.append(("bare route, the page's bytes", *wrk(f"{base_bare}/page", headers={}, **opts)))
        rows.append(("hosted page", *wrk(link["hostedUrl"], headers={}, **opts)))
        get_url = f"{base}/v1/onboarding-links/{link['id']}"
        rows.append(("GET link", *wrk(get_url, headers=auth, **opts)))
        post_url = f"{base}/v1/onboarding-links"
        rows.append(("POST link", *wrk(post_url, headers=auth, script=POST_LUA, **opts)))
        rows.append(
            (
                "POST link, Idempotency-Key",
                *wrk(post_url, headers=auth, script=IDEMPOTENT_POST_LUA, **opts),
            )
        )
        rows.append(
            (
                "callback (cancel report)",
                *wrk(
                    f"{base}/signup/{link['id']}/callback",
                    headers={},
                    script=CALLBACK_LUA,
                    allow_errors=True,
                    **opts,
                ),
            )
        )
        # Memory: warmed up by the runs above, then 100k more requests (page, GET and
        # POST in turn), sampled after each round: a leak shows as a rising series.
        rss = [rss_kb(proc.pid)]
        served = 0
        rounds = [
            (link["hostedUrl"], {}, None),
            (get_url, auth, None),
            (post_url, auth, POST_LUA),
        ]
        while served < 100_000:
            url, headers, script = rounds[len(rss) % len(rounds)]
            rps, _, _ = wrk(
                url, headers=headers, script=script, duration=4, connections=args.connections
            )
            served += int(rps * 4)
            rss.append(rss_kb(proc.pid))
        start = cold_start(env, work)
        imports = import_time()

    floor = rows[0][1]
    print(f"\n{'endpoint':<30} {'req/s':>8} {'ratio':>6} {'p50':>9} {'p99':>9}")
    for name, rps, p50, p99 in rows:
        print(f"{name:<30} {rps:>8.0f} {rps / floor:>6.2f} {p50:>9} {p99:>9}")
    page_floor = next(r[1] for r in rows if r[0] == "bare route, the page's bytes")
    page_rps = next(r[1] for r in rows if r[0] == "hosted page")
    print(f"hosted page / bare route serving the page's bytes: {page_rps / page_floor:.2f}")
    print(f"cold start to first answer: {start * 1000:.0f} ms; import: {imports * 1000:.0f} ms")
    series = ", ".join(f"{kb / 1024:.1f}" for kb in rss[1:])
    print(
        f"RSS after the runs above: {rss[0] / 1024:.1f} MB; after each round of about "
        f"{served // (len(rss) - 1) // 1000}k more requests ({served} in all): {series} MB"
    )


if __name__ == "__main__":
    main()
