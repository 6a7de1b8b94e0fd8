"""``/v1/organization``: the calling key's organisation and its branding.

The organisation is one record for both modes, and its branding is what live end-users
see on every page: any key reads it, only a live key changes it (a test key's write is
403 ``livemode_key_required``; see docs/guides/test-mode.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api.auth import Principal
from edge_onboard.api.deps import ApiServices, authorized
from edge_onboard.core import responses, validation
from edge_onboard.core.errors import ApiError
from edge_onboard.onboarding.branding import check_logo, org_view, parse_patch


async def get_organization(request: Request) -> Response:
    services, principal = await authorized(request)
    org = await services.branding.get(principal.org_id)
    return responses.single(org_view(org, services.settings.public_url))


async def _live(request: Request) -> tuple[ApiServices, Principal]:
    """The caller, when its key is a live one: a test key may not change what live
    end-users see (before the body is read, so nothing of it is even looked at)."""
    services, principal = await authorized(request)
    if not principal.livemode:
        raise ApiError(
            403,
            "livemode_key_required",
            "The organisation's settings are shared by live and test mode and shown on "
            "live pages: change them with a live key (sk_live_...). A test key can read them.",
        )
    return services, principal


async def update_organization(request: Request) -> Response:
    services, principal = await _live(request)
    body = validation.json_object(request, await validation.read_body(request))
    org = await services.branding.update(principal.org_id, parse_patch(body))
    return responses.single(org_view(org, services.settings.public_url))


async def put_logo(request: Request) -> Response:
    """The logo's bytes as the body, with their Content-Type (PNG, JPEG or WebP)."""
    services, principal = await _live(request)
    data = await validation.read_body(request)
    media_type = check_logo(data, request.headers.get("content-type"))
    org = await services.branding.set_logo(principal.org_id, data, media_type)
    return responses.single(org_view(org, services.settings.public_url))


async def delete_logo(request: Request) -> Response:
    services, principal = await _live(request)
    org = await services.branding.remove_logo(principal.org_id)
    return responses.single(org_view(org, services.settings.public_url))
