"""Every JSON example in the docs (docs/**/*.md, README.md, bench/README.md) is checked
against the OpenAPI schema of what it shows.

Each ```json block is preceded by a marker comment naming it:

    <!-- openapi: createOnboardingLink request -->
    <!-- openapi: getOnboardingLink response 200 -->
    <!-- openapi: webhook message.received -->      (an event, as delivered)
    <!-- openapi: schema Error -->                  (a component schema)
    <!-- openapi: none — why it is not an API body -->

A block without a marker, one that is not JSON, or one its schema refuses fails, naming
the file and line. The docs site itself builds with ``mkdocs build --strict`` (.ci/run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from edge_onboard.api.openapi import build_openapi

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```json\s*$")
_MARKER = re.compile(r"^<!--\s*openapi:\s*(.+?)\s*-->\s*$")
SPEC = build_openapi("http://127.0.0.1:8080")


def _documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [*docs, ROOT / "README.md", ROOT / "bench" / "README.md"]


def examples() -> Iterator[tuple[str, str | None, str]]:
    """(where, marker, the block's text) for every ```json block."""
    for path in _documents():
        if not path.exists():
            continue
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if not _FENCE.match(line.strip()):
                continue
            end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
            before = [text.strip() for text in lines[:number] if text.strip()]
            found = _MARKER.match(before[-1]) if before else None
            where = f"{path.relative_to(ROOT)}:{number + 1}"
            yield where, found.group(1) if found else None, "\n".join(lines[number + 1 : end])


def _schema(marker: str) -> dict[str, Any] | None:
    """The schema ``marker`` names (None: not an API body)."""
    words = marker.split()
    if words[0] == "none":
        return None
    if words[0] == "webhook":
        item = SPEC["webhooks"][words[1]]["post"]
        schema: dict[str, Any] = item["requestBody"]["content"]["application/json"]["schema"]
        return schema
    if words[0] == "schema":
        return {"$ref": f"#/components/schemas/{words[1]}"}
    operation = next(
        op
        for item in SPEC["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("operationId") == words[0]
    )
    if words[1] == "request":
        body: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
        return body
    response = operation["responses"][words[2]]
    found: dict[str, Any] = response["content"]["application/json"]["schema"]
    return found


ALL = list(examples())


def test_the_docs_have_json_examples_to_check() -> None:
    assert len([marker for _, marker, _ in ALL if marker and marker != "none"]) >= 10


@pytest.mark.parametrize(("where", "marker", "text"), ALL, ids=[where for where, _, _ in ALL])
def test_json_example_matches_its_schema(where: str, marker: str | None, text: str) -> None:
    assert marker, f"{where}: a ```json block needs an <!-- openapi: … --> marker before it"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"{where}: not JSON: {exc}") from None
    try:
        schema = _schema(marker)
    except (KeyError, IndexError, StopIteration):
        raise AssertionError(
            f"{where}: the marker names nothing in the OpenAPI: {marker}"
        ) from None
    if schema is None:
        return
    errors = _errors(schema, value)
    assert not errors, f"{where} ({marker}): " + "; ".join(errors)


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    root = {**schema, "components": SPEC["components"]}
    validator = jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}" for e in errors[:5]
    ]


def test_a_wrong_example_is_caught() -> None:
    """The checker itself: an example the API would never send fails, naming the field."""
    schema = _schema("getOnboardingLink response 200")
    assert schema is not None
    good = next(orjson.loads(text) for _, m, text in ALL if m == "getOnboardingLink response 200")
    assert _errors(schema, good) == []
    wrong = {"data": {**good["data"], "isPhoneRegistered": "no"}}
    assert any(e.startswith("data/isPhoneRegistered") for e in _errors(schema, wrong))
    missing = {"data": {k: v for k, v in good["data"].items() if k != "livemode"}}
    assert _errors(schema, missing)
