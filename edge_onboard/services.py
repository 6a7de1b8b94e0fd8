"""What a request handler can reach: settings, storage, clock and the services on top."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request

from edge_onboard.api.auth import FailedLogins
from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.ratelimit import Limit, RateLimiter
from edge_onboard.meta.graph import GraphClient
from edge_onboard.meta.inbound import InboundService
from edge_onboard.onboarding.completion import CompletionService
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.messages import MessageService
from edge_onboard.onboarding.phones import PhoneService
from edge_onboard.onboarding.verification import PhoneVerification
from edge_onboard.onboarding.wabas import WabaService
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import DeliveryEngine
from edge_onboard.webhooks.endpoints import WebhookService

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from edge_onboard.meta.modes import MetaModes
    from edge_onboard.meta.sandbox import SandboxMeta
    from edge_onboard.onboarding.recovery import Recovery


@dataclasses.dataclass(frozen=True, slots=True)
class MetaApp:
    """The Meta app: ids for the hosted page, the secret that signs Meta's webhooks."""

    app_id: str
    config_id: str
    secret: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(slots=True)
class Services:
    settings: Settings
    storage: Storage
    clock: Clock
    box: SecretBox
    links: LinkService
    phones: PhoneService
    completion: CompletionService
    webhooks: WebhookService
    engine: DeliveryEngine
    inbound: InboundService
    messages: MessageService
    verification: PhoneVerification
    wabas: WabaService
    limiter: RateLimiter
    logins: FailedLogins
    # Each mode's Meta: test objects run against the built-in fake (``sandbox``).
    meta: MetaModes
    sandbox: SandboxMeta
    redis: Redis | None = None
    recovery: Recovery | None = None

    @property
    def meta_app(self) -> MetaApp | None:
        """The live mode's Meta app (the fake under EDGE_SANDBOX)."""
        return self.meta.live_app

    @property
    def graph(self) -> GraphClient | None:
        """The live mode's Graph client (the fake's under EDGE_SANDBOX)."""
        return self.meta.live_graph


async def limit_public(request: Request, services: Services) -> None:
    """The per-client budget of the public pages (/signup/*)."""
    rate = services.settings.rate_limit_public
    client = request.client.host if request.client else "unknown"
    await services.limiter.check(f"ip:{client}", Limit.per_second(rate), "from this address")


async def limit_inbound(request: Request, services: Services) -> None:
    """The per-client budget of Meta's webhook endpoints: far above what Meta sends
    from one address, and Meta retries a 429 later, so nothing it sends is lost."""
    rate = services.settings.rate_limit_inbound
    client = request.client.host if request.client else "unknown"
    await services.limiter.check(f"in:{client}", Limit.per_second(rate), "from this address")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
