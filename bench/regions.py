"""Latency by region: a client in the far region against one in the primary region.

    python -m bench.regions [--requests 100] [--skip-without-replicas]

Starts the two regions of tests/regions_topology.py on 127.0.0.1 (the far region's app
reaches the primary's Redis and MongoDB through a link adding 80 ms each way; each
region has an edge that honours fly-replay as Fly's proxy does) and times, one request
after another, from a client beside each region's edge: the hosted page, one of its
assets, GET link, a list, and POST link (a write: replayed to the primary from the far
region). Prints p50 and p99 per request kind for both regions, and the far/primary
ratio of the p50s (the goal: hosted page and GET link within 1.2x).

Then the same with replicas turned off: the far app configured as before regions (no
region settings), every read and write crossing to the primary's stores: the cost the
replicas remove. Needs redis-server and a mongod (see .ci/install-services.sh).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.regions_topology import Topology, regions  # noqa: E402

LINK = {"name": "Bench Corp", "redirectUrl": "https://app.example.com/done"}
KINDS = ("hosted page", "page asset", "GET link", "list links", "POST link")
GOAL = 1.2  # far p50 within this factor of the primary's, for the page and GET link


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _pair(
    clients: dict[str, httpx.Client], method: str, path: str, n: int, **kw: Any
) -> dict[str, list[float]]:
    """``n`` rounds of one request from each region's client, in turn: both regions'
    samples are taken at the same moments, so the machine's own load weighs on both."""
    samples: dict[str, list[float]] = {where: [] for where in clients}
    for _ in range(n):
        for where, client in clients.items():
            started = time.perf_counter()
            response = client.request(method, path, **kw)
            samples[where].append(time.perf_counter() - started)
            assert response.status_code < 300, (where, path, response.status_code)
    return samples


def _opened_link(topo: Topology) -> tuple[str, str]:
    """A link viewed once in the primary (so viewing it writes nothing), once the far
    region reads it as opened; and one asset its page links."""
    auth = {"Authorization": f"Bearer {topo.key}"}
    with httpx.Client(base_url=topo.primary_edge, timeout=30) as home:
        link_id = home.post("/v1/onboarding-links", headers=auth, json=LINK).json()["data"]["id"]
        page = home.get(f"/signup/{link_id}")
    asset = sorted(set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)))[0]
    deadline = time.monotonic() + 30
    while httpx.get(f"{topo.far_app}/signup/{link_id}", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the far region never saw the link")
        time.sleep(0.1)
    return link_id, asset


def measure(topo: Topology, n: int) -> dict[str, dict[str, tuple[float, float]]]:
    """p50 and p99 (ms) per request kind, for a client in each region."""
    link_id, asset = _opened_link(topo)
    auth = {"Authorization": f"Bearer {topo.key}"}
    kinds: dict[str, tuple[str, str, dict[str, Any]]] = {
        "hosted page": ("GET", f"/signup/{link_id}", {}),
        "page asset": ("GET", asset, {}),
        "GET link": ("GET", f"/v1/onboarding-links/{link_id}", {"headers": auth}),
        "list links": ("GET", "/v1/onboarding-links?limit=20", {"headers": auth}),
        # Last: after a write, this key's reads go to the primary for a while.
        "POST link": ("POST", "/v1/onboarding-links", {"headers": auth, "json": LINK}),
    }
    out: dict[str, dict[str, tuple[float, float]]] = {"primary": {}, "far": {}}
    with (
        httpx.Client(base_url=topo.primary_edge, timeout=30) as home,
        httpx.Client(base_url=topo.far_edge, timeout=30) as far,
    ):
        clients = {"primary": home, "far": far}
        for kind, (method, path, kw) in kinds.items():
            if method == "GET":
                _pair(clients, method, path, 5, **kw)  # warm: connections, first renders
            for where, samples in _pair(clients, method, path, n, **kw).items():
                out[where][kind] = _percentiles(samples)
    return out


def report(title: str, figures: dict[str, dict[str, tuple[float, float]]]) -> None:
    print(f"\n{title}")
    header = ("request", "primary p50", "p99", "far p50", "p99", "far/primary")
    print("{:<12} {:>11} {:>7} {:>8} {:>7} {:>11}".format(*header))
    for kind in KINDS:
        (pp50, pp99), (fp50, fp99) = figures["primary"][kind], figures["far"][kind]
        print(
            f"{kind:<12} {pp50:>11.1f} {pp99:>7.1f} {fp50:>8.1f} {fp99:>7.1f} {fp50 / pp50:>10.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="per kind and region")
    parser.add_argument("--skip-without-replicas", action="store_true")
    args = parser.parse_args(argv)
    with regions() as topo:
        with_replicas = measure(topo, args.requests)
    report("With regions (replicas in the far region, writes replayed), ms:", with_replicas)
    met = all(
        with_replicas["far"][kind][0] <= GOAL * with_replicas["primary"][kind][0]
        for kind in ("hosted page", "GET link")
    )
    verdict = "met" if met else "NOT met"
    print(f"goal (hosted page and GET link, far p50 <= {GOAL}x primary): {verdict}")
    if not args.skip_without_replicas:
        with regions(replicas=False) as topo:
            without = measure(topo, args.requests)
        report("Without replicas (the far app reads and writes the primary's stores), ms:", without)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
