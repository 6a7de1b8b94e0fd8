"""The OpenAPI document passes the linters SDK users run on it: Spectral (spectral:oas)
and Redocly, with no errors. Both are the npm packages .ci/install-services.sh installs,
at its versions; a missing one fails the test."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge_onboard.api.openapi import build_openapi

_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "install-services.sh"


def npm_tool(variable: str, folder: str, command: str) -> Path:
    """The command of the npm package installed for ``variable`` (its version)."""
    version = re.search(rf"^{variable}=(\S+)$", _SCRIPT.read_text(), re.M)
    assert version is not None, f"{variable} is not set in .ci/install-services.sh"
    cache = Path(os.environ.get("EDGE_TEST_CACHE") or Path.home() / ".cache" / "edge-onboard")
    path = cache / f"{folder}-{version.group(1)}" / "node_modules" / ".bin" / command
    if not path.exists():
        pytest.fail(f"{command} not found at {path} (bash .ci/setup installs it)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(json.dumps(build_openapi("https://onboard.example")))
    return path


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "REDOCLY_TELEMETRY": "off"}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_spectral_finds_no_error(spec_file: Path) -> None:
    spectral = npm_tool("SPECTRAL_VERSION", "spectral-cli", "spectral")
    ruleset = spec_file.parent / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n')
    report = spec_file.parent / "spectral.json"
    result = run(
        spectral,
        "lint",
        "--ruleset",
        ruleset,
        "--format",
        "json",
        "--output",
        report,
        "--fail-severity",
        "error",
        spec_file,
        cwd=spec_file.parent,
    )
    assert report.exists(), result.stdout + result.stderr
    found: list[dict[str, Any]] = json.loads(report.read_text() or "[]")
    errors = [f"{r['code']} {'.'.join(map(str, r['path']))}: {r['message']}" for r in found
              if r["severity"] == 0]  # fmt: skip
    assert not errors, "\n".join(errors)
    assert result.returncode == 0, result.stdout + result.stderr
    # The warnings allowed: no contact, the generic Event envelope no operation names, and
    # an operation without a description (openapi/descriptions.py).
    rules = {r["code"] for r in found}
    assert rules <= {"operation-description", "info-contact", "oas3-unused-component"}, rules


def test_redocly_finds_no_error(spec_file: Path) -> None:
    redocly = npm_tool("REDOCLY_VERSION", "redocly-cli", "redocly")
    result = run(redocly, "lint", "--format", "json", spec_file, cwd=spec_file.parent)
    start = result.stdout.find("{")
    assert start >= 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout[start:])
    errors = [
        f"{problem['ruleId']} {problem['location'][0]['pointer']}: {problem['message']}"
        for problem in report["problems"]
        if problem["severity"] == "error"
    ]
    assert not errors, "\n".join(errors)
    assert report["totals"]["errors"] == 0
    assert result.returncode == 0, result.stdout + result.stderr
