"""``/v1/organization``: the calling key's organisation and its branding."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api.deps import authorized
from edge_onboard.core import responses, validation
from edge_onboard.onboarding.branding import check_logo, org_view, parse_patch


async def get_organization(request: Request) -> Response:
    services, principal = await authorized(request)
    org = await services.branding.get(principal.org_id)
    return responses.single(org_view(org, services.settings.public_url))


async def update_organization(request: Request) -> Response:
    services, principal = await authorized(request)
    body = validation.json_object(request, await validation.read_body(request))
    org = await services.branding.update(principal.org_id, parse_patch(body))
    return responses.single(org_view(org, services.settings.public_url))


async def put_logo(request: Request) -> Response:
    """The logo's bytes as the body, with their Content-Type (PNG, JPEG or WebP)."""
    services, principal = await authorized(request)
    data = await validation.read_body(request)
    media_type = check_logo(data, request.headers.get("content-type"))
    org = await services.branding.set_logo(principal.org_id, data, media_type)
    return responses.single(org_view(org, services.settings.public_url))


async def delete_logo(request: Request) -> Response:
    services, principal = await authorized(request)
    org = await services.branding.remove_logo(principal.org_id)
    return responses.single(org_view(org, services.settings.public_url))
