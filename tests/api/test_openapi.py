"""/openapi.json describes the API, and the API keeps to it (schemathesis, live server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from edge_onboard.api.openapi import build_openapi
from edge_onboard.api.openapi._common import METHODS
from edge_onboard.api.openapi.descriptions import DESCRIPTIONS
from edge_onboard.api.openapi.event_schemas import schema_name
from edge_onboard.app import create_app
from edge_onboard.core.validation import NON_BLANK, NON_BLANK_PATTERN
from edge_onboard.onboarding.phones import _disconnected_report, _health_report
from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests.api.test_event_schemas import connected_phone
from tests.conftest import Api, make_settings
from tests.live import create_key, serve

ROOT = Path(__file__).resolve().parents[2]


def schemathesis_run(base: str, key: str, cwd: Path, *extra: str) -> None:
    """Over the whole document: the published one and the internal routes (the hosted
    page, its files, Meta's webhooks), which the service keeps to just the same."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    spec = cwd / "openapi-internal.json"
    spec.write_text(json.dumps(build_openapi(base, internal=True)))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            str(spec),
            "--url",
            base,
            "--max-examples",
            os.environ.get("EDGE_SCHEMATHESIS_EXAMPLES", "100"),
            "--header",
            f"Authorization: Bearer {key}",
            "--no-color",
            "--checks",
            "all",
            "--seed",
            os.environ.get("EDGE_SCHEMATHESIS_SEED", "20261125"),
            *extra,
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(result.stdout[-8000:] + result.stderr[-2000:], pytrace=False)


def test_api_conforms_to_its_schema(tmp_path: Path) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) and every check: no 5xx, no
    response outside the schema, no schema-invalid request accepted, no valid one refused."""
    key = create_key(tmp_path)
    # The sandbox stands in for Meta, so callbacks meet a Graph that answers.
    # Thousands of requests on one key: limits high enough not to be what is tested here.
    limits = {"EDGE_RATE_LIMIT_API": "100000", "EDGE_RATE_LIMIT_PUBLIC": "100000"}
    with serve(tmp_path, "--sandbox", env=limits) as (base, _):
        special = r"^/signup/|^/v1/outgoing-webhooks/\{id\}$"
        schemathesis_run(base, key, tmp_path, "--exclude-path-regex", special)
        # Some valid requests are refused for reasons a schema cannot state: the hosted
        # page and its callback answer 410 (link gone) or 422 (Meta refused), and naming
        # a WABA the organisation does not have in a webhook PATCH is 404, which the
        # stateful phase would read as "the webhook just created is gone". That phase
        # also ignores per-operation allowances (tests/schemathesis.toml), so these run
        # on their own, in the stateless phases.
        schemathesis_run(
            base,
            key,
            tmp_path,
            "--include-path-regex",
            special,
            "--phases",
            "examples,coverage,fuzzing",
        )


def _normalise(path: str) -> str:
    for name in (
        "{link_id}",
        "{phone_id}",
        "{webhook_id}",
        "{delivery_id}",
        "{waba_id}",
        "{event_id}",
    ):
        path = path.replace(name, "{id}")
    return path


def test_every_route_is_documented() -> None:
    app = create_app(make_settings(EDGE_SANDBOX="1"))
    documented = {
        (_normalise(path), method.upper())
        for path, operations in build_openapi("https://x", internal=True)["paths"].items()
        for method in operations
        if method != "parameters"
    }
    served = {
        (_normalise(route.path), method)
        for route in app.routes
        # The spec itself, and the sandbox's fake of Meta (off unless asked for).
        if isinstance(route, Route)
        and route.path != "/openapi.json"
        and not route.path.startswith("/_sandbox")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == documented


def test_spec_is_valid_openapi_3_1() -> None:
    validate(build_openapi("https://onboard.test"))
    validate(build_openapi("https://onboard.test", internal=True))


INTERNAL = re.compile(r"^/(signup|static|brand|webhook|_sandbox)/|^/favicon\.ico$|^/$")


@pytest.mark.anyio
async def test_the_published_document_is_the_customers_api(api: Api) -> None:
    """/openapi.json has no route that is not the customer's API (no SDK method for the
    hosted page, its files, Meta's webhooks or the front page), while those are still
    served and described in the internal document the tests hold them to."""
    served = (await api.client.get("/openapi.json")).json()
    assert served == orjson.loads(orjson.dumps(build_openapi("https://onboard.test")))
    assert not [path for path in served["paths"] if INTERNAL.search(path)]
    service = ("/healthz", "/readyz")
    assert all(path.startswith("/v1/") or path in service for path in served["paths"])
    whole = build_openapi("https://onboard.test", internal=True)
    internal = {path for path in whole["paths"] if INTERNAL.search(path)}
    assert internal == set(whole["paths"]) - set(served["paths"])
    assert {"/signup/{id}", "/webhook/meta", "/favicon.ico", "/static/{name}"} <= internal
    assert (await api.client.get("/favicon.ico")).status_code == 200
    # Only the tags of its operations.
    used = {tag for _, op in _operations(served) for tag in op["tags"]}
    assert {tag["name"] for tag in served["tags"]} == used


def test_every_id_in_a_path_is_a_uuid_but_the_events() -> None:
    """A returned id passed back: SDKs type both alike."""
    spec = build_openapi("https://onboard.test")
    for path, item in spec["paths"].items():
        for parameter in item.get("parameters", ()):
            if parameter["in"] == "path" and parameter["name"] == "id":
                expected = "string" if path.startswith("/v1/events/") else "uuid"
                assert parameter["schema"].get("format", "string") == expected, path


def test_event_is_discriminated_by_its_type() -> None:
    """Every type of the catalog maps to its payload's schema (SDKs pick the model by
    ``event``; without it, several models match one body)."""
    schemas = build_openapi("https://onboard.test")["components"]["schemas"]
    event = schemas["Event"]
    assert event["discriminator"]["propertyName"] == "event"
    mapping = event["discriminator"]["mapping"]
    assert mapping == {name: f"#/components/schemas/{schema_name(name)}" for name in EVENT_TYPES}
    assert [ref["$ref"] for ref in event["oneOf"]] == list(mapping.values())
    for name, ref in mapping.items():
        payload = schemas[ref.rsplit("/", 1)[1]]
        assert payload["properties"]["event"] == {"type": "string", "const": name}
        assert "event" in payload["required"]


# Whitespace to Python (str.isspace) or to ECMAScript's \s, and a few that are neither.
_SPACES = [c for c in map(chr, range(0x3001)) if c.isspace()] + ["\ufeff"]


def test_the_blank_text_pattern_matches_the_server() -> None:
    """``displayName: "\\u001d"`` is blank to the server (str.isspace) but passed the
    document's ``\\S`` (ECMA-262 and Rust regex do not call U+001D a space): every
    "not blank" field now documents the server's own class, and both agree on every
    whitespace character."""
    spec = build_openapi("https://onboard.test")
    schemas = spec["components"]["schemas"]
    fields = [
        schemas["OrganizationUpdate"]["properties"]["displayName"]["anyOf"][0],
        schemas["OnboardingLinkCreate"]["properties"]["displayName"]["anyOf"][0],
        schemas["OnboardingLinkCreate"]["properties"]["name"],
    ]
    for field in fields:
        assert field["pattern"] == NON_BLANK_PATTERN
        validator = jsonschema_rs.validator_for(field)
        for space in _SPACES:
            for text in (space, space * 3):
                assert not validator.is_valid(text), repr(text)
                assert NON_BLANK.search(text) is None, repr(text)
        for text in ("a", " a ", "\u001dA", "\u0661"):
            assert validator.is_valid(text) and NON_BLANK.search(text) is not None


def _operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, operation) for every operation in paths and webhooks."""
    return [
        (f"{section} {path} {method}", operation)
        for section in ("paths", "webhooks")
        for path, item in spec[section].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_is_tagged_named_and_summarised() -> None:
    """What SDK generators need of each operation, including operations added later: a
    declared tag (one API class each), a unique camelCase operationId (the method's
    name) and a summary."""
    spec = build_openapi("https://onboard.test", internal=True)
    declared = {tag["name"]: tag.get("description") for tag in spec["tags"]}
    assert len(declared) == len(spec["tags"]), "a tag is declared twice"
    assert all(declared.values()), f"a tag without a description: {declared}"
    operations = _operations(spec)
    assert len(operations) > 60
    seen: dict[str, str] = {}
    for where, operation in operations:
        assert operation.get("tags"), f"{where}: no tags (add a rule in openapi/tags.py)"
        undeclared = set(operation["tags"]) - set(declared)
        assert not undeclared, f"{where}: tags {undeclared} not declared in openapi/tags.py"
        operation_id = operation.get("operationId")
        assert isinstance(operation_id, str), f"{where}: no operationId"
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", operation_id), f"{where}: {operation_id}"
        assert operation_id not in seen, f"{where}: operationId {operation_id} also {seen}"
        seen[operation_id] = where
        assert str(operation.get("summary", "")).strip(), f"{where}: no summary"
    used = {tag for _, operation in operations for tag in operation["tags"]}
    assert used == set(declared), f"declared but unused: {set(declared) - used}"


def test_response_headers_are_described() -> None:
    spec = build_openapi("https://onboard.test")
    assert set(spec["components"]["headers"]) == {
        "Request-Id",
        "Idempotent-Replayed",
        "Retry-After",
    }
    idempotent = 0
    for where, operation in _operations({**spec, "webhooks": {}}):
        keyed = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", ()))
        idempotent += keyed
        for code, response in operation["responses"].items():
            headers = {name: header["$ref"] for name, header in response.get("headers", {}).items()}
            assert headers["Request-Id"] == "#/components/headers/Request-Id", (where, code)
            assert ("Retry-After" in headers) == (code in ("429", "503")), (where, code)
            if keyed and code.startswith("2"):
                assert "Idempotent-Replayed" in headers, (where, code)
            if not keyed:
                assert "Idempotent-Replayed" not in headers, (where, code)
    assert idempotent >= 8


def test_phone_health_issues_are_typed() -> None:
    schemas = build_openapi("https://onboard.test")["components"]["schemas"]
    data = schemas["PhoneHealth"]["properties"]["data"]
    assert data["properties"]["issues"]["items"] == {
        "$ref": "#/components/schemas/PhoneHealthIssue"
    }
    issue = schemas["PhoneHealthIssue"]
    assert set(issue["properties"]) == set(issue["required"])
    assert set(issue["required"]) == {"entityType", "code", "description", "possibleSolution"}


def test_phone_health_reports_match_the_schema() -> None:
    """The reports phones.py builds, from Meta's health_status (numeric error codes) and
    its own findings, are what the schema says."""
    spec = build_openapi("https://onboard.test")
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/PhoneHealth", "components": spec["components"]},
        validate_formats=True,
    )
    phone = connected_phone()
    raw = {
        "status": "CONNECTED",
        "platform_type": "ON_PREMISE",
        "health_status": {
            "can_send_message": "BLOCKED",
            "entities": [
                {
                    "entity_type": "BUSINESS",
                    "errors": [
                        {
                            "error_code": 141006,
                            "error_description": "There is an error with the payment method.",
                            "possible_solution": "Add a payment method.",
                        }
                    ],
                },
                {"entity_type": "WABA", "errors": [{"error_code": 141010}]},
            ],
        },
    }
    checked = "2026-11-25T12:00:00.000Z"
    report = _health_report(phone, raw, False, checked)
    assert len(report["issues"]) == 4  # two of Meta's, not subscribed, not registered
    validator.validate({"data": report})
    validator.validate({"data": _disconnected_report(phone, checked)})
    with pytest.raises(jsonschema_rs.ValidationError):
        validator.validate({"data": {**report, "issues": [{"entityType": "APP"}]}})


def test_descriptions_name_real_operations() -> None:
    """A description kept for an operation that was renamed or removed is a mistake."""
    spec = build_openapi("https://onboard.test", internal=True)
    ids = {operation["operationId"] for _, operation in _operations(spec)}
    assert set(DESCRIPTIONS) <= ids, set(DESCRIPTIONS) - ids
    described = [op for _, op in _operations({**spec, "webhooks": {}}) if op.get("description")]
    assert len(described) >= len(DESCRIPTIONS)
