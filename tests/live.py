"""Run the real ``edge-onboard`` command in a subprocess, as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from hypercorn.config import Config
from starlette.types import ASGIApp

from edge_onboard.config.hypercorn import serve_asgi

CLI = [sys.executable, "-m", "edge_onboard"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without any EDGE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    env.update(extra or {})
    return env


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, env=clean_env(env), capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}: {result.stderr}")
    return result


def create_key(cwd: Path, org: str = "acme", env: Mapping[str, str] | None = None) -> str:
    return run_cli("keys", "create", "--org", org, cwd=cwd, env=env).stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def serve(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    wait: float = 20,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start ``edge-onboard serve`` and yield its base URL once /healthz answers
    (within ``wait`` seconds)."""
    port = port or free_port()
    log = (cwd / f"serve-{port}.log").open("w+")
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=clean_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"serve exited {proc.returncode}: {log.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer /healthz within {wait:.0f} s")
            time.sleep(0.05)
        yield base, proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` on 127.0.0.1 (a free port), in a thread with its own event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from here on, before hypercorn accepts them
    port: int = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve_asgi(app, config, stop.wait))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="fake-meta", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
    assert not thread.is_alive(), "the fake Meta did not stop"
    assert not errors, f"the fake Meta failed: {errors[0]!r}"


class QuietHandler(BaseHTTPRequestHandler):
    """A stdlib request handler that logs nothing (the tests' receivers)."""

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def threaded_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A stdlib HTTP server running ``handler`` in threads on a free loopback port;
    yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
