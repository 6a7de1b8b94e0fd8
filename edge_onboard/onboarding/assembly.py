"""The onboarding side assembled: links, the signup's completion, phones, WABAs,
verification, recovery, sending and branding, over one store and one Meta per mode."""

from __future__ import annotations

import dataclasses

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.hot import HotCache
from edge_onboard.meta.modes import MetaModes
from edge_onboard.meta.sandbox import SYSTEM_USER_TOKEN as SANDBOX_SYSTEM_USER_TOKEN
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
from edge_onboard.webhooks.endpoints import WebhookService


@dataclasses.dataclass(frozen=True, slots=True)
class Onboarding:
    links: LinkService
    phones: PhoneService
    completion: CompletionService
    verification: PhoneVerification
    page_verification: PageVerification
    profiles: ProfileService
    wabas: WabaService
    messages: MessageService
    branding: Branding
    recovery: Recovery
    updates: UpdateService


def assemble(
    settings: Settings,
    storage: Storage,
    clock: Clock,
    box: SecretBox,
    cache: HotCache,
    meta: MetaModes,
    webhooks: WebhookService,
) -> Onboarding:
    links = LinkService(storage, clock, box, settings.public_url, cache)
    phones = PhoneService(storage, clock, box, meta)
    completion = CompletionService(
        storage=storage,
        clock=clock,
        box=box,
        links=links,
        settings=settings,
        meta=meta,
        webhooks=webhooks,
    )
    system_token = settings.meta_system_user_token
    recovery = Recovery(
        storage=storage,
        clock=clock,
        settings=settings,
        completion=completion,
        links=links,
        webhooks=webhooks,
        meta=meta,
        system_user_token=(
            system_token.reveal()
            if system_token
            else SANDBOX_SYSTEM_USER_TOKEN
            if settings.sandbox
            else None
        ),
        test_system_user_token=SANDBOX_SYSTEM_USER_TOKEN,
    )
    verification = PhoneVerification(storage, clock, box, phones, links, webhooks, meta)
    profiles = ProfileService(storage, box, phones, meta)
    updates = UpdateService(
        storage=storage,
        clock=clock,
        box=box,
        links=links,
        settings=settings,
        meta=meta,
        webhooks=webhooks,
        profiles=profiles,
        verify_token=completion.verify_token,
    )
    completion.update_signup = updates.signup
    return Onboarding(
        links=links,
        phones=phones,
        completion=completion,
        verification=verification,
        page_verification=PageVerification(verification, links, box, clock),
        profiles=profiles,
        wabas=WabaService(storage, clock, box, settings, webhooks, meta, completion.verify_token),
        messages=MessageService(storage, box, phones, meta),
        branding=Branding(storage, clock, cache),
        recovery=recovery,
        updates=updates,
    )
