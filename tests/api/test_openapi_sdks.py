"""SDKs generated from the published OpenAPI document work whole, against a real
``serve`` (a test key, the fake Meta) on which an event of every type was caused
(tests/api/sdk_world.py): openapi-python-client's Python client, openapi-generator's
Python client, and its typescript-fetch client compiled with ``tsc`` and run under node
each create, get, list and delete a link, read every event of GET /v1/events through
its typed model, and parse a 404 as ``Error``; openapi-generator's Go client holds every
operation. Both generators are PyPI packages of the test extra (openapi-generator's
wheel ships its jar, which needs Java); tsc is pinned in .ci/install-services.sh."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_onboard.api.openapi import build_openapi
from edge_onboard.api.openapi._common import METHODS
from edge_onboard.api.openapi.event_schemas import schema_name
from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests.api.sdk_world import SERVE_ENV, World
from tests.api.test_openapi_lint import npm_tool
from tests.hosted.test_branding import png
from tests.live import create_key, run_cli, serve

PACKAGE = "edge_onboard_sdk"
GENERATORS = ("python", "typescript-fetch", "go")
TS_CHECK = Path(__file__).with_name("sdk_check.ts")


def command(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (pip install -e '.[test]')", pytrace=False)
    if name == "openapi-generator-cli" and shutil.which("java") is None:
        pytest.fail("java not found (bash .ci/setup installs it)", pytrace=False)
    return found


@dataclass
class Served:
    """The deployment the clients call: its URL, a test and a live key, and the events
    caused on it."""

    base: str
    key: str
    live_key: str
    types: set[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cwd = tmp_path_factory.mktemp("served")
    live_key = create_key(cwd)
    key = run_cli("keys", "create", "--org", "acme", "--test", cwd=cwd).stdout.split()[-1]
    assert key.startswith("sk_test_")
    with serve(cwd, "--sandbox", env=SERVE_ENV) as (base, _):
        with World(base, key, cwd) as world:
            types = world.cause_every_event()
        # Every type of the catalog, caused through the service's own paths.
        assert types == set(EVENT_TYPES), sorted(set(EVENT_TYPES) - types)
        yield Served(base, key, live_key, types)


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
    # Stock settings, but for the one body of any type: the media Meta stores (*/*),
    # which this generator reads as bytes only when told to.
    binary = {"*/*": "application/octet-stream"}
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
    with imported(out, PACKAGE) as package:
        yield package


@contextlib.contextmanager
def imported(folder: Path, package: str) -> Iterator[Any]:
    """``package``, imported from ``folder`` (and forgotten afterwards)."""
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]


def every_event(page: Callable[[str | None], Any], model: Callable[[Any], Any]) -> set[str]:
    """The types of every event a generated client lists (``page(starting_after)``),
    each checked to be the model of its own type (``model(item)``)."""
    seen: set[str] = set()
    after = None
    while True:
        found = page(after)
        for item in found.data:
            event = model(item)
            assert type(event).__name__ == schema_name(event.event), event
            seen.add(event.event)
        if not found.pagination.has_more:
            return seen
        after = found.pagination.starting_after


class Endpoints:
    """A generated API folder: each operation is a module of its own."""

    def __init__(self, package: str) -> None:
        self.package = package

    def __getattr__(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")


def test_python_sdk_round_trip(sdk: Any, served: Served) -> None:
    """create, get, list with a cursor, delete, and an error parsed as Error."""
    api = Endpoints(f"{PACKAGE}.api.onboarding_links")
    models = importlib.import_module(f"{PACKAGE}.models")
    base = served.base
    with (
        sdk.AuthenticatedClient(base_url=base, token=served.key) as client,
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
        # A returned id goes back as the path's id (a UUID both ways).
        assert all(isinstance(ident, uuid.UUID) for ident in ids)

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
        assert rest.data[0].id == ids[0]
        assert rest.pagination.page is None

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

        # Every event, each as the model of its type.
        events = Endpoints(f"{PACKAGE}.api.events")

        def page(after: str | None) -> Any:
            found = events.list_events.sync(client=client, limit=100, starting_after=after)
            assert isinstance(found, models.EventList), found
            return found

        assert every_event(page, lambda event: event) == served.types


def test_python_sdk_uploads_the_logo(sdk: Any, served: Served) -> None:
    """PUT /v1/organization/logo is generated (bytes as the body); a test key's upload is
    refused in the Error shape."""
    logo = Endpoints(f"{PACKAGE}.api.organization").put_organization_logo
    types = importlib.import_module(f"{PACKAGE}.types")
    models = importlib.import_module(f"{PACKAGE}.models")
    image = png()
    for key, status in ((served.live_key, 200), (served.key, 403)):
        with sdk.AuthenticatedClient(base_url=served.base, token=key) as client:
            body = types.File(payload=image, mime_type="application/octet-stream")
            answer = logo.sync_detailed(client=client, body=body)
        assert answer.status_code == status, answer.content
        if status == 200:
            assert isinstance(answer.parsed, models.OrganizationResponse)
            assert re.search(r"/brand/[0-9a-f-]{36}/[0-9a-f]{64}$", answer.parsed.data.logo_url)
        else:
            assert isinstance(answer.parsed, models.Error)
            assert answer.parsed.error.code == "livemode_key_required"


def test_openapi_generator_python_client_round_trip(
    generated: dict[str, Path], served: Served
) -> None:
    with imported(generated["python"], "openapi_client") as client:
        config = client.Configuration(host=served.base, access_token=served.key)
        with client.ApiClient(config) as http:
            links = client.OnboardingLinksApi(http)
            created = links.create_onboarding_link(
                client.OnboardingLinkCreate(name="Generated", external_id="crm-gen")
            )
            ident = created.data.id
            # The id as returned (a UUID) is the path's id.
            assert links.get_onboarding_link(ident).data.external_id == "crm-gen"
            listed = links.list_onboarding_links(external_id="crm-gen")
            assert [link.id for link in listed.data] == [ident]
            assert links.delete_onboarding_link(ident).data.deleted is True
            exceptions = importlib.import_module("openapi_client.exceptions")
            with pytest.raises(exceptions.NotFoundException) as missing:
                links.get_onboarding_link(ident)
            assert isinstance(missing.value.data, client.Error)
            assert missing.value.data.error.code == "resource_missing"

            events = client.EventsApi(http)
            # The discriminator picked the one model of its type.
            seen = every_event(
                lambda after: events.list_events(limit=100, starting_after=after),
                lambda event: event.actual_instance,
            )
            assert seen == served.types


def test_typescript_fetch_client_compiles_and_round_trips(
    generated: dict[str, Path], served: Served
) -> None:
    folder = generated["typescript-fetch"]
    shutil.copy(TS_CHECK, folder / TS_CHECK.name)
    tsc = npm_tool("TYPESCRIPT_VERSION", "typescript", "tsc")
    compiled = subprocess.run(
        [
            tsc,
            "--strict",
            "--target",
            "es2020",
            "--module",
            "commonjs",
            "--lib",
            "es2020,dom",
            "--outDir",
            "out",
            "index.ts",
            TS_CHECK.name,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    node = shutil.which("node")
    assert node is not None, "node not found (install Node.js)"
    ran = subprocess.run(
        [node, str(folder / "out" / TS_CHECK.with_suffix(".js").name), served.base, served.key],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = json.loads(ran.stdout)
    ident = seen["created"]["id"]
    assert seen["created"] == {"id": ident, "name": "TS shop", "status": "pending"}
    assert seen["got"] == "crm-ts" and seen["listed"] == [ident]
    assert seen["deleted"] == {"id": ident, "deleted": True}
    assert seen["missing"]["status"] == 404
    assert seen["missing"]["type"] == "invalid_request_error"
    assert seen["missing"]["code"] == "resource_missing"
    assert {event["event"] for event in seen["events"]} == served.types
    assert all(event["data"] for event in seen["events"])
    assert seen["one"] == seen["events"][0]["event"]
