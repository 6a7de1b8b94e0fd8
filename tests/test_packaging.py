"""A plain (non-editable) install: the wheel's layout, and the service running from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_under_one_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("edge_onboard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"edge_onboard"}
    for expected in (
        "edge_onboard/app.py",
        "edge_onboard/py.typed",
        "edge_onboard/storage/sqlite.py",
        "edge_onboard/storage/mongo.py",
        "edge_onboard/config/settings.py",
        "edge_onboard/pages/signup.html",
        "edge_onboard/pages/signup.js",
        "edge_onboard/pages/sandbox/sdk.js",
        "edge_onboard/pages/sandbox/dialog.html",
    ):
        assert expected in names
    assert not any("tests/" in name for name in names)

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [sys.executable, "-c", "import edge_onboard.storage.sqlite as m; print(m.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_onboard", "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise AssertionError("serve exited") from None
                import time

                time.sleep(0.05)
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
