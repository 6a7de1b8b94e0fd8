"""SDKs generated from the OpenAPI document work: openapi-python-client's client makes a
round trip against the real server, and openapi-generator's Python, TypeScript (fetch)
and Go clients hold every operation. Both generators are PyPI packages of the test
extra (openapi-generator's wheel ships its jar, which needs Java)."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_onboard.api.openapi import build_openapi
from edge_onboard.api.openapi._common import METHODS
from edge_onboard.api.openapi.event_schemas import schema_name
from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests.live import create_key, serve

PACKAGE = "edge_onboard_sdk"
GENERATORS = ("python", "typescript-fetch", "go")
BINARY_TYPES = ("image/png", "image/jpeg", "image/webp", "image/x-icon", "*/*")


def command(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (pip install -e '.[test]')", pytrace=False)
    if name == "openapi-generator-cli" and shutil.which("java") is None:
        pytest.fail("java not found (bash .ci/setup installs it)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(json.dumps(build_openapi("https://onboard.example")))
    return path


def operation_ids(spec_file: Path) -> set[str]:
    spec = json.loads(spec_file.read_text())
    return {
        operation["operationId"]
        for section in ("paths", "webhooks")
        for item in spec[section].values()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def generated(spec_file: Path) -> dict[str, Path]:
    """openapi-generator's clients, generated once for the module (in parallel)."""
    cli = command("openapi-generator-cli")
    out = spec_file.parent
    runs = {
        name: subprocess.Popen(
            [cli, "generate", "-i", str(spec_file), "-g", name, "-o", str(out / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in GENERATORS
    }
    for name, run in runs.items():
        log, _ = run.communicate(timeout=600)
        if run.returncode != 0:
            pytest.fail(f"openapi-generator -g {name} failed:\n{log[-6000:]}", pytrace=False)
    return {name: out / name for name in GENERATORS}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def generated_operations(generator: str, folder: Path) -> set[str]:
    """The operations of a generated client, read from its sources, as operationIds."""
    if generator == "python":
        found = {
            name
            for source in (folder / "openapi_client" / "api").glob("*_api.py")
            for name in re.findall(r"^    def ([a-z][a-z0-9_]*)\(", source.read_text(), re.M)
            if not name.endswith(("_with_http_info", "_without_preload_content"))
        }
        return found
    if generator == "typescript-fetch":
        return {
            name
            for source in (folder / "apis").glob("*Api.ts")
            for name in re.findall(r"^    async (\w+)Raw\(", source.read_text(), re.M)
        }
    return {
        name[0].lower() + name[1:]
        for source in folder.glob("api_*.go")
        for name in re.findall(r"^func \(a \*\w+APIService\) (\w+)\(", source.read_text(), re.M)
        if not name.endswith("Execute")
    }


@pytest.mark.parametrize("generator", GENERATORS)
def test_openapi_generator_client_has_every_operation(
    generator: str, generated: dict[str, Path], spec_file: Path
) -> None:
    expected = operation_ids(spec_file)
    if generator == "python":
        expected = {_snake(name) for name in expected}
    found = generated_operations(generator, generated[generator])
    assert found == expected, (
        f"missing: {sorted(expected - found)}; unexpected: {sorted(found - expected)}"
    )
    if generator == "typescript-fetch":
        # Typed models, not empty records: each event payload, the health issues.
        spec = json.loads(spec_file.read_text())
        for name in [*map(schema_name, EVENT_TYPES), "PhoneHealthIssue"]:
            model = (generated[generator] / "models" / f"{name}.ts").read_text()
            assert "Record<string, never>" not in model, name
        issue = (generated[generator] / "models" / "PhoneHealthIssue.ts").read_text()
        for field in spec["components"]["schemas"]["PhoneHealthIssue"]["required"]:
            assert re.search(rf"^    {field}: \w", issue, re.M), field
    # One API class per tag, none left in a "default" one.
    assert not list(generated[generator].rglob("*[Dd]efault[_A]*")), generator


@pytest.fixture(scope="module")
def sdk(spec_file: Path) -> Iterator[Any]:
    """openapi-python-client's client, imported from where it was generated."""
    out = spec_file.parent / "python-sdk"
    config = spec_file.parent / "openapi-python-client.json"
    # The logo, media and icon bodies are bytes to this generator too.
    binary = {media: "application/octet-stream" for media in BINARY_TYPES}
    config.write_text(
        json.dumps({"package_name_override": PACKAGE, "content_type_overrides": binary})
    )
    result = subprocess.run(
        [
            command("openapi-python-client"),
            "generate",
            "--path",
            str(spec_file),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # It formats what it generates with ruff (of the test extra), found on PATH.
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # It warns about each operation or schema it leaves out: none may be.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    # One module per operation (webhooks are not calls a client makes).
    spec = json.loads(spec_file.read_text())
    expected = {
        _snake(operation["operationId"])
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }
    found = {path.stem for path in (out / PACKAGE / "api").glob("*/*.py")} - {"__init__"}
    assert found == expected, f"missing: {sorted(expected - found)}"
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


class Endpoints:
    """A generated API folder: each operation is a module of its own."""

    def __init__(self, package: str) -> None:
        self.package = package

    def __getattr__(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")


def test_python_sdk_round_trip(sdk: Any, tmp_path: Path) -> None:
    """create, get, list with a cursor, delete, and an error parsed as Error."""
    api = Endpoints(f"{PACKAGE}.api.onboarding_links")
    models = importlib.import_module(f"{PACKAGE}.models")
    key = create_key(tmp_path)
    with (
        serve(tmp_path) as (base, _),
        sdk.AuthenticatedClient(base_url=base, token=key) as client,
        sdk.Client(base_url=base) as anonymous,
    ):
        ids = []
        for number in range(3):
            created = api.create_onboarding_link.sync_detailed(
                client=client,
                body=models.OnboardingLinkCreate(
                    name=f"Shop {number}", external_id=f"crm-{number}"
                ),
            )
            assert created.status_code == 201, created.content
            assert re.fullmatch(r"req_[0-9a-f]{32}", created.headers["Request-Id"])
            assert isinstance(created.parsed, models.OnboardingLinkResponse)
            assert created.parsed.data.name == f"Shop {number}"
            assert created.parsed.data.status.value == "pending"
            ids.append(created.parsed.data.id)

        got = api.get_onboarding_link.sync(ids[0], client=client)
        assert isinstance(got, models.OnboardingLinkResponse)
        assert (got.data.id, got.data.external_id) == (ids[0], "crm-0")

        first = api.list_onboarding_links.sync(client=client, limit=2)
        assert isinstance(first, models.OnboardingLinkList)
        assert [link.id for link in first.data] == [ids[2], ids[1]]
        assert first.pagination.has_more is True
        rest = api.list_onboarding_links.sync(
            client=client, limit=2, starting_after=first.pagination.starting_after
        )
        assert isinstance(rest, models.OnboardingLinkList), rest
        assert [link.id for link in rest.data] == [ids[0]]
        assert rest.pagination.page is None and rest.pagination.has_more is False

        deleted = api.delete_onboarding_link.sync(ids[1], client=client)
        assert isinstance(deleted, models.Deleted)
        assert (deleted.data.id, deleted.data.deleted) == (ids[1], True)

        gone = api.get_onboarding_link.sync_detailed(ids[1], client=client)
        assert gone.status_code == 404
        assert isinstance(gone.parsed, models.Error)
        assert gone.parsed.error.type_.value == "invalid_request_error"
        assert gone.parsed.error.code and gone.parsed.error.message

        refused = api.list_onboarding_links.sync_detailed(client=anonymous)
        assert refused.status_code == 401
        assert isinstance(refused.parsed, models.Error)
        assert refused.parsed.error.type_.value == "authentication_error"
