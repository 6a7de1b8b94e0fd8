"""This checkout against another one, interleaved in one run: before/after figures that a
shared machine's drifting load cannot fake.

    python -m bench.ab --other PATH [--server granian|hypercorn] [--rounds 3]
                       [--duration 5] [--connections 64]

PATH is another checkout of this repository (``git worktree add PATH COMMIT``); its
``edge_onboard`` is put first on the ``PYTHONPATH`` of its ``serve``, everything else
(interpreter, packages, this bench) stays the same. Both run at once, one worker each,
on one Redis (a database each) and one MongoDB (a database each), with an API key and a
link of their own. Each round drives every row on one, then the same row on the other,
with wrk: the hosted page, ``GET`` and ``POST`` of a link. A row shows each round's
requests/s, their median, the median of the per-round ratios this / other, and the
server's CPU µs per request (median).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._machine import cpython, machine  # noqa: E402
from bench.edge import Load, measured  # noqa: E402
from bench.links import POST_LUA  # noqa: E402
from tests import services  # noqa: E402
from tests.live import create_key, serve  # noqa: E402

SIDES = ("this", "other")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--other", required=True, help="another checkout of this repository")
    parser.add_argument("--server", choices=("granian", "hypercorn"), default="granian")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    other = Path(args.other).resolve()
    if not (other / "edge_onboard").is_dir():
        raise SystemExit(f"{other} holds no edge_onboard package")
    load_before = os.getloadavg()
    print(machine(load_before), flush=True)
    opts: Load = {"duration": args.duration, "connections": args.connections}
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(services.redis_server())
        mongo_url = stack.enter_context(services.mongo_server())
        targets: dict[str, tuple[int, list[tuple[str, str, dict[str, str], str | None]]]] = {}
        for number, side in enumerate(SIDES):
            env = {
                "EDGE_STORAGE_URL": mongo_url.replace("/?", f"/ab_{side}?"),
                "EDGE_REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/{number}",
                "EDGE_SECRET_KEY": secrets.token_urlsafe(48),
                "EDGE_RATE_LIMIT_API": "100000",  # the limits are not what is measured
                "EDGE_RATE_LIMIT_PUBLIC": "100000",
                "EDGE_SERVER": args.server,
            }
            if side == "other":
                env["PYTHONPATH"] = str(other)
            folder = work / side
            folder.mkdir()
            auth = {"Authorization": f"Bearer {create_key(folder, env=env)}"}
            base, proc = stack.enter_context(serve(folder, env=env, wait=120))
            made = httpx.post(f"{base}/v1/onboarding-links", json={"name": "AB"}, headers=auth)
            link = made.json()["data"]
            targets[side] = (
                proc.pid,
                [
                    ("hosted page", link["hostedUrl"], {}, None),
                    ("GET link", f"{base}/v1/onboarding-links/{link['id']}", auth, None),
                    ("POST link", f"{base}/v1/onboarding-links", auth, POST_LUA),
                ],
            )
        rows = [name for name, _, _, _ in targets[SIDES[0]][1]]
        for _ in range(args.rounds):
            for index, name in enumerate(rows):
                for side in SIDES:
                    pid, side_rows = targets[side]
                    _, url, headers, script = side_rows[index]
                    rps, cpu, _ = measured(pid, url, opts, headers=headers, script=script)
                    figures.setdefault((side, name), []).append((rps, cpu))
    print(
        f"\n{args.server}, {args.connections} connections, {args.duration} s per row, "
        f"{args.rounds} rounds; this = {ROOT.name}, other = {other}"
    )
    print(f"{'endpoint':<14} {'this req/s':>24} {'other req/s':>24} {'ratio':>6} {'CPU µs':>13}")
    for name in rows:
        mine, theirs = figures[("this", name)], figures[("other", name)]
        ratio = statistics.median(a / b for (a, _), (b, _) in zip(mine, theirs, strict=True))
        cells = []
        for runs in (mine, theirs):
            each = "/".join(f"{rps:.0f}" for rps, _ in runs)
            cells.append(f"{each} ({statistics.median(r for r, _ in runs):.0f})")
        cpus = "/".join(f"{statistics.median(c for _, c in runs):.0f}" for runs in (mine, theirs))
        print(f"{name:<14} {cells[0]:>24} {cells[1]:>24} {ratio:>6.2f} {cpus:>13}")
    print(f"\n{cpython(None)}")
    print(machine(load_before))


if __name__ == "__main__":
    main()
