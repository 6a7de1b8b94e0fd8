"""The OpenAPI 3.1 description of the public API, served at ``/openapi.json``.

Written by hand so the schema states every validation rule; the test suite runs
schemathesis over it against the live app, which keeps both honest. The parts:
``schemas`` (bodies: the shared shapes, with ``link_schemas``, ``phone_schemas``,
``signup_schemas`` and ``webhook_schemas`` for each kind of object), ``paths`` (/v1
operations), ``public`` (the rest: liveness, readiness and the internal routes),
``events`` (the events API), ``organization``, ``profile`` and ``test_helpers``; the
event payloads come from edge_onboard/api/openapi/event_schemas.py.
"""

from __future__ import annotations

from edge_onboard.api.openapi import event_schemas
from edge_onboard.api.openapi._common import Schema
from edge_onboard.api.openapi.events import events_paths, events_schemas
from edge_onboard.api.openapi.finish import finish
from edge_onboard.api.openapi.organization import organization_paths, organization_schemas
from edge_onboard.api.openapi.paths import api_paths
from edge_onboard.api.openapi.profile import profile_paths, profile_schemas
from edge_onboard.api.openapi.public import internal_paths, service_paths
from edge_onboard.api.openapi.schemas import schemas
from edge_onboard.api.openapi.test_helpers import test_helper_paths, test_helper_schemas

__all__ = ["build_openapi"]


def build_openapi(public_url: str, *, internal: bool = False) -> Schema:
    """The published document (``/openapi.json``): the customer's API. ``internal`` adds
    the routes that are not (the hosted page, its files, Meta's webhooks, the front
    page), which the tests hold the service to as well."""
    paths = {
        **api_paths(),
        **organization_paths(),
        **events_paths(),
        **test_helper_paths(),
        **profile_paths(),
        **service_paths(),
    }
    if internal:
        paths.update(internal_paths())
    spec: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "edge-onboard",
            "version": "1",
            "description": "Hosted WhatsApp Embedded Signup onboarding links.",
        },
        "servers": [{"url": public_url}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sk_live_... or sk_test_...",
                }
            },
            "schemas": {
                **schemas(),
                **organization_schemas(),
                **events_schemas(),
                **test_helper_schemas(),
                **profile_schemas(),
            },
        },
        "webhooks": event_schemas.webhooks(),
        "paths": paths,
    }
    # Tags, response headers and the event payloads' schemas: on every operation and
    # event, including ones added later.
    return finish(spec)
