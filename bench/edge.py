"""The edge figures on both servers, side by side, on the production stack (Redis and
a real MongoDB), against honest floors.

    python -m bench.edge [--duration 8] [--connections 64] [--rounds 3] [--repeat 3]
                         [--reference-python PATH]

Needs wrk (`apt-get install wrk`) and a mongod and redis-server (.ci/setup installs
both). For each server (hypercorn, the default, and Granian: EDGE_SERVER), in one run:
the floors, a bare Starlette route (bench/bare.py: it reads nothing it does not need,
so a GET reads no body) served by that server's own command line (`granian --interface
asgi bench.bare:app`, `hypercorn bench.bare:app`), the same route served as `serve`
embeds that server (same settings as the service), the stock server's route POSTed to
(its body read), the same POST whose work is one MongoDB insert through the service's
driver and write concern (the floor for a request that makes a durable record), and the
hosted page's own bytes and headers, plain and gzip-compressed (the floors for a page of
that size); then the service on one worker: its hosted page
(asked for plain, and as browsers ask: gzip), GET and POST of a link and the signup
callback (a cancel report: the callback path up to its durable write), each driven by
wrk for --duration seconds, all of them in turn, --rounds times: a row shows its
medians, and its ratio is the median of its ratios to the stock server's bare route
in the same round (the true floor: what the server costs with no app to speak of).
Beside each row, the stores' CPU per request (every mongod and redis-server on the
machine: a write's cost that the server's own column does not show).
Then resident memory of the service after those runs, and its cold start (process
start to the first answered request). Then --repeat fresh runs of GET link with
EDGE_WORKERS=1 and EDGE_WORKERS=2 per server, each run's ratio printed with how many
cores the workers got and how many everything else on the machine took (wrk, Redis,
MongoDB share the same cores). Last, the machine's load average before and after, which
CPython ran it, how it was built, and its measured speed (with --reference-python,
another interpreter's beside it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._machine import cpython, machine  # noqa: E402
from bench._servers import bare_route, stock_bare_route  # noqa: E402
from bench.links import POST_LUA, wrk  # noqa: E402
from tests import services  # noqa: E402
from tests.live import clean_env, create_key, free_port, serve  # noqa: E402

SERVERS = ("hypercorn", "granian")
# endpoint, requests/s, server CPU (user + system, every process of it) per request in µs,
# ratio to the bare route, the stores' CPU per request in µs (medians over the rounds)
Row = tuple[str, float, float, float, float]
TICKS = os.sysconf("SC_CLK_TCK")


class Load(TypedDict):
    duration: int
    connections: int


FLOOR = "bare route, stock command line"
EMBEDDED_FLOOR = "bare route, as serve runs it"
POST_FLOOR = "bare route, POST (body read)"
INSERT_FLOOR = "bare route, POST + one insert"
PAGE_FLOOR = "bare route, the page's bytes"
PAGE_GZ_FLOOR = "bare route, the page gzipped"
PAGE_GZ = "hosted page, as browsers ask"
# What every browser sends with a page request: the page is then served gzip-compressed
# (compressed once per rendered page), about 2 of its 5.6 KB.
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd", "Accept-Language": "en-US,en;q=0.9"}

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


def children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its children (worker processes), in KB."""
    status = Path(f"/proc/{pid}/status").read_text()
    own = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return own + sum(rss_kb(child) for child in children(pid))


def cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time (user + system) of ``pid`` and of each process below it, by pid."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    times = {pid: (int(fields[11]) + int(fields[12])) / TICKS}
    for child in children(pid):
        times.update(cpu_seconds(child))
    return times


def measured(pid: int, url: str, opts: Load, **wrk_args: Any) -> tuple[float, float, list[float]]:
    """wrk on ``url``: requests/s, the server's CPU µs per request (``pid`` and its
    processes) and each process's CPU seconds."""
    rps, per_request, used, _ = measured_with_stores(pid, url, opts, **wrk_args)
    return rps, per_request, used


def measured_with_stores(
    pid: int, url: str, opts: Load, **wrk_args: Any
) -> tuple[float, float, list[float], float]:
    """``measured``, and the stores' CPU µs per request (every mongod and redis-server)."""
    before, stores_before = cpu_seconds(pid), stores_cpu()
    rps, _, _ = wrk(url, duration=opts["duration"], connections=opts["connections"], **wrk_args)
    used = {p: t - before.get(p, 0.0) for p, t in cpu_seconds(pid).items()}
    stores = stores_cpu() - stores_before
    requests = max(rps * opts["duration"], 1)
    per_request = sum(used.values()) / requests * 1e6
    return rps, per_request, sorted(used.values(), reverse=True), stores / requests * 1e6


STORES = {"mongod", "redis-server"}


def stores_cpu() -> float:
    """CPU seconds (user + system) used so far by every mongod and redis-server."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # gone meanwhile, or not readable
        if name in STORES:
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


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


def page_floor_file(work: Path, server: str, page_url: str) -> Path:
    """The hosted page's bytes and headers, plain and as a browser gets it (gzip), for
    bench/bare.py's /page and /page.gz."""
    skip = {"date", "content-length", "request-id", "server"}
    saved = {}
    for variant, headers in (("plain", {}), ("gzip", BROWSER)):
        with httpx.stream("GET", page_url, headers=headers) as page:
            body = page.read()  # as sent: a gzip body stays compressed
        kept = {k: v for k, v in page.headers.items() if k not in skip}
        saved[variant] = {"body": base64.b64encode(body).decode(), "headers": kept}
    path = work / f"page-{server}.json"
    path.write_bytes(orjson.dumps(saved))
    return path


def one_worker(
    server: str, env: dict[str, str], work: Path, key: str, opts: Load, rounds: int
) -> tuple[list[Row], float, float, str]:
    """The rows for ``server``, its RSS (KB) after them, its cold start (s) and a link id.

    Every row is measured ``rounds`` times, the floors and the service's rows in turn in
    each round; a row shows its median requests/s and CPU, and the median of its ratios
    to the stock server's bare route of the same round."""
    env = {**env, "EDGE_SERVER": server}
    auth = {"Authorization": f"Bearer {key}"}
    with serve(work, env=env, wait=120) as (base, proc):
        made = httpx.post(f"{base}/v1/onboarding-links", json={"name": "Bench"}, headers=auth)
        link = made.json()["data"]
        page_file = page_floor_file(work, server, link["hostedUrl"])
        get_url = f"{base}/v1/onboarding-links/{link['id']}"
        post_url = f"{base}/v1/onboarding-links"
        floors = {"BENCH_PAGE": str(page_file), "BENCH_MONGO_URL": env["EDGE_STORAGE_URL"]}
        with (
            stock_bare_route(server, floors) as (stock, stock_pid),
            bare_route(server, floors) as (bare, bare_pid),
        ):
            # name, process measured, URL, headers, wrk script
            targets: list[tuple[str, int, str, dict[str, str], str | None]] = [
                (FLOOR, stock_pid, f"{stock}/bare", {}, None),
                (EMBEDDED_FLOOR, bare_pid, f"{bare}/bare", {}, None),
                (POST_FLOOR, stock_pid, f"{stock}/bare", {}, POST_LUA),
                (INSERT_FLOOR, stock_pid, f"{stock}/bare/insert", {}, POST_LUA),
                (PAGE_FLOOR, stock_pid, f"{stock}/page", {}, None),
                (PAGE_GZ_FLOOR, stock_pid, f"{stock}/page.gz", BROWSER, None),
                ("hosted page", proc.pid, link["hostedUrl"], {}, None),
                (PAGE_GZ, proc.pid, link["hostedUrl"], BROWSER, None),
                ("GET link", proc.pid, get_url, auth, None),
                ("POST link", proc.pid, post_url, auth, POST_LUA),
                ("POST link, Idempotency-Key", proc.pid, post_url, auth, IDEMPOTENT_POST_LUA),
                (
                    "callback (cancel report)",
                    proc.pid,
                    f"{base}/signup/{link['id']}/callback",
                    {},
                    CALLBACK_LUA,
                ),
            ]
            runs: dict[str, list[tuple[float, float, float]]] = {t[0]: [] for t in targets}
            for _ in range(rounds):
                for name, pid, url, headers, script in targets:
                    rps, cpu, _, stores = measured_with_stores(
                        pid, url, opts, headers=headers, script=script, allow_errors=True
                    )
                    runs[name].append((rps, cpu, stores))
        rss = rss_kb(proc.pid)
    floor = [rps for rps, _, _ in runs[FLOOR]]
    rows = [
        (
            name,
            statistics.median(rps for rps, _, _ in figures),
            statistics.median(cpu for _, cpu, _ in figures),
            statistics.median(rps / base for (rps, _, _), base in zip(figures, floor, strict=True)),
            statistics.median(stores for _, _, stores in figures),
        )
        for name, figures in runs.items()
    ]
    return rows, rss, cold_start(env, work), link["id"]


class Scaling(NamedTuple):
    one: float  # GET link req/s, one worker
    one_cores: float  # cores that one worker's process used (its own threads included)
    two: float  # two workers
    share: float  # the busier worker's share of the two workers' CPU
    workers_cores: float  # cores the two workers used, on average over the run
    others_cores: float  # cores everything else used meanwhile (wrk, Redis, MongoDB, ...)


def machine_busy() -> float:
    """CPU seconds every core of the machine spent busy so far (/proc/stat)."""
    values = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICKS  # less idle and iowait


def two_workers(
    server: str, env: dict[str, str], work: Path, key: str, link_id: str, opts: Load
) -> Scaling:
    """GET link req/s on a fresh ``serve`` with one worker, then on a fresh one with
    two, with where the machine's CPU went during the two-worker run."""
    auth = {"Authorization": f"Bearer {key}"}
    rates, cores = [], []
    share = workers_cores = others_cores = 0.0
    for workers in (1, 2):
        run_env = {**env, "EDGE_SERVER": server, "EDGE_WORKERS": str(workers)}
        with serve(work, env=run_env, wait=120) as (base, proc):
            await_listening(work, base)
            url = f"{base}/v1/onboarding-links/{link_id}"
            busy = machine_busy()
            rps, _, used = measured(proc.pid, url, opts, headers=auth)
            busy = machine_busy() - busy
            rates.append(rps)
            cores.append(sum(used) / opts["duration"])
            busiest = used[:2]  # the workers (not the supervisor, nor multiprocessing's helper)
            share = busiest[0] / max(sum(busiest), 1e-9)
            workers_cores = sum(busiest) / opts["duration"]
            others_cores = (busy - sum(used)) / opts["duration"]
    return Scaling(rates[0], cores[0], rates[1], share, workers_cores, others_cores)


def await_listening(work: Path, base: str) -> None:
    """Until serve says it listens: /healthz answers as soon as one worker listens,
    and a load test's connections all made before the next one does would go to it."""
    log = work / f"serve-{base.rsplit(':', 1)[1]}.log"
    deadline = time.monotonic() + 60
    while "listening" not in log.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"serve never said it listens:\n{log.read_text()}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="fresh two-worker runs")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each row")
    parser.add_argument(
        "--reference-python", help="another interpreter whose speed to print beside this one's"
    )
    args = parser.parse_args()
    args.load_before = os.getloadavg()
    print(machine(args.load_before), flush=True)
    opts: Load = {"duration": args.duration, "connections": args.connections}
    figures: dict[str, tuple[list[Row], float, float, str]] = {}
    scaling: dict[str, list[Scaling]] = {server: [] for server in SERVERS}
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
        }
        key = create_key(work, env=env)
        for server in SERVERS:
            figures[server] = one_worker(server, env, work, key, opts, args.rounds)
        for _ in range(args.repeat):
            for server in SERVERS:
                link_id = figures[server][3]
                scaling[server].append(two_workers(server, env, work, key, link_id, opts))
    report(figures, scaling, args)


def report(
    figures: dict[str, tuple[list[Row], float, float, str]],
    scaling: dict[str, list[Scaling]],
    args: argparse.Namespace,
) -> None:
    print(
        f"\n{args.connections} connections, {args.duration} s per row, medians of "
        f"{args.rounds} rounds; one worker"
    )
    print(
        "ratio: requests/s over that server's bare route run by its stock command line, "
        "same round; CPU: the server's µs per request; stores: mongod's and redis-server's"
    )
    head = "".join(
        f" {server + ' req/s':>16} {'ratio':>6} {'CPU µs':>7} {'stores':>6}" for server in SERVERS
    )
    print(f"{'endpoint':<30}{head}")
    names = [row[0] for row in figures[SERVERS[0]][0]]
    for index, name in enumerate(names):
        line = f"{name:<30}"
        for server in SERVERS:
            rows = figures[server][0]
            _, rps, cpu, ratio, stores = rows[index]
            line += f" {rps:>16.0f} {ratio:>6.2f} {cpu:>7.0f} {stores:>6.0f}"
        print(line)
    for server in SERVERS:
        rows, rss, start, _ = figures[server]
        by_name = {row[0]: row[1] for row in rows}
        print(
            f"{server}: bare route as serve runs it / its stock command line "
            f"{by_name[EMBEDDED_FLOOR] / by_name[FLOOR]:.2f}; "
            f"hosted page / bare route serving the page's bytes "
            f"{by_name['hosted page'] / by_name[PAGE_FLOOR]:.2f} (plain), "
            f"{by_name[PAGE_GZ] / by_name[PAGE_GZ_FLOOR]:.2f} (gzip); "
            f"POST link / POST + one insert {by_name['POST link'] / by_name[INSERT_FLOOR]:.2f}; "
            f"RSS after the runs {rss / 1024:.1f} MB; cold start to first answer "
            f"{start * 1000:.0f} ms"
        )
    page = {s: {r[0]: r[1] for r in figures[s][0]}["hosted page"] for s in SERVERS}
    print(f"hosted page, granian / hypercorn: {page['granian'] / page['hypercorn']:.2f}x")
    print(f"\nGET link, EDGE_WORKERS=2 vs 1, {len(scaling[SERVERS[0]])} fresh runs each:")
    for server in SERVERS:
        runs = [
            f"{run.one:.0f} -> {run.two:.0f} req/s ({run.two / run.one:.2f}x; one worker "
            f"{run.one_cores:.2f} cores; two: busier worker {run.share:.0%} of their CPU, "
            f"{run.workers_cores:.2f} cores, the rest {run.others_cores:.2f})"
            for run in scaling[server]
        ]
        print(f"  {server}: " + "; ".join(runs))
    print(f"\n{cpython(args.reference_python)}")
    print(machine(args.load_before))


if __name__ == "__main__":
    main()
