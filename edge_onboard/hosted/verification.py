"""The hosted page's verification step, as the page calls it: ``POST
/signup/{id}/verification/code`` (``{"method": "sms"|"voice", "locale"?}``) and ``…/verify``
(``{"code"}``), each with the pass the callback gave that page (header ``X-Signup-Pass``).

Same origin only, the public budget per address, then a budget per link once the pass
holds. Answers have the callback's shape: ``{"status", …}`` or ``{"status": "error",
"redirectUrl": null, "error": {"code", "message"}}`` with ``Retry-After`` on a 429.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from edge_onboard.core import validation
from edge_onboard.core.errors import ApiError
from edge_onboard.core.responses import JSONResponse
from edge_onboard.hosted.deps import get_services, limit_public
from edge_onboard.hosted.routes import cross_origin, page_error
from edge_onboard.onboarding.page_verification import HEADER, LINK_LIMIT
from edge_onboard.storage import OnboardingLink, StorageError

log = logging.getLogger("edge_onboard.hosted.verification")
Step = Callable[[OnboardingLink, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _answer(request: Request, pick: Callable[[Any], Step]) -> Response:
    services = get_services(request)
    if cross_origin(request):
        return page_error(403, "cross_origin", "Cross-origin requests are not accepted.")
    try:
        await limit_public(request, services)
        raw = await validation.read_body(request)
        body = validation.json_object(request, raw)
        steps = services.page_verification
        link = await steps.allowed(request.path_params["link_id"], request.headers.get(HEADER))
        await services.limiter.check(f"pv:{link.id}", LINK_LIMIT, "for this link")
        result = await pick(steps)(link, body)
    except ApiError as exc:
        return page_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    except ClientDisconnect:
        raise
    except StorageError as exc:
        log.error("verification: storage unavailable: %s", exc)
        return page_error(
            503,
            "storage_unavailable",
            "We could not save this right now; please try again.",
            {"Retry-After": "1"},
        )
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


async def send_code(request: Request) -> Response:
    """Meta sends the code by SMS or voice call."""
    return await _answer(request, lambda steps: steps.request_code)


async def check_code(request: Request) -> Response:
    """The code back: verified, then registered; the answer says where the page goes."""
    return await _answer(request, lambda steps: steps.verify)
