"""MkDocs hook: the API reference page (reference/openapi.md), rendered at build time
from the OpenAPI document the service serves at /openapi.json (the same function builds
both), so the reference never drifts from the API."""

from __future__ import annotations

import json
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from edge_onboard.api.openapi import build_openapi

PAGE = "reference/openapi.md"
METHODS = ("get", "post", "put", "patch", "delete")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(
        File.generated(config, PAGE, content=render(build_openapi("http://127.0.0.1:8080")))
    )
    return files


def _name(schema: dict[str, Any]) -> str:
    """A schema as a short name: its component (linked), or its JSON."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(_name(s) for s in schema.get("anyOf") or schema["oneOf"])
    if schema.get("type") == "array":
        return f"array of {_name(schema.get('items', {}))}"
    kind = schema.get("type", "object")
    enum = schema.get("enum")
    return f"`{kind}`" + (f" ({', '.join(f'`{e}`' for e in enum)})" if enum else "")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _operation(
    path: str, method: str, op: dict[str, Any], shared: list[dict[str, Any]]
) -> list[str]:
    out = [
        f"### {op.get('summary', op['operationId'])}",
        "",
        f"`{method.upper()} {path}` — `{op['operationId']}`",
        "",
    ]
    if op.get("description"):
        out += [op["description"], ""]
    params = [*shared, *op.get("parameters", [])]
    if params:
        out += ["| Parameter | In | Type | Description |", "| --- | --- | --- | --- |"]
        for p in params:
            required = " (required)" if p.get("required") else ""
            out.append(
                f"| `{p['name']}`{required} | {p['in']} | {_name(p.get('schema', {}))} | "
                f"{_cell(p.get('description', ''))} |"
            )
        out.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out += [f"Body ({media}): {_name(content.get('schema', {}))}", ""]
    out += ["| Status | Description | Body |", "| --- | --- | --- |"]
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        shown = ", ".join(_name(c.get("schema", {})) for c in content.values()) or "—"
        out.append(f"| {status} | {_cell(response.get('description', ''))} | {shown} |")
    return [*out, ""]


def render(spec: dict[str, Any]) -> str:
    """The page: operations by tag, then the event payloads, then every schema."""
    out = [
        "# API reference",
        "",
        "Generated from the OpenAPI document the service serves at `/openapi.json` "
        f"(OpenAPI {spec['openapi']}). Authenticate with `Authorization: Bearer sk_test_…` "
        "or `sk_live_…`.",
        "",
    ]
    by_tag: dict[str, list[str]] = {}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                tag = item[method].get("tags", ["Other"])[0]
                by_tag.setdefault(tag, []).extend(_operation(path, method, item[method], shared))
    for tag in spec.get("tags", []):
        if tag["name"] in by_tag:
            out += [
                f"## {tag['name']}",
                "",
                tag.get("description", ""),
                "",
                *by_tag.pop(tag["name"]),
            ]
    for name, lines in by_tag.items():
        out += [f"## {name}", "", *lines]
    out += ["## Event payloads", "", "What a webhook delivery carries, per event type.", ""]
    for event, item in spec.get("webhooks", {}).items():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        out += [f"- `{event}`: {_name(schema)}"]
    out += ["", "## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        out += [
            f"### {name} {{#schema-{name.lower()}}}",
            "",
            "```json",
            json.dumps(schema, indent=2, ensure_ascii=False),
            "```",
            "",
        ]
    return "\n".join(out)
