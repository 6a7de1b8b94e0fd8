"""Start what a benchmark measures on free loopback ports: a plain ASGI app, the floor
routes, or the service itself on a chosen store."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests import services
from tests.live import create_key, free_port, serve

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def hypercorn_app(target: str, probe: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Serve ``target`` (``module:app``) and yield its base URL once ``probe`` answers."""
    port = free_port()
    args = ["-m", "hypercorn", "--bind", f"127.0.0.1:{port}", target]
    with _started(args, port, probe, env, quiet=True) as (base, _):
        yield base


@contextlib.contextmanager
def bare_route(server: str, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """bench/bare.py's routes on ``server``, served as ``edge-onboard serve`` serves the
    app (same server, same settings); yields the base URL and the process id once
    ``/bare`` answers."""
    port = free_port()
    args = ["-m", "bench.bare", "--server", server, "--port", str(port)]
    with _started(args, port, "/bare", env, quiet=False) as started:
        yield started


# Each server's own command line, as its documentation gives it (one worker, its
# defaults for everything else): the floor no embedding of ours can add to.
STOCK = {
    "granian": lambda port, target: [
        *("-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"),
        *("--port", str(port), target),
    ],
    "hypercorn": lambda port, target: ["-m", "hypercorn", "--bind", f"127.0.0.1:{port}", target],
}


@contextlib.contextmanager
def stock_bare_route(
    server: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """bench/bare.py's app served by ``server``'s stock command line (``granian
    --interface asgi bench.bare:app``, ``hypercorn bench.bare:app``); yields the base URL
    and the process id once ``/bare`` answers."""
    port = free_port()
    with _started(STOCK[server](port, "bench.bare:app"), port, "/bare", env, quiet=True) as started:
        yield started


@dataclasses.dataclass(frozen=True)
class Service:
    base: str  # its URL
    work: Path  # its working folder (the SQLite file lives there)
    env: dict[str, str]  # its settings
    auth: dict[str, str]  # an API key's Authorization header


@contextlib.contextmanager
def service(backend: str, database: str) -> Iterator[Service]:
    """``edge-onboard serve`` (one worker) on SQLite in a fresh folder, or on a fresh
    MongoDB (``database`` names its database), with a new API key; rate limits off, as
    they are not what a benchmark measures."""
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {
            "EDGE_SECRET_KEY": secrets.token_urlsafe(48),
            "EDGE_RATE_LIMIT_API": "100000",
            "EDGE_RATE_LIMIT_PUBLIC": "100000",
        }
        if backend == "mongo":
            url = stack.enter_context(services.mongo_server())
            env["EDGE_STORAGE_URL"] = url.replace("/?", f"/{database}?")
        key = create_key(work, env=env)
        base, _ = stack.enter_context(serve(work, env=env))
        yield Service(base, work, env, {"Authorization": f"Bearer {key}"})


@contextlib.contextmanager
def _started(
    args: list[str], port: int, probe: str, env: Mapping[str, str] | None, *, quiet: bool
) -> Iterator[tuple[str, int]]:
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=out,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}{probe}")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait()


def wait_for(url: str, client: httpx.Client | None = None) -> None:
    """Until ``url`` answers (any status), for at most 20 s."""
    for _ in range(400):
        try:
            (client or httpx).get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
