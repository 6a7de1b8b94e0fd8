"""What a request handler can reach: settings, storage, clock and every area's services.

The composition's own record: built in ``app.create_app``'s lifespan, kept on the app's
state. The areas never import it; each reads it through a protocol of its own needs
(``api.deps.ApiServices``, ``hosted.deps.HostedServices``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from edge_onboard.api.auth import FailedLogins
from edge_onboard.config import Settings
from edge_onboard.core.admission import Admission
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.ratelimit import RateLimiter
from edge_onboard.core.region_status import RegionStatus
from edge_onboard.meta.graph import GraphClient
from edge_onboard.meta.inbound import InboundService
from edge_onboard.meta.modes import MetaApp, MetaModes
from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.onboarding.branding import Branding
from edge_onboard.onboarding.completion import CompletionService
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.messages import MessageService
from edge_onboard.onboarding.page_verification import PageVerification
from edge_onboard.onboarding.phones import PhoneService
from edge_onboard.onboarding.profile import ProfileService
from edge_onboard.onboarding.recovery import Recovery
from edge_onboard.onboarding.updates import UpdateService
from edge_onboard.onboarding.verification import PhoneVerification
from edge_onboard.onboarding.wabas import WabaService
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import DeliveryEngine
from edge_onboard.webhooks.endpoints import WebhookService

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from edge_onboard.api.deps import ApiServices
    from edge_onboard.hosted.deps import HostedServices


# A signup callback makes a dozen sequential store and Graph calls: this many at once per
# process keeps them well inside MongoDB's connection pool (100) and its 5 s deadlines.
# One that finds no turn within SIGNUP_WAIT seconds is refused before its single-use code
# is spent (Meta's code lives 30 s; the page posts it again after a second).
SIGNUP_SLOTS = 32
SIGNUP_WAIT = 8.0


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
    page_verification: PageVerification
    profiles: ProfileService
    wabas: WabaService
    branding: Branding
    limiter: RateLimiter
    logins: FailedLogins
    # Each mode's Meta: test objects run against the built-in fake (``sandbox``).
    meta: MetaModes
    sandbox: SandboxMeta
    redis: Redis | None = None
    recovery: Recovery | None = None
    updates: UpdateService | None = None
    region: RegionStatus | None = None
    # Signup callbacks at a time in this process, and how long one waits for its turn.
    signups: Admission = dataclasses.field(
        default_factory=lambda: Admission(SIGNUP_SLOTS, SIGNUP_WAIT)
    )

    @property
    def meta_app(self) -> MetaApp | None:
        """The live mode's Meta app (the fake under EDGE_SANDBOX)."""
        return self.meta.live_app

    @property
    def graph(self) -> GraphClient | None:
        """The live mode's Graph client (the fake's under EDGE_SANDBOX)."""
        return self.meta.live_graph

    def faces(self) -> tuple[ApiServices, HostedServices]:
        """The areas' views of this record; mypy checks here that it has what each reads."""
        return self, self
