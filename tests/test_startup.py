"""Start-up and stopping that tell the truth, through the real command: what the
service stands on is opened before it says it listens, what fails says so in one line,
a hung MongoDB costs a request seconds (not minutes), and a stop lets requests finish."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests import services
from tests.live import CLI, clean_env, create_key, free_port, run_cli, serve

SECRET = {"EDGE_SECRET_KEY": "k" * 48}


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def _private_mongod(*, replica_set: bool = True) -> Iterator[str]:
    try:
        with services.mongo_server(replica_set=replica_set, private=True) as url:
            yield url
    except services.ServiceUnavailable as exc:
        services.unavailable(f"test service missing: {exc}")


def _one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-onboard: cannot start: "), lines[0]
    return lines[0]


def test_a_standalone_mongodb_is_refused_at_start(tmp_path: Path) -> None:
    with _private_mongod(replica_set=False) as url:
        env = {"EDGE_STORAGE_URL": _with_database(url, "edge"), **SECRET}
        line = _one_line_failure(run_cli("serve", cwd=tmp_path, env=env, check=False))
    assert "is a standalone server" in line and "--replSet" in line, line
    assert "Traceback" not in line


def test_unreachable_storage_and_redis_fail_in_one_line(tmp_path: Path) -> None:
    closed = free_port()
    started = time.monotonic()
    mongo = {"EDGE_STORAGE_URL": f"mongodb://user:pw@127.0.0.1:{closed}/edge", **SECRET}
    line = _one_line_failure(run_cli("serve", cwd=tmp_path, env=mongo, check=False))
    assert time.monotonic() - started < 15
    assert f"cannot open storage at mongodb://127.0.0.1:{closed}/edge" in line, line
    assert "pw" not in line
    redis = {"EDGE_REDIS_URL": f"redis://127.0.0.1:{closed}/0"}
    line = _one_line_failure(run_cli("serve", cwd=tmp_path, env=redis, check=False))
    assert f"EDGE_REDIS_URL: Redis at redis://127.0.0.1:{closed}/0 did not answer" in line
    worker = run_cli("worker", cwd=tmp_path, env=redis, check=False)
    assert "EDGE_REDIS_URL" in _one_line_failure(worker)


@pytest.mark.parametrize("server", ["hypercorn", "granian"])
def test_a_port_in_use_fails_in_one_line(tmp_path: Path, server: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli(
            "serve", "--port", str(port), "--server", server, cwd=tmp_path, check=False
        )
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line_failure(result)
    log = result.stdout + result.stderr
    assert "listening" not in log


def test_a_hung_mongodb_costs_a_request_at_most_6_seconds(tmp_path: Path) -> None:
    with _private_mongod() as url:
        env = {"EDGE_STORAGE_URL": _with_database(url, "edge"), **SECRET}
        key = create_key(tmp_path, env=env)
        auth = {"Authorization": f"Bearer {key}"}
        client: MongoClient[dict[str, Any]] = MongoClient(url)
        with client:
            pid = int(client.admin.command("serverStatus")["pid"])
        with serve(tmp_path, env=env) as (base, _):
            made = httpx.post(f"{base}/v1/onboarding-links", json={"name": "x"}, headers=auth)
            assert made.status_code == 201
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(1.2)  # in-process copies of the key and link lapse after 1 s
                for method, path in (
                    ("GET", f"/v1/onboarding-links/{uuid.uuid4()}"),
                    ("POST", "/v1/onboarding-links"),
                ):
                    started = time.monotonic()
                    answer = httpx.request(
                        method, base + path, json={"name": "y"}, headers=auth, timeout=30
                    )
                    took = time.monotonic() - started
                    print(f"\n{method} {path.split('/')[2]} with mongod stopped: {took:.2f} s")
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["error"]["code"] == "storage_unavailable"
                    assert took < 6, took
            finally:
                os.kill(pid, signal.SIGCONT)
            # Once MongoDB runs again, so does the service.
            deadline = time.monotonic() + 20
            while True:
                got = httpx.get(made.json()["data"]["hostedUrl"].replace("signup", "signup"))
                if got.status_code == 200:
                    break
                assert time.monotonic() < deadline, got.text
                time.sleep(0.2)
            link = httpx.get(
                f"{base}/v1/onboarding-links/{made.json()['data']['id']}", headers=auth
            )
            assert link.status_code == 200


def test_serve_sandbox_stops_within_2_seconds(tmp_path: Path) -> None:
    with serve(tmp_path, "--sandbox") as (base, proc):
        assert httpx.get(f"{base}/healthz").status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - started
    print(f"\nserve --sandbox stopped {took:.2f} s after SIGTERM")
    assert proc.returncode == 0 and took < 2, took


@pytest.mark.parametrize("server", ["hypercorn", "granian"])
def test_a_stop_finishes_the_requests_in_flight(tmp_path: Path, server: str) -> None:
    key = create_key(tmp_path)
    with serve(tmp_path, "--server", server) as (base, proc):
        body = b'{"name": "in flight"}'
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            head = (
                "POST /v1/onboarding-links HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            conn.sendall(head + body[:5])
            time.sleep(0.3)  # the request has begun
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None, "serve quit with a request in flight"
            conn.sendall(body[5:])
            answer = conn.makefile("rb").readline()
        assert answer.startswith(b"HTTP/1.1 201"), answer
        proc.wait(timeout=10)
        assert proc.returncode == 0
        # A new connection is no longer accepted once it stopped.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_listening_is_said_once_everything_is_open(tmp_path: Path, redis_url: str) -> None:
    with serve(tmp_path, "--sandbox", env={"EDGE_REDIS_URL": redis_url}) as (base, _):
        pass
    log = next(tmp_path.glob("serve-*.log")).read_text()
    lines = [line for line in log.splitlines() if "listening" in line or "Running on" in line]
    assert len(lines) == 1, log
    host_port = redis_url.split("//", 1)[1].rstrip("/0").rstrip("/")
    for part in (base, f"public URL {base}", "storage sqlite", host_port, "sandbox on"):
        assert part in lines[0], (part, lines[0])


def test_the_worker_answers_health_checks_and_stops_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "worker", "--health-port", str(port)],
        cwd=tmp_path,
        env=clean_env({"EDGE_REDIS_URL": redis_url}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.json() == {"status": "ready", "checks": {"storage": "ok", "redis": "ok"}}
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=15)[0]
        assert proc.returncode == 0, out
        assert time.monotonic() - started < 5
        assert "worker stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
