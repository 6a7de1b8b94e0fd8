"""Outside the primary region the processes that only do background work stand aside:
``worker`` idles (answering its health checks) and ``reconcile`` refuses."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.live import CLI, clean_env, free_port, run_cli

FAR = {
    "FLY_REGION": "syd",
    "PRIMARY_REGION": "iad",
    "EDGE_STORAGE_URL": "memory://",
    # Never contacted: a worker outside the primary opens nothing.
    "EDGE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
}


def test_a_worker_outside_the_primary_idles(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "worker.log").open("w+")
    proc = subprocess.Popen(
        [*CLI, "worker", "--health-port", str(port)],
        cwd=tmp_path,
        env=clean_env({**FAR, "EDGE_HOST": "127.0.0.1"}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json() == {"status": "idle", "region": "syd"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "worker.log").read_text()
    assert "background work runs in the primary region (iad) only; idle" in text


def test_reconcile_refuses_outside_the_primary(tmp_path: Path) -> None:
    result = run_cli("reconcile", cwd=tmp_path, env=FAR, check=False)
    assert result.returncode == 2
    assert "runs in the primary region (iad), not in syd" in result.stderr
