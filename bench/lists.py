"""List latency at 1k, 100k and 1M links in one organisation, on SQLite and MongoDB.

    python -m bench.lists [--sizes 1000,100000,1000000] [--backends sqlite,mongo]
                          [--repeat 30] [--duration 5]

For each store, starts the server (one hypercorn worker) on 127.0.0.1, then grows one
organisation to each size by inserting links straight into the store (bulk, beside
the server), and prints the p50 of a list's page 1, a deep page (page 500 of 20: the
10 000th link), a cursor page (startingAfter a link in the middle) and a status-filtered
page, and GET-link throughput on random links (wrk) alone and while another client
lists without pause. Throughput is also given as a ratio to the bare route measured in
the same run. Needs wrk, and for MongoDB a mongod (see .ci/install-services.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pymongo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._servers import service  # noqa: E402
from bench.links import bare_server, wrk  # noqa: E402
from edge_onboard.storage.codec import dump_doc, ms  # noqa: E402

STATUSES = ("pending", "completed", "expired")
BATCH = 20_000


def _docs(org_id: str, start: int, count: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Links as stored: one a millisecond, the newest now; a third each pending (not
    due), completed, expired."""
    for i in range(start, start + count):
        created = now - timedelta(days=20) + timedelta(milliseconds=i)
        status = STATUSES[i % 3]
        yield {
            "id": str(uuid.uuid4()),
            "org_id": org_id,
            "name": f"Bench link {i}",
            "status": status,
            "created_at": created,
            "expires_at": now + timedelta(days=7) if status == "pending" else created,
            "external_id": f"ext-{i % 1000}",
            "metadata": {},
            "livemode": True,
        }


def _times(doc: dict[str, Any]) -> tuple[int, int]:
    return ms(doc["created_at"]), ms(doc["expires_at"])


class SQLiteLoader:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), timeout=30)
        (self.org_id,) = self.conn.execute("SELECT id FROM orgs").fetchone()

    def load(self, start: int, count: int, now: datetime) -> None:
        rows = [
            (d["id"], d["org_id"], d["status"], d["external_id"], *_times(d), dump_doc(d))
            for d in _docs(self.org_id, start, count, now)
        ]
        for at in range(0, len(rows), BATCH):
            with self.conn:
                self.conn.executemany(
                    "INSERT INTO links (id, org_id, status, external_id, created_at,"
                    " expires_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows[at : at + BATCH],
                )

    def some_ids(self, count: int) -> list[str]:
        rows = self.conn.execute("SELECT id FROM links ORDER BY random() LIMIT ?", (count,))
        return [r[0] for r in rows]


class MongoLoader:
    def __init__(self, url: str) -> None:
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
        db = self.client.get_default_database()
        self.links = db["onboarding_links"]
        org = db["organizations"].find_one()
        assert org is not None
        self.org_id = str(org["_id"])

    def load(self, start: int, count: int, now: datetime) -> None:
        batch: list[dict[str, Any]] = []
        for doc in _docs(self.org_id, start, count, now):
            doc["_id"] = doc.pop("id")
            batch.append(doc)
            if len(batch) == BATCH:
                self.links.insert_many(batch, ordered=False)
                batch = []
        if batch:
            self.links.insert_many(batch, ordered=False)

    def some_ids(self, count: int) -> list[str]:
        return [d["_id"] for d in self.links.aggregate([{"$sample": {"size": count}}])]


def p50_ms(client: httpx.Client, path: str, repeat: int) -> float:
    for _ in range(3):
        client.get(path).raise_for_status()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def random_get_script(ids: list[str]) -> str:
    listed = ",".join(f'"{i}"' for i in ids)
    return (
        f"local ids = {{{listed}}}\n"
        "request = function()\n"
        '  return wrk.format("GET", "/v1/onboarding-links/" .. ids[math.random(#ids)])\n'
        "end\n"
    )


@contextlib.contextmanager
def lister(base: str, auth: dict[str, str], paths: list[str]) -> Iterator[list[int]]:
    """Another client listing without pause while the block runs; yields its count."""
    done = threading.Event()
    count = [0]

    def run() -> None:
        with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
            while not done.is_set():
                client.get(paths[count[0] % len(paths)]).raise_for_status()
                count[0] += 1

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield count
    finally:
        done.set()
        thread.join()


Row = tuple[str, int, float, float, float, float, float, float]


def measure(
    backend: str,
    base: str,
    auth: dict[str, str],
    loader: SQLiteLoader | MongoLoader,
    sizes: list[int],
    args: argparse.Namespace,
    emit: Callable[[Row], None],
) -> None:
    now = datetime.now(UTC)
    loaded = 0
    with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
        for size in sizes:
            began = time.perf_counter()
            loader.load(loaded, size - loaded, now)
            loaded = size
            print(f"{backend}: {size} links loaded in {time.perf_counter() - began:.1f} s")
            ids = loader.some_ids(1000)
            lists = {
                "page 1": "/v1/onboarding-links?limit=20",
                "deep": "/v1/onboarding-links?limit=20&page=500",
                "cursor": f"/v1/onboarding-links?limit=20&startingAfter={ids[0]}",
                "status": "/v1/onboarding-links?limit=20&status=pending",
            }
            if args.no_cursor:
                del lists["cursor"]
            p50s = {name: p50_ms(client, path, args.repeat) for name, path in lists.items()}
            page1, deep, status = p50s["page 1"], p50s["deep"], p50s["status"]
            cursor = p50s.get("cursor", float("nan"))
            opts = {"duration": args.duration, "connections": 16, "headers": auth}
            url = f"{base}/v1/onboarding-links/{ids[0]}"
            alone, _, _ = wrk(url, script=random_get_script(ids), **opts)
            with lister(base, auth, list(lists.values())) as listed:
                busy, _, _ = wrk(url, script=random_get_script(ids), **opts)
            print(f"  (the other client listed {listed[0]} pages meanwhile)")
            emit((backend, size, page1, deep, cursor, status, alone, busy))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,mongo")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--duration", type=int, default=5)
    # For a build from before cursors (to measure what they replaced): no cursor row.
    parser.add_argument("--no-cursor", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with bare_server() as bare:
        floor, _, _ = wrk(f"{bare}/bare", duration=args.duration, connections=16, headers={})
    rows: list[Row] = []
    for backend in args.backends.split(","):
        with service(backend, "edge_bench_lists") as svc:
            loader: SQLiteLoader | MongoLoader = (
                MongoLoader(svc.env["EDGE_STORAGE_URL"])
                if backend == "mongo"
                else SQLiteLoader(svc.work / "edge_onboard.db")
            )
            measure(backend, svc.base, svc.auth, loader, sizes, args, rows.append)

    print(f"\nbare route: {floor:.0f} req/s (16 connections)")
    print(
        f"{'store':<7} {'links':>8} {'page 1':>8} {'deep':>8} {'cursor':>8} {'status':>8}"
        f" {'GET/s':>7} {'ratio':>6} {'GET/s+list':>10} {'ratio':>6}"
    )
    for backend, size, page1, deep, cursor, status, alone, busy in rows:
        print(
            f"{backend:<7} {size:>8} {page1:>6.1f}ms {deep:>6.1f}ms {cursor:>6.1f}ms"
            f" {status:>6.1f}ms {alone:>7.0f} {alone / floor:>6.2f} {busy:>10.0f}"
            f" {busy / floor:>6.2f}"
        )
    for backend in args.backends.split(","):
        mine = [r for r in rows if r[0] == backend]
        if len(mine) > 1:
            ratio = mine[-1][2] / mine[0][2]
            print(f"{backend}: page 1 at {mine[-1][1]} links / at {mine[0][1]}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
