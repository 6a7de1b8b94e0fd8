"""The storage protocol: typed async primitives every durable backend provides.

Validation, view shaping and timestamps live above this layer (``edge_onboard``);
a backend only stores documents and performs the conditional updates that must not
race (a status change and a delete both guarded by the current status, in the store).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from edge_onboard.storage.models import (
    ApiKey,
    Delivery,
    DeliveryStatus,
    Event,
    IdempotencyRecord,
    InboxItem,
    LinkStatus,
    OnboardingLink,
    Organization,
    OutgoingWebhook,
    PartnerGrant,
    Phone,
    PhoneStatus,
    Waba,
)
from edge_onboard.storage.paging import Key, Page, Window


class StorageError(Exception):
    """The backend failed (unreachable, timed out); the caller answers 503/500."""


class UnsupportedServerError(StorageError):
    """The server answers but cannot serve this service as deployed (a standalone
    MongoDB, which has no transactions); the message says how to fix it."""


class DuplicateError(StorageError):
    """A unique constraint was hit (same id or same unique key)."""


class InvalidRecordError(ValueError):
    """The backend cannot store a value as given (the API answers 400)."""


class UnknownBackendError(ValueError):
    """The storage URL names a scheme no backend handles."""


def shown_status(link: OnboardingLink, now: datetime) -> LinkStatus:
    """A pending link past its expiry is expired to every reader before the sweep stores
    it, unless a completion holds its claim (the claim holder decides)."""
    if (
        link.status is LinkStatus.PENDING
        and link.expires_at <= now
        and (link.claimed_until is None or link.claimed_until <= now)
    ):
        return LinkStatus.EXPIRED
    return link.status


@dataclasses.dataclass(frozen=True, slots=True)
class LinkFilter:
    status: LinkStatus | None = None
    external_id: str | None = None
    # Test-mode links (False) or live ones (True): a list never mixes them.
    livemode: bool = True
    # Reads never write: a pending link past its expiry at ``as_of`` counts as expired
    # (the background sweep stores that later). None: stored statuses as they are.
    as_of: datetime | None = None

    def matches(self, link: OnboardingLink) -> bool:
        """For backends that filter in memory; the database ones say the same in queries."""
        if link.status is LinkStatus.DELETED or link.livemode != self.livemode:
            return False
        if self.external_id is not None and link.external_id != self.external_id:
            return False
        return self.status is None or self.shown_status(link) is self.status

    def shown_status(self, link: OnboardingLink) -> LinkStatus:
        return link.status if self.as_of is None else shown_status(link, self.as_of)


def requeued(recovery_id: str, now: datetime) -> dict[str, Any]:
    """The changes ``requeue_failed`` makes to a failed delivery, in every backend."""
    return {
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": now,
        "updated_at": now,
        "recovery_id": recovery_id,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class EventFilter:
    """Which of an organisation's events a list shows. A new field is one line here, one
    test in ``matches`` and one condition per database backend."""

    # Test or live events (test mode): a list is always of one mode.
    livemode: bool = True
    # Exact event types (the API expands ``*`` patterns against the catalog); None: any.
    types: frozenset[str] | None = None
    # Inclusive bounds on ``created_at``.
    created_gte: datetime | None = None
    created_lte: datetime | None = None

    def matches(self, event: Event) -> bool:
        """For backends that filter in memory; the database ones say the same in queries."""
        if event.livemode != self.livemode:
            return False
        if self.types is not None and event.type not in self.types:
            return False
        if self.created_gte is not None and event.created_at < self.created_gte:
            return False
        return self.created_lte is None or event.created_at <= self.created_lte


@dataclasses.dataclass(frozen=True, slots=True)
class LinkCondition:
    """What must hold in the store for a conditional link update to apply."""

    statuses: Collection[LinkStatus]
    # When set, the link must also not have expired at this moment.
    unexpired_at: datetime | None = None
    # When set, no other completion may hold a live claim at this moment.
    unclaimed_at: datetime | None = None
    # When set, the link's claim must be this one.
    claim_id: str | None = None
    # When true, the hosted page must not have been opened before (opened_at unset).
    unopened: bool = False

    def holds(self, link: OnboardingLink) -> bool:
        """For backends that check inside their own atomic section (memory, SQLite)."""
        if link.status not in self.statuses:
            return False
        if self.unexpired_at is not None and link.expires_at <= self.unexpired_at:
            return False
        if (
            self.unclaimed_at is not None
            and link.claimed_until is not None
            and link.claimed_until > self.unclaimed_at
        ):
            return False
        if self.unopened and link.opened_at is not None:
            return False
        return self.claim_id is None or link.claim_id == self.claim_id


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """Everything a finished signup writes, applied in one transaction or not at all.

    The WABA and the phone are upserted by their Meta ids within the organisation
    (a reconnected number keeps its record id); the link moves to completed only if
    ``claim_id`` still holds its claim.
    """

    org_id: str
    link_id: str
    claim_id: str
    waba: Waba
    # None: the signup finished without a number (Embedded Signup v4 allows it).
    phone: Phone | None
    link_changes: Mapping[str, Any]
    # The outgoing webhook made from the link's webhookUrl, the events and their
    # deliveries (each delivery names its event).
    webhook: OutgoingWebhook | None = None
    events: Sequence[Event] = ()
    deliveries: Sequence[Delivery] = ()

    def deliveries_of(self, event: Event) -> list[Delivery]:
        return [d for d in self.deliveries if d.event_id == event.id]


@dataclasses.dataclass(frozen=True, slots=True)
class Completed:
    link: OnboardingLink
    waba: Waba
    phone: Phone | None


@runtime_checkable
class Storage(Protocol):
    """Durable records. All methods are coroutine functions and safe to call concurrently."""

    async def open(self) -> None:
        """Connect and create or migrate the schema and indexes."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StorageError`` when the backend cannot serve requests."""

    # Organisations
    async def get_or_create_org(self, org: Organization) -> Organization:
        """Insert ``org`` unless one with the same name exists; return the stored one."""

    async def get_org(self, org_id: str) -> Organization | None: ...

    async def update_org(self, org_id: str, changes: Mapping[str, Any]) -> Organization | None:
        """Set the organisation's fields in ``changes``; the updated record, or None when
        there is no such organisation."""

    # API keys
    async def insert_api_key(self, key: ApiKey) -> None: ...

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def find_api_keys(self, id_or_prefix: str) -> list[ApiKey]:
        """Keys whose id equals, or whose prefix starts with, ``id_or_prefix``."""

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Mark the key revoked; False when it was already revoked or is unknown."""

    # Onboarding links
    async def insert_link(self, link: OnboardingLink) -> None: ...

    async def get_link(self, link_id: str) -> OnboardingLink | None:
        """The link whatever its organisation or status (deleted ones included)."""

    async def list_links(
        self, org_id: str, flt: LinkFilter, window: Window
    ) -> Page[OnboardingLink]:
        """A page of visible (not deleted) links, newest first (storage/paging.py)."""

    async def update_link(
        self,
        org_id: str,
        link_id: str,
        condition: LinkCondition,
        changes: Mapping[str, Any],
    ) -> OnboardingLink | None:
        """Atomically apply ``changes`` if ``condition`` holds; the updated link or None."""

    async def expire_due_links(self, now: datetime, limit: int) -> list[OnboardingLink]:
        """Move up to ``limit`` pending, unclaimed links past their expiry (any
        organisation) to expired; the links it moved."""

    async def pending_links_by_session_waba(self, meta_waba_id: str) -> list[OnboardingLink]:
        """Pending links whose page reported this Meta WABA (``session_report``)."""

    async def put_grant(self, grant: PartnerGrant) -> None:
        """Record Meta's PARTNER_ADDED for a WABA, replacing an earlier one."""

    async def open_grants(self, now: datetime, limit: int) -> list[PartnerGrant]:
        """Grants not settled yet and not backing off at ``now``, oldest first."""

    async def update_grant(self, grant_id: str, changes: Mapping[str, Any]) -> None: ...

    async def wabas_by_meta_id(self, meta_waba_id: str) -> list[Waba]:
        """Our records of a Meta WABA (one per organisation that connected it)."""

    async def update_waba(
        self,
        waba_id: str,
        changes: Mapping[str, Any],
        *,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Waba | None:
        """Apply ``changes`` with the event and its deliveries, atomically."""

    async def find_phone_by_meta_id(
        self, org_id: str, meta_phone_number_id: str
    ) -> Phone | None: ...

    async def phones_by_meta_id(self, meta_phone_number_id: str) -> list[Phone]:
        """Every organisation's record of that Meta number (inbound webhooks route by it)."""

    async def complete_link(self, completion: Completion) -> Completed | None:
        """Apply a ``Completion`` atomically; None (and nothing written) if the claim is gone."""

    # Phones and WABAs
    async def get_phone(self, phone_id: str) -> Phone | None: ...

    async def list_phones(self, org_id: str, window: Window, *, livemode: bool) -> Page[Phone]:
        """A page of the organisation's phones of that mode, newest first."""

    async def get_waba(self, waba_id: str) -> Waba | None: ...

    async def list_wabas(self, org_id: str, window: Window, *, livemode: bool) -> Page[Waba]:
        """A page of the organisation's WABAs of that mode, newest first."""

    async def phones_of_wabas(self, waba_ids: Sequence[str]) -> list[Phone]:
        """The phones recorded under these WABAs (our record ids)."""

    async def insert_phone(
        self, phone: Phone, event: Event | None = None, deliveries: Sequence[Delivery] = ()
    ) -> bool:
        """Record a phone found later (a WABA's sync) with its event, atomically; False
        (and nothing written) when the organisation already has that Meta number."""

    async def update_phone(
        self,
        phone_id: str,
        changes: Mapping[str, Any],
        *,
        statuses: Collection[PhoneStatus] | None = None,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Phone | None:
        """Apply ``changes`` when the phone's status is one of ``statuses`` (any when
        None), with the event and its deliveries in the same transaction; the updated
        phone, or None (nothing written) when it is missing or the condition fails."""

    # Outgoing webhooks
    async def insert_webhook(self, webhook: OutgoingWebhook) -> None: ...

    async def get_webhook(self, webhook_id: str) -> OutgoingWebhook | None:
        """The webhook whatever its organisation (deleted ones included)."""

    async def list_webhooks(
        self, org_id: str, window: Window, *, livemode: bool
    ) -> Page[OutgoingWebhook]:
        """A page of the organisation's webhooks of that mode (not deleted), newest first."""

    async def get_webhooks(self, webhook_ids: Collection[str]) -> list[OutgoingWebhook]:
        """The webhooks of these ids that exist (deleted ones included), in no particular
        order: one query (the delivery worker reads a claim's endpoints together)."""

    async def active_webhooks(self, org_id: str, *, livemode: bool) -> list[OutgoingWebhook]:
        """Every active, not deleted webhook of the organisation in that mode."""

    async def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        changes: Mapping[str, Any],
        *,
        expect_secret_enc: str | None = None,
    ) -> OutgoingWebhook | None:
        """Apply ``changes`` to a not-deleted webhook; the updated one or None. With
        ``expect_secret_enc``, only if its secret is still that one (of two rotations
        racing, one wins)."""

    # Events and deliveries
    async def record_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        """Write the event and its deliveries together (one transaction)."""

    async def get_event(self, event_id: str) -> Event | None: ...

    async def list_events(self, org_id: str, flt: EventFilter, window: Window) -> Page[Event]:
        """A page of the organisation's events, newest first: one index range per type."""

    async def delete_events_before(self, before: datetime, limit: int) -> int:
        """Remove up to ``limit`` of the oldest events created before ``before`` (any
        organisation) with their deliveries (those first, so no delivery outlives its
        event); how many events went."""

    async def failed_deliveries(
        self, webhook_id: str, since: datetime, until: datetime, after: Key | None, limit: int
    ) -> list[Delivery]:
        """Up to ``limit`` failed deliveries of the webhook created in ``[since, until)``,
        oldest first by ``(created_at, id)``, after the key ``after``: one index range."""

    async def requeue_failed(
        self, delivery_ids: Collection[str], failed_by: datetime, recovery_id: str, now: datetime
    ) -> list[Delivery]:
        """Make pending again, due at ``now``, each of these deliveries that is still failed
        and was last changed at or before ``failed_by``, marked with ``recovery_id``;
        the ones this call changed (of two racing calls, each delivery goes to one)."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def get_events(self, event_ids: Collection[str]) -> list[Event]:
        """The events of these ids that exist, in no particular order: one query."""

    async def get_deliveries(self, delivery_ids: Collection[str]) -> list[Delivery]:
        """The deliveries of these ids that exist, in no particular order: one query."""

    async def list_deliveries(self, webhook_id: str, window: Window) -> Page[Delivery]:
        """A page of the webhook's deliveries, newest first."""

    async def update_delivery(
        self, delivery_id: str, changes: Mapping[str, Any], *, expect_attempts: int | None = None
    ) -> Delivery | None:
        """Apply ``changes``; with ``expect_attempts``, only if the attempt count still matches
        (two workers racing on one delivery count one attempt, not two)."""

    async def finish_deliveries(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any]]]
    ) -> None:
        """Apply each ``(delivery id, attempts, changes)`` whose attempt count is still
        ``attempts``, together (one round trip); one whose count moved is left as it is
        (another worker recorded that attempt). Raises when the write as a whole fails."""

    async def due_deliveries(self, before: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries due before ``before``, earliest first: the outbox to re-queue."""

    # Meta's inbound: recorded, acknowledged, then processed
    async def put_inbox(self, item: InboxItem) -> bool:
        """Record a verified body (one write); False, and nothing written, when an item of
        that id is there already (a retry of a body not yet processed)."""

    async def claim_inbox(self, now: datetime, until: datetime, limit: int) -> list[InboxItem]:
        """Up to ``limit`` items whose lease lapsed by ``now`` (their process died, or
        failed to process them), oldest lease first, each leased to the caller until
        ``until``: of two racing sweepers, each item goes to one."""

    async def delete_inbox(self, item_id: str) -> None:
        """The item is processed."""

    # Idempotency
    async def claim_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Insert ``record`` unless a live one holds its key: None when claimed, else that one.

        A record whose ``expires_at`` is before ``record.created_at`` is replaced.
        """

    async def complete_idempotency(
        self, org_id: str, key: str, status_code: int, body: bytes
    ) -> None: ...

    async def release_idempotency(self, org_id: str, key: str) -> None:
        """Forget a claim whose request failed, so that the client may retry."""
