"""/openapi.json describes the API, and the API keeps to it (schemathesis, live server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from edge_onboard.app import create_app
from edge_onboard.openapi import build_openapi
from tests.conftest import make_settings
from tests.live import create_key, serve

ROOT = Path(__file__).resolve().parent.parent


def test_api_conforms_to_its_schema(tmp_path: Path) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) and every check: no 5xx, no
    response outside the schema, no schema-invalid request accepted."""
    key = create_key(tmp_path)
    with serve(tmp_path) as (base, _):
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                os.environ.get("EDGE_SCHEMATHESIS_EXAMPLES", "100"),
                "--header",
                f"Authorization: Bearer {key}",
                "--no-color",
                "--seed",
                os.environ.get("EDGE_SCHEMATHESIS_SEED", "20261125"),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if result.returncode != 0:
        pytest.fail(result.stdout[-8000:] + result.stderr[-2000:], pytrace=False)
    assert "Tested: 7" in result.stdout


def test_every_route_is_documented() -> None:
    app = create_app(make_settings())
    documented = {
        (path.replace("{id}", "{link_id}"), method.upper())
        for path, operations in build_openapi("https://x")["paths"].items()
        for method in operations
        if method != "parameters"
    }
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"  # the spec itself
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == documented


def test_spec_is_valid_openapi_3_1() -> None:
    validate(build_openapi("https://onboard.test"))
