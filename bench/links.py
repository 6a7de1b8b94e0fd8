"""Requests/s of link create and get on SQLite and MongoDB, against a bare route.

    python -m bench.links [--duration 10] [--connections 64] [--backends sqlite,mongo]

Starts each server (one hypercorn worker) on 127.0.0.1, drives it with wrk, and
prints a table with each figure's ratio to the bare Starlette route measured in the
same run. Needs wrk, and for MongoDB a mongod (see .ci/install-services.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._servers import hypercorn_app, service  # noqa: E402

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"name": "Bench link", "externalId": "bench", "redirectUrl": "https://example.com/done"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _field(pattern: str, out: str) -> str:
    match = re.search(pattern, out, re.M)
    if match is None:
        raise SystemExit(f"wrk's output has no {pattern!r}:\n{out}")
    return match.group(1)


def wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    headers: dict[str, str],
    script: str | None = None,
    allow_errors: bool = False,
) -> tuple[float, str, str]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script or "")
    args += ["-s", handle.name]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    rps = float(_field(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _field(r"^\s+50%\s+(\S+)", out)
    p99 = _field(r"^\s+99%\s+(\S+)", out)
    if "Non-2xx" in out and not allow_errors:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rps, p50, p99


def bare_server(env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[str]:
    return hypercorn_app("bench.bare:app", "/bare", env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--backends", default="sqlite,mongo")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    opts = {"duration": args.duration, "connections": args.connections}
    rows: list[tuple[str, float, str, str]] = []
    with bare_server() as base:
        rows.append(("bare route", *wrk(f"{base}/bare", headers={}, **opts)))

    for backend in args.backends.split(","):
        with service(backend, "edge_bench") as svc:
            base, auth = svc.base, svc.auth
            link = httpx.post(f"{base}/v1/onboarding-links", json={"name": "x"}, headers=auth)
            link_id = link.json()["data"]["id"]
            rows.append(
                (
                    f"{backend}: GET link",
                    *wrk(f"{base}/v1/onboarding-links/{link_id}", headers=auth, **opts),
                )
            )
            rows.append(
                (
                    f"{backend}: POST link",
                    *wrk(f"{base}/v1/onboarding-links", headers=auth, script=POST_LUA, **opts),
                )
            )

    floor = rows[0][1]
    print(f"\n{'endpoint':<22} {'req/s':>9} {'ratio':>6} {'p50':>9} {'p99':>9}")
    for name, rps, p50, p99 in rows:
        print(f"{name:<22} {rps:>9.0f} {rps / floor:>6.2f} {p50:>9} {p99:>9}")


if __name__ == "__main__":
    main()
