"""The webhook side assembled: the delivery engine over the queue, its sender, and the
service behind the outgoing-webhook routes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import SCHEDULE, DeliveryEngine, Sender
from edge_onboard.webhooks.endpoints import WebhookService
from edge_onboard.webhooks.queue import DeliveryQueue


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookParts:
    sender: Sender
    engine: DeliveryEngine
    webhooks: WebhookService


def assemble(
    settings: Settings, storage: Storage, clock: Clock, box: SecretBox, queue: DeliveryQueue
) -> WebhookParts:
    sender = Sender(allow_private=settings.webhook_allow_private)
    engine = DeliveryEngine(
        storage=storage,
        queue=queue,
        clock=clock,
        box=box,
        sender=sender,
        schedule=settings.delivery_schedule or SCHEDULE,
        lease=timedelta(seconds=settings.delivery_lease),
    )
    webhooks = WebhookService(
        storage, clock, box, engine, allow_private=settings.webhook_allow_private
    )
    return WebhookParts(sender, engine, webhooks)
