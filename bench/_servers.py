"""Start a plain ASGI app for a benchmark, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests.live import free_port

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
        for _ in range(400):
            try:
                httpx.get(f"{base}{probe}", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait()
