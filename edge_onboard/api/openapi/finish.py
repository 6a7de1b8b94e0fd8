"""The last pass over the OpenAPI document: what every operation gets, whoever wrote it."""

from __future__ import annotations

from edge_onboard.api.openapi import event_schemas, tags
from edge_onboard.api.openapi._common import METHODS, Schema
from edge_onboard.api.openapi.descriptions import DESCRIPTIONS
from edge_onboard.api.openapi.headers import HEADERS, with_headers


def finish(spec: Schema) -> Schema:
    """``spec`` with the top-level tags and a license, every operation tagged (and
    described, where DESCRIPTIONS knows it), the response headers on every response, and
    the event payloads' schemas (which the ``webhooks`` reference) in components."""
    components = spec["components"]
    return {
        **spec,
        "info": {"license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}, **spec["info"]},
        "tags": [*spec.get("tags", ()), *tags.declared(_used(spec))],
        "components": {
            **components,
            "schemas": {**components["schemas"], **event_schemas.components()},
            "headers": {**components.get("headers", {}), **HEADERS},
        },
        "webhooks": tags.tagged(spec.get("webhooks", {}), tags.WEBHOOKS_TAG),
        "paths": with_headers(tags.tagged(_described(spec["paths"]))),
    }


def _used(spec: Schema) -> set[str]:
    """The tags the document's operations end up with (an internal tag only when the
    internal routes are in)."""
    paths = tags.tagged(spec["paths"])
    return {tags.WEBHOOKS_TAG} | {
        tag
        for item in paths.values()
        for method, operation in item.items()
        if method in METHODS
        for tag in operation.get("tags", ())
    }


def _described(paths: Schema) -> Schema:
    """``paths`` with the description DESCRIPTIONS has for an operation without one."""
    return {
        path: {
            method: (
                {**operation, "description": DESCRIPTIONS[operation["operationId"]]}
                if method in METHODS
                and "description" not in operation
                and operation.get("operationId") in DESCRIPTIONS
                else operation
            )
            for method, operation in item.items()
        }
        for path, item in paths.items()
    }
