"""What the public routes read from the running service: the composition's ``Services``
seen through this area's needs, so the routes never import the composition; and the
per-client budgets of the public pages and of Meta's webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from starlette.requests import Request

from edge_onboard.core.ratelimit import Limit

if TYPE_CHECKING:
    from edge_onboard.config import Settings
    from edge_onboard.core.admission import Admission
    from edge_onboard.core.clock import Clock
    from edge_onboard.core.crypto import SecretBox
    from edge_onboard.core.ratelimit import RateLimiter
    from edge_onboard.meta.inbound import InboundService
    from edge_onboard.meta.modes import MetaModes
    from edge_onboard.onboarding.branding import Branding
    from edge_onboard.onboarding.completion import CompletionService
    from edge_onboard.onboarding.links import LinkService
    from edge_onboard.onboarding.page_verification import PageVerification
    from edge_onboard.onboarding.phones import PhoneService
    from edge_onboard.onboarding.recovery import Recovery
    from edge_onboard.onboarding.updates import UpdateService
    from edge_onboard.storage import Storage
    from edge_onboard.webhooks.endpoints import WebhookService


class HostedServices(Protocol):
    """The services the public routes use (the composition's ``Services`` has them all)."""

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
    def completion(self) -> CompletionService: ...
    @property
    def page_verification(self) -> PageVerification: ...
    @property
    def webhooks(self) -> WebhookService: ...
    @property
    def inbound(self) -> InboundService: ...
    @property
    def branding(self) -> Branding: ...
    @property
    def limiter(self) -> RateLimiter: ...
    @property
    def meta(self) -> MetaModes: ...
    @property
    def recovery(self) -> Recovery | None: ...
    @property
    def updates(self) -> UpdateService | None: ...
    @property
    def signups(self) -> Admission: ...


def get_services(request: Request) -> HostedServices:
    return cast("HostedServices", request.app.state.services)


async def limit_public(request: Request, services: HostedServices) -> None:
    """The per-client budget of the public pages (/signup/*)."""
    rate = services.settings.rate_limit_public
    client = request.scope.get("client")  # request.client.host, without its Address
    host = client[0] if client else "unknown"
    await services.limiter.check(f"ip:{host}", Limit.per_second(rate), "from this address")


async def limit_inbound(request: Request, services: HostedServices) -> None:
    """The per-client budget of Meta's webhook endpoints: far above what Meta sends
    from one address, and Meta retries a 429 later, so nothing it sends is lost."""
    rate = services.settings.rate_limit_inbound
    client = request.client.host if request.client else "unknown"
    await services.limiter.check(f"in:{client}", Limit.per_second(rate), "from this address")
