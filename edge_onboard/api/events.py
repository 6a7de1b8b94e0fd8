"""HTTP endpoints of the events API (edge_onboard/webhooks/event_log.py says what they do)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api import pagination
from edge_onboard.api.auth import Principal
from edge_onboard.api.deps import ApiServices, authorized, create
from edge_onboard.core import responses
from edge_onboard.webhooks.event_log import FILTERS, EventLog, parse_filter


def event_log(services: ApiServices) -> EventLog:
    retention = timedelta(days=services.settings.event_retention_days)
    return EventLog(services.storage, services.clock, services.engine, retention)


async def list_events(request: Request) -> Response:
    services, principal = await authorized(request)
    params = pagination.parse(request, filters=FILTERS)
    flt = parse_filter(request.query_params, livemode=principal.livemode)
    events, org_id = event_log(services), principal.org_id
    return await pagination.list_page(
        request,
        lambda window: events.list(org_id, flt, window),
        lambda ident: events.locate(org_id, principal.livemode, ident),
        events.view,
        params,
    )


async def get_event(request: Request) -> Response:
    services, principal = await authorized(request)
    events = event_log(services)
    event = await events.get(principal.org_id, principal.livemode, request.path_params["event_id"])
    return responses.single(events.view(event))


async def recover_webhook(request: Request) -> Response:
    jobs: list[Callable[[], Awaitable[int]]] = []

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        webhook = await services.webhooks.get(
            principal.org_id, request.path_params["webhook_id"], livemode=principal.livemode
        )
        view, job = event_log(services).start_recovery(webhook, body)
        jobs.append(job)
        return view

    response = await create(request, make, status_code=202)
    # After the answer is sent; an Idempotency-Key's replay starts nothing (no job).
    if jobs and response.status_code == 202:
        response.background = BackgroundTask(jobs[0])
    return response
