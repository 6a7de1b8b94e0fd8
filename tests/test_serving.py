"""`serve` on either server, through the real command: Granian answers what hypercorn
answers and stops as cleanly; with EDGE_WORKERS=2 the kernel spreads new connections
over both worker processes (each has its own SO_REUSEPORT socket) on either server.

Which process took a connection is read from the system, not from the service: the
server side of each connection is found in /proc/net/tcp and its socket among the
worker processes' open files."""

from __future__ import annotations

import collections
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.live import create_key, serve

SERVERS = ["hypercorn", "granian"]


def test_serve_on_granian(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    with serve(tmp_path, "--server", "granian", "--sandbox") as (base, proc):
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        made = httpx.post(f"{base}/v1/onboarding-links", json={"name": "g"}, headers=auth)
        assert made.status_code == 201, made.text
        link = made.json()["data"]
        page = httpx.get(link["hostedUrl"])
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["content-security-policy"]  # the app's headers, unchanged
        got = httpx.get(f"{base}/v1/onboarding-links/{link['id']}", headers=auth)
        assert got.status_code == 200 and got.json()["data"]["id"] == link["id"]
        missing = httpx.get(f"{base}/v1/onboarding-links/nope", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"]
        port = int(base.rsplit(":", 1)[1])
        for path in ("/v1/onboarding-links", f"/signup/{link['id']}/callback"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as gone:
                gone.sendall(  # a client that leaves halfway through its body
                    f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{".encode()
                )
        assert httpx.get(f"{base}/healthz").status_code == 200
        with httpx.Client() as idle:  # a kept-alive connection does not hold up the stop
            assert idle.get(f"{base}/healthz").status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
    log = next(tmp_path.glob("serve-*.log")).read_text()
    listening = [line for line in log.splitlines() if "listening" in line]
    assert len(listening) == 1 and "granian" in listening[0], log
    assert log.rstrip().endswith("edge-onboard stopped"), log
    for noise in ("Traceback", "panicked", "_granian", "experimental"):
        assert noise not in log, log


@pytest.mark.parametrize("server", SERVERS)
def test_two_workers_share_new_connections(tmp_path: Path, redis_url: str, server: str) -> None:
    env = {
        "EDGE_WORKERS": "2",
        "EDGE_REDIS_URL": redis_url,
        "EDGE_STORAGE_URL": "sqlite:///./shared.db",
        "EDGE_SERVER": server,
    }
    with serve(tmp_path, env=env) as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        children = _children(proc.pid)  # the workers (and multiprocessing's helper)
        taken: collections.Counter[int | None] = collections.Counter()
        for _ in range(40):  # fresh connections, one after another
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                assert conn.recv(1024).startswith(b"HTTP/1.1 200")
                taken[_server_side_owner(port, conn.getsockname()[1], children)] += 1
        # Spread by the kernel's hash of each connection: both take some. With one
        # shared socket the worker that woke first could take them all.
        assert len(taken) == 2 and None not in taken, taken
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    log = next(tmp_path.glob("serve-*.log")).read_text()
    listening = [line for line in log.splitlines() if "listening" in line]
    assert len(listening) == 1 and f"{server}, 2 workers" in listening[0], log
    assert "Traceback" not in log and "Warning" not in log, log


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


def _server_side_owner(port: int, client_port: int, pids: list[int]) -> int | None:
    """The process among ``pids`` holding the server's end of the connection from
    ``client_port`` to ``port`` on 127.0.0.1."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if local.endswith(f":{port:04X}") and remote.endswith(f":{client_port:04X}"):
            inode = fields[9]
    assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue  # closed while we looked
    return None
