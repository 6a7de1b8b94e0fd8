"""What the API's routes read from the running service: the composition's ``Services``
seen through this area's needs, so the routes never import the composition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api.auth import Principal, authenticate
from edge_onboard.api.idempotency import run_idempotent
from edge_onboard.core import responses, validation
from edge_onboard.core.ratelimit import Limit
from edge_onboard.core.region_status import RegionStatus
from edge_onboard.core.responses import JSONResponse

if TYPE_CHECKING:
    from edge_onboard.api.auth import FailedLogins
    from edge_onboard.config import Settings
    from edge_onboard.core.clock import Clock
    from edge_onboard.core.crypto import SecretBox
    from edge_onboard.core.ratelimit import RateLimiter
    from edge_onboard.meta.modes import MetaModes
    from edge_onboard.meta.sandbox import SandboxMeta
    from edge_onboard.onboarding.branding import Branding
    from edge_onboard.onboarding.links import LinkService
    from edge_onboard.onboarding.messages import MessageService
    from edge_onboard.onboarding.phones import PhoneService
    from edge_onboard.onboarding.recovery import Recovery
    from edge_onboard.onboarding.verification import PhoneVerification
    from edge_onboard.onboarding.wabas import WabaService
    from edge_onboard.storage import Storage
    from edge_onboard.webhooks.delivery import DeliveryEngine
    from edge_onboard.webhooks.endpoints import WebhookService


class ApiServices(Protocol):
    """The services the ``/v1`` routes use (the composition's ``Services`` has them all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def box(self) -> SecretBox: ...
    @property
    def links(self) -> LinkService: ...
    @property
    def phones(self) -> PhoneService: ...
    @property
    def webhooks(self) -> WebhookService: ...
    @property
    def engine(self) -> DeliveryEngine: ...
    @property
    def messages(self) -> MessageService: ...
    @property
    def verification(self) -> PhoneVerification: ...
    @property
    def wabas(self) -> WabaService: ...
    @property
    def branding(self) -> Branding: ...
    @property
    def limiter(self) -> RateLimiter: ...
    @property
    def logins(self) -> FailedLogins: ...
    @property
    def meta(self) -> MetaModes: ...
    @property
    def sandbox(self) -> SandboxMeta: ...
    @property
    def redis(self) -> Any: ...
    @property
    def recovery(self) -> Recovery | None: ...
    @property
    def region(self) -> RegionStatus | None: ...


def get_services(request: Request) -> ApiServices:
    return cast("ApiServices", request.app.state.services)


async def authorized(request: Request) -> tuple[ApiServices, Principal]:
    """The caller's key checked (401 otherwise) and within its rate limit (429)."""
    services = get_services(request)
    principal = await authenticate(request, services.storage, services.links.cache, services.logins)
    rate = services.settings.rate_limit_api
    await services.limiter.check(
        f"key:{principal.key_id}", Limit.per_second(rate), "for this API key"
    )
    return services, principal


Create = Callable[[ApiServices, Principal, dict[str, Any]], Awaitable[dict[str, Any]]]


async def create(request: Request, make: Create, *, status_code: int = 201) -> Response:
    """A POST that creates (or does) something: authenticated, JSON body,
    ``Idempotency-Key`` (a retry gets the first answer, the action happens once)."""
    services, principal = await authorized(request)
    raw = await validation.read_body(request)

    async def handler() -> JSONResponse:
        body = validation.json_object(request, raw)
        return responses.single(await make(services, principal, body), status_code=status_code)

    return await run_idempotent(
        request,
        storage=services.storage,
        clock=services.clock,
        box=services.box,
        org_id=principal.org_id,
        livemode=principal.livemode,
        body=raw,
        handler=handler,
    )
