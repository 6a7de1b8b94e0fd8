"""The hosted page's verification step, as the page calls it: ``POST
/signup/{id}/verification/code`` (``{"method": "sms"|"voice", "locale"?}``) and ``…/verify``
(``{"code"}``), each with the pass the callback gave that page (header ``X-Signup-Pass``).

Same origin only, the public budget per address, then a budget per link once the pass
holds. Answers have the callback's shape: ``{"status", …}`` or ``{"status": "error",
"redirectUrl": null, "error": {"code", "message"}}`` with ``Retry-After`` on a 429.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core import validation
from edge_onboard.hosted.deps import HostedServices
from edge_onboard.hosted.routes import page_call
from edge_onboard.onboarding.page_verification import HEADER, LINK_LIMIT
from edge_onboard.storage import OnboardingLink

Step = Callable[[OnboardingLink, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _answer(request: Request, pick: Callable[[Any], Step]) -> Response:
    async def work(services: HostedServices) -> dict[str, Any]:
        body = validation.json_object(request, await validation.read_body(request))
        steps = services.page_verification
        link = await steps.allowed(request.path_params["link_id"], request.headers.get(HEADER))
        await services.limiter.check(f"pv:{link.id}", LINK_LIMIT, "for this link")
        return await pick(steps)(link, body)

    return await page_call(request, work, "verification")


async def send_code(request: Request) -> Response:
    """Meta sends the code by SMS or voice call."""
    return await _answer(request, lambda steps: steps.request_code)


async def check_code(request: Request) -> Response:
    """The code back: verified, then registered; the answer says where the page goes."""
    return await _answer(request, lambda steps: steps.verify)
