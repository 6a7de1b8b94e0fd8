"""Start a plain ASGI app on hypercorn for a benchmark, on a free loopback port."""

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
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", target],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}{probe}", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait()
