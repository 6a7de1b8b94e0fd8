"""``/v1/phones/{id}/profile``: a number's WhatsApp business profile, and its photo."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api.deps import authorized
from edge_onboard.core import responses, validation


async def get_profile(request: Request) -> Response:
    services, principal = await authorized(request)
    profile = await services.profiles.get(
        principal.org_id, request.path_params["phone_id"], livemode=principal.livemode
    )
    return responses.single(profile)


async def update_profile(request: Request) -> Response:
    """Change the fields given; Meta's limits are checked before Meta is called."""
    services, principal = await authorized(request)
    body = validation.json_object(request, await validation.read_body(request))
    profile = await services.profiles.update(
        principal.org_id, request.path_params["phone_id"], body, livemode=principal.livemode
    )
    return responses.single(profile)


async def put_photo(request: Request) -> Response:
    """The photo's bytes as the body, with their Content-Type (JPEG or PNG, square)."""
    services, principal = await authorized(request)
    data = await validation.read_body(request)
    profile = await services.profiles.set_photo(
        principal.org_id,
        request.path_params["phone_id"],
        data,
        request.headers.get("content-type"),
        livemode=principal.livemode,
    )
    return responses.single(profile)
