"""The fake Meta's test controls, for the organisation whose test objects they touch:
``POST /_sandbox/inbound`` (a customer writes to a test number) and
``POST /_sandbox/remove-access`` (the business removes the app from a test WABA), and
``POST /_sandbox/profile-posts`` (``{"phone_number_id"}``: the business-profile changes the fake
Meta accepted for a test number, as it received them: what a test checks an update link
sent).

They once answered anyone who knew a Meta id; now the caller proves ownership with the
organisation's test key (``Authorization: Bearer sk_test_...``): no key is a 401, a live
key a 403, and another organisation's number or WABA a 404 (nothing says it exists).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api.deps import authorized
from edge_onboard.core import validation as v
from edge_onboard.core.errors import ApiError, not_found
from edge_onboard.core.responses import JSONResponse

if TYPE_CHECKING:
    from edge_onboard.api.auth import Principal
    from edge_onboard.api.deps import ApiServices

META_ID = re.compile(r"^[0-9]{1,30}\Z")
SENDER = re.compile(r"^[0-9]{6,20}\Z")


async def _test_caller(request: Request) -> tuple[ApiServices, Principal, dict[str, Any]]:
    services, principal = await authorized(request)
    if principal.livemode:
        raise ApiError(
            403,
            "test_mode_only",
            "The sandbox's controls act on test objects only: use a test key (sk_test_...).",
        )
    body = v.json_object(request, await v.read_body(request))
    return services, principal, body


def _required(
    body: dict[str, Any], name: str, *, max_length: int, pattern: re.Pattern[str] | None = None
) -> str:
    value = v.string(
        body, name, min_length=1, max_length=max_length, required=True, pattern=pattern
    )
    assert value is not None  # required: missing is a 400
    return value


async def inbound(request: Request) -> Response:
    """A customer writes ``text`` from ``from`` to the caller's test number
    ``phone_number_id``: the fake Meta's ``messages`` webhook follows."""
    services, principal, body = await _test_caller(request)
    v.reject_unknown(body, ("phone_number_id", "from", "text"))
    phone_id = _required(body, "phone_number_id", max_length=30, pattern=META_ID)
    sender = _required(body, "from", max_length=20, pattern=SENDER)
    text = _required(body, "text", max_length=4096)
    owned = await services.storage.find_phone_by_meta_id(principal.org_id, phone_id)
    if owned is None or owned.livemode:
        raise not_found("test phone number", phone_id, param="phone_number_id")
    if not await services.sandbox.write_in(phone_id, sender, text):
        raise not_found("test phone number", phone_id, param="phone_number_id")
    return JSONResponse({"queued": True}, status_code=202)


async def remove_access(request: Request) -> Response:
    """The business removes the app from the caller's test WABA ``waba_id``: the fake
    Meta's ``PARTNER_REMOVED`` webhook follows."""
    services, principal, body = await _test_caller(request)
    v.reject_unknown(body, ("waba_id",))
    waba_id = _required(body, "waba_id", max_length=30, pattern=META_ID)
    wabas = await services.storage.wabas_by_meta_id(waba_id)
    if not any(w.org_id == principal.org_id and not w.livemode for w in wabas):
        raise not_found("test WABA", waba_id, param="waba_id")
    if not await services.sandbox.revoke(waba_id):
        raise not_found("test WABA", waba_id, param="waba_id")
    return JSONResponse({"queued": True}, status_code=202)


async def profile_posts(request: Request) -> Response:
    """The fields of each ``POST /{phone}/whatsapp_business_profile`` the fake Meta (this
    process's) accepted for the caller's test number ``phone_number_id``, oldest first. A
    POST like the other controls (``GET /_sandbox/{name}`` is the fake's static files)."""
    services, principal, body = await _test_caller(request)
    v.reject_unknown(body, ("phone_number_id",))
    phone_id = _required(body, "phone_number_id", max_length=30, pattern=META_ID)
    owned = await services.storage.find_phone_by_meta_id(principal.org_id, phone_id)
    if owned is None or owned.livemode:
        raise not_found("test phone number", phone_id, param="phone_number_id")
    posts = [fields for meta_id, fields in services.sandbox.profile_posts if meta_id == phone_id]
    return JSONResponse({"data": posts})
