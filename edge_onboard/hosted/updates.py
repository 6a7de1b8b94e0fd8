"""An update link's page, as it calls the server (edge_onboard/onboarding/updates.py):
``POST /signup/{id}/update`` (the steps the number needs now, and the page's pass) and
``POST /signup/{id}/update/finish`` (``{"profile"?: {fields changed}}``, with the pass in
``X-Signup-Pass``: the profile sent to Meta, then the link completed).

Guarded like the verification step: same origin only, the public budget per address,
then a budget per link once the pass holds. Answers have the callback's shape:
``{"status", …}`` or ``{"status": "error", "redirectUrl": null, "error": {"code",
"message", "param"?}}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core import validation
from edge_onboard.core.errors import ApiError
from edge_onboard.hosted.deps import HostedServices
from edge_onboard.hosted.routes import page_call
from edge_onboard.onboarding.page_verification import LINK_LIMIT
from edge_onboard.onboarding.updates import HEADER, UpdateService


async def start(request: Request) -> Response:
    """The steps the link's number needs now, and the pass for the rest."""

    async def work(services: HostedServices) -> dict[str, Any]:
        await validation.read_body(request)  # no parameters
        return await _updates(services).start(request.path_params["link_id"])

    return await page_call(request, work, "update link")


async def finish(request: Request) -> Response:
    """The profile fields changed, to Meta; then the link is completed, once."""

    async def work(services: HostedServices) -> dict[str, Any]:
        body = validation.json_object(request, await validation.read_body(request))
        updates = _updates(services)
        link = await updates.allowed(request.path_params["link_id"], request.headers.get(HEADER))
        await services.limiter.check(f"pu:{link.id}", LINK_LIMIT, "for this link")
        return await updates.finish(link, body)

    return await page_call(request, work, "update link")


def _updates(services: HostedServices) -> UpdateService:
    if services.updates is None:
        raise ApiError(503, "internal_error", "Update links are not set up.")
    return services.updates
