"""Outgoing webhooks: the API over endpoints and deliveries, and recording events.

``emit`` is how the rest of the service reports something: it fans the event out to
every active endpoint of the organisation subscribed to it (and in scope, for
WABA-scoped ones), writes the event and its deliveries together, then queues them.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid, not_found
from edge_onboard.core.urls import check_webhook_url
from edge_onboard.core.validation import UUID_RE
from edge_onboard.storage import (
    Delivery,
    DeliveryStatus,
    DuplicateError,
    Event,
    OutgoingWebhook,
    Storage,
    WebhookStatus,
)
from edge_onboard.webhooks.catalog import parse_event_types
from edge_onboard.webhooks.delivery import DeliveryEngine, webhook_secret_context

CREATE_FIELDS = frozenset({"url", "events", "wabaId", "secret"})
UPDATE_FIELDS = frozenset({"url", "events", "wabaId", "status"})
ROTATE_FIELDS = frozenset({"secret"})
# How long the secret a rotation replaced keeps signing, beside the new one.
PREVIOUS_SECRET_TTL = timedelta(hours=24)


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64; those bytes
    are the signing key (``delivery.signing_key``), as every Standard Webhooks library
    reads it by default."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_event(
    org_id: str,
    type: str,
    data: dict[str, Any],
    waba_id: str | None,
    clock: Clock,
    *,
    livemode: bool,
) -> Event:
    return Event(
        id="evt_" + uuid.uuid4().hex,
        org_id=org_id,
        type=type,
        data=data,
        created_at=clock(),
        waba_id=waba_id,
        livemode=livemode,
    )


_DELIVERY_IDS = uuid.UUID("5d0c4a52-7f0e-4b8e-9a51-3c1f6b2e8d47")


def plan_deliveries(event: Event, webhooks: Sequence[OutgoingWebhook]) -> list[Delivery]:
    """One pending delivery per endpoint that wants ``event``, due at once: endpoints of
    the event's mode only (a test object's events never reach a live endpoint). A
    delivery's id follows from the event's and the endpoint's: a retried write of the
    same event (Meta's retries) makes the same deliveries, never a second of each."""
    return [
        Delivery(
            id=str(uuid.uuid5(_DELIVERY_IDS, f"{event.id}:{webhook.id}")),
            org_id=event.org_id,
            event_id=event.id,
            webhook_id=webhook.id,
            event_type=event.type,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=event.created_at,
            created_at=event.created_at,
            updated_at=event.created_at,
            livemode=event.livemode,
        )
        for webhook in webhooks
        if webhook.livemode == event.livemode and webhook.wants(event.type, event.waba_id)
    ]


def _secret(body: dict[str, Any]) -> str:
    """The customer's ``secret`` (any 16-256 characters), else a generated ``whsec_`` one."""
    return v.string(body, "secret", min_length=16, max_length=256) or generate_webhook_secret()


def webhook_view(webhook: OutgoingWebhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "wabaId": webhook.waba_id,
        "status": webhook.status.value,
        "createdAt": isoformat(webhook.created_at),
        "livemode": webhook.livemode,
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "eventId": delivery.event_id,
        "event": delivery.event_type,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "nextAttemptAt": isoformat(delivery.next_attempt_at),
        "lastAttemptAt": isoformat(delivery.last_attempt_at),
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error,
        "createdAt": isoformat(delivery.created_at),
        "attemptLog": delivery.attempt_log,
        "livemode": delivery.livemode,
    }


class WebhookService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        engine: DeliveryEngine,
        *,
        allow_private: bool,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.engine = engine
        self.allow_private = allow_private

    def build(
        self,
        org_id: str,
        url: str,
        events: list[str],
        secret: str,
        *,
        waba_id: str | None = None,
        onboarding_link_id: str | None = None,
        livemode: bool,
    ) -> OutgoingWebhook:
        now = self.clock()
        webhook_id = str(uuid.uuid4())
        return OutgoingWebhook(
            id=webhook_id,
            org_id=org_id,
            url=url,
            secret_enc=self.box.encrypt(secret, context=webhook_secret_context(webhook_id)),
            events=events,
            status=WebhookStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            waba_id=waba_id,
            onboarding_link_id=onboarding_link_id,
            livemode=livemode,
        )

    async def _waba(self, org_id: str, value: Any, livemode: bool) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not UUID_RE.match(value):
            raise invalid("'wabaId' must be the id of one of your WABAs.", param="wabaId")
        waba = await self.storage.get_waba(value)
        if waba is None or waba.org_id != org_id or waba.livemode != livemode:
            raise not_found("WABA", value, param="wabaId")
        return value

    async def create(
        self, org_id: str, body: dict[str, Any], *, livemode: bool
    ) -> tuple[OutgoingWebhook, str]:
        v.reject_unknown(body, CREATE_FIELDS)
        if body.get("url") is None:
            raise invalid("Missing required param: url.", param="url", code="parameter_missing")
        url = await check_webhook_url(body["url"], allow_private=self.allow_private, param="url")
        if body.get("events") is None:
            raise invalid(
                "Missing required param: events.", param="events", code="parameter_missing"
            )
        events = parse_event_types(body["events"], "events")
        waba_id = await self._waba(org_id, body.get("wabaId"), livemode)
        secret = _secret(body)
        webhook = self.build(org_id, url, events, secret, waba_id=waba_id, livemode=livemode)
        await self.storage.insert_webhook(webhook)
        return webhook, secret

    async def get(self, org_id: str, webhook_id: str, *, livemode: bool) -> OutgoingWebhook:
        webhook = await self.storage.get_webhook(webhook_id) if UUID_RE.match(webhook_id) else None
        if (
            webhook is None
            or webhook.org_id != org_id
            or webhook.livemode != livemode
            or webhook.deleted_at is not None
        ):
            raise not_found("outgoing webhook", webhook_id, param="id")
        return webhook

    async def update(
        self, org_id: str, webhook_id: str, body: dict[str, Any], *, livemode: bool
    ) -> OutgoingWebhook:
        await self.get(org_id, webhook_id, livemode=livemode)
        v.reject_unknown(body, UPDATE_FIELDS)
        changes: dict[str, Any] = {}
        if "url" in body:
            changes["url"] = await check_webhook_url(
                body["url"], allow_private=self.allow_private, param="url"
            )
        if "events" in body:
            changes["events"] = parse_event_types(body["events"], "events")
        if "wabaId" in body:
            changes["waba_id"] = await self._waba(org_id, body["wabaId"], livemode)
        if "status" in body:
            status = body["status"]
            if status not in {s.value for s in WebhookStatus}:
                raise invalid("'status' must be active or disabled.", param="status")
            changes["status"] = WebhookStatus(status)
            changes["disabled_reason"] = None if status == "active" else "Disabled through the API."
        changes["updated_at"] = self.clock()
        updated = await self.storage.update_webhook(org_id, webhook_id, changes)
        self.engine.forget_webhook(webhook_id)  # this process's engine sees it at once
        if updated is None:
            raise not_found("outgoing webhook", webhook_id, param="id")
        return updated

    async def rotate_secret(
        self, org_id: str, webhook_id: str, body: dict[str, Any], *, livemode: bool
    ) -> tuple[OutgoingWebhook, str]:
        """A new secret (``secret`` in the body, else generated); the one it replaces keeps
        signing beside it for ``PREVIOUS_SECRET_TTL``, and one rotated out before is dropped."""
        webhook = await self.get(org_id, webhook_id, livemode=livemode)
        v.reject_unknown(body, ROTATE_FIELDS)
        secret = _secret(body)
        now = self.clock()
        changes = {
            "secret_enc": self.box.encrypt(secret, context=webhook_secret_context(webhook.id)),
            # Same record, same encryption context: the ciphertext moves as it is.
            "previous_secret_enc": webhook.secret_enc,
            "previous_secret_expires_at": now + PREVIOUS_SECRET_TTL,
            "updated_at": now,
        }
        updated = await self.storage.update_webhook(
            org_id, webhook.id, changes, expect_secret_enc=webhook.secret_enc
        )
        self.engine.forget_webhook(webhook.id)
        if updated is None:
            await self.get(org_id, webhook_id, livemode=livemode)  # deleted meanwhile: 404
            # Another rotation won the race: the secret made here would never sign.
            raise ApiError(
                409,
                "secret_rotation_conflict",
                "Another request rotated the secret at the same time; rotate again "
                "(with a new Idempotency-Key) for a secret that signs.",
            )
        return updated, secret

    async def delete(self, org_id: str, webhook_id: str, *, livemode: bool) -> None:
        await self.get(org_id, webhook_id, livemode=livemode)
        now = self.clock()
        deleted = await self.storage.update_webhook(
            org_id, webhook_id, {"deleted_at": now, "updated_at": now}
        )
        self.engine.forget_webhook(webhook_id)
        if deleted is None:
            raise not_found("outgoing webhook", webhook_id, param="id")

    async def retry(self, org_id: str, delivery_id: str, *, livemode: bool) -> Delivery:
        delivery = (
            await self.storage.get_delivery(delivery_id) if UUID_RE.match(delivery_id) else None
        )
        if delivery is None or delivery.org_id != org_id or delivery.livemode != livemode:
            raise not_found("webhook delivery", delivery_id, param="id")
        webhook = await self.get(org_id, delivery.webhook_id, livemode=livemode)
        if webhook.status is not WebhookStatus.ACTIVE:
            raise ApiError(
                409,
                "webhook_disabled",
                "The endpoint is disabled; enable it (PATCH status=active) first.",
            )
        now = self.clock()
        updated = await self.storage.update_delivery(
            delivery.id,
            {"status": DeliveryStatus.PENDING, "next_attempt_at": now, "updated_at": now},
        )
        if updated is None:  # removed meanwhile (its event passed the retention)
            raise not_found("webhook delivery", delivery_id, param="id")
        await self.engine.dispatch([updated])
        return updated

    async def plan(
        self,
        org_id: str,
        type: str,
        data: dict[str, Any],
        *,
        waba_id: str | None = None,
        livemode: bool,
    ) -> tuple[Event, list[Delivery]]:
        """An event and its deliveries, for a caller that writes them with its change."""
        event = new_event(org_id, type, data, waba_id, self.clock, livemode=livemode)
        webhooks = await self.storage.active_webhooks(org_id, livemode=livemode)
        return event, plan_deliveries(event, webhooks)

    async def emit(
        self,
        org_id: str,
        type: str,
        data: dict[str, Any],
        *,
        waba_id: str | None = None,
        event_id: str | None = None,
        livemode: bool,
    ) -> Event | None:
        """Record an event with its deliveries, then queue them. With ``event_id`` (derived
        from what it reports), a second emit of the same thing records nothing: None."""
        event = new_event(org_id, type, data, waba_id, self.clock, livemode=livemode)
        if event_id is not None:
            event.id = event_id
        webhooks = await self.storage.active_webhooks(org_id, livemode=livemode)
        deliveries = plan_deliveries(event, webhooks)
        try:
            await self.storage.record_event(event, deliveries)
        except DuplicateError:
            return None
        await self.engine.dispatch(deliveries)
        return event
