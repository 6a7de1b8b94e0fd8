"""In-process backend (``memory://``): for tests and throw-away demos.

Every method runs without awaiting in between its read and its write, so each is
atomic with respect to the others on the event loop.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from edge_onboard.storage.base import (
    Completed,
    Completion,
    DuplicateError,
    EventFilter,
    LinkCondition,
    LinkFilter,
    requeued,
)
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
    WebhookStatus,
)
from edge_onboard.storage.paging import Key, Page, Window, page_of


class MemoryStorage:
    def __init__(self) -> None:
        self._orgs: dict[str, Organization] = {}
        self._keys: dict[str, ApiKey] = {}
        self._links: dict[str, OnboardingLink] = {}
        self._idem: dict[tuple[str, str], IdempotencyRecord] = {}
        self._wabas: dict[str, Waba] = {}
        self._grants: dict[str, PartnerGrant] = {}
        self._phones: dict[str, Phone] = {}
        self._webhooks: dict[str, OutgoingWebhook] = {}
        self._events: dict[str, Event] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._inbox: dict[str, InboxItem] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_or_create_org(self, org: Organization) -> Organization:
        for existing in self._orgs.values():
            if existing.name == org.name:
                return copy.deepcopy(existing)
        self._orgs[org.id] = copy.deepcopy(org)
        return org

    async def get_org(self, org_id: str) -> Organization | None:
        return copy.deepcopy(self._orgs.get(org_id))

    async def update_org(self, org_id: str, changes: Mapping[str, Any]) -> Organization | None:
        org = self._orgs.get(org_id)
        if org is None:
            return None
        self._orgs[org_id] = org = dataclasses.replace(org, **changes)
        return copy.deepcopy(org)

    async def insert_api_key(self, key: ApiKey) -> None:
        if key.id in self._keys or any(k.key_hash == key.key_hash for k in self._keys.values()):
            raise DuplicateError("api key exists")
        self._keys[key.id] = copy.deepcopy(key)

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        for key in self._keys.values():
            if key.key_hash == key_hash:
                return copy.deepcopy(key)
        return None

    async def find_api_keys(self, id_or_prefix: str) -> list[ApiKey]:
        return [
            copy.deepcopy(k)
            for k in self._keys.values()
            if k.id == id_or_prefix or k.prefix.startswith(id_or_prefix)
        ]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        key.revoked_at = at
        return True

    async def insert_link(self, link: OnboardingLink) -> None:
        if link.id in self._links:
            raise DuplicateError(f"link {link.id} exists")
        self._links[link.id] = copy.deepcopy(link)

    async def get_link(self, link_id: str) -> OnboardingLink | None:
        return copy.deepcopy(self._links.get(link_id))

    async def list_links(
        self, org_id: str, flt: LinkFilter, window: Window
    ) -> Page[OnboardingLink]:
        rows = [
            link for link in self._links.values() if link.org_id == org_id and flt.matches(link)
        ]
        return _window(rows, window)

    async def update_link(
        self,
        org_id: str,
        link_id: str,
        condition: LinkCondition,
        changes: Mapping[str, Any],
    ) -> OnboardingLink | None:
        link = self._links.get(link_id)
        if link is None or link.org_id != org_id or not condition.holds(link):
            return None
        updated = dataclasses.replace(link, **copy.deepcopy(dict(changes)))
        self._links[link_id] = updated
        return copy.deepcopy(updated)

    async def expire_due_links(self, now: datetime, limit: int) -> list[OnboardingLink]:
        return self._expire(now, limit)

    def _expire(self, now: datetime, limit: int | None) -> list[OnboardingLink]:
        moved: list[OnboardingLink] = []
        for link in sorted(self._links.values(), key=lambda x: x.expires_at):
            if limit is not None and len(moved) >= limit:
                break
            if (
                link.status is LinkStatus.PENDING
                and link.expires_at <= now
                and (link.claimed_until is None or link.claimed_until <= now)
            ):
                link.status = LinkStatus.EXPIRED
                link.updated_at = now
                moved.append(copy.deepcopy(link))
        return moved

    async def pending_links_by_session_waba(self, meta_waba_id: str) -> list[OnboardingLink]:
        return [
            copy.deepcopy(link)
            for link in self._links.values()
            if link.status is LinkStatus.PENDING
            and (link.session_report or {}).get("waba_id") == meta_waba_id
        ]

    async def put_grant(self, grant: PartnerGrant) -> None:
        self._grants[grant.id] = copy.deepcopy(grant)

    async def open_grants(self, now: datetime, limit: int) -> list[PartnerGrant]:
        rows = [
            g
            for g in self._grants.values()
            if g.closed_at is None and (g.retry_at is None or g.retry_at <= now)
        ]
        rows.sort(key=lambda g: g.received_at)
        return [copy.deepcopy(g) for g in rows[:limit]]

    async def update_grant(self, grant_id: str, changes: Mapping[str, Any]) -> None:
        grant = self._grants.get(grant_id)
        if grant is not None:
            self._grants[grant_id] = dataclasses.replace(grant, **copy.deepcopy(dict(changes)))

    async def wabas_by_meta_id(self, meta_waba_id: str) -> list[Waba]:
        return [copy.deepcopy(w) for w in self._wabas.values() if w.meta_waba_id == meta_waba_id]

    async def update_waba(
        self,
        waba_id: str,
        changes: Mapping[str, Any],
        *,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Waba | None:
        waba = self._wabas.get(waba_id)
        if waba is None:
            return None
        if event is not None:
            self._check_new_event(event, deliveries)
        updated = dataclasses.replace(waba, **copy.deepcopy(dict(changes)))
        self._wabas[waba_id] = updated
        if event is not None:
            self._store_event(event, deliveries)
        return copy.deepcopy(updated)

    async def find_phone_by_meta_id(self, org_id: str, meta_phone_number_id: str) -> Phone | None:
        for phone in self._phones.values():
            if phone.org_id == org_id and phone.meta_phone_number_id == meta_phone_number_id:
                return copy.deepcopy(phone)
        return None

    async def phones_by_meta_id(self, meta_phone_number_id: str) -> list[Phone]:
        return [
            copy.deepcopy(p)
            for p in self._phones.values()
            if p.meta_phone_number_id == meta_phone_number_id
        ]

    async def complete_link(self, completion: Completion) -> Completed | None:
        link = self._links.get(completion.link_id)
        condition = LinkCondition(statuses={LinkStatus.PENDING}, claim_id=completion.claim_id)
        if link is None or link.org_id != completion.org_id or not condition.holds(link):
            return None
        waba = copy.deepcopy(completion.waba)
        for existing in self._wabas.values():
            if existing.org_id == waba.org_id and existing.meta_waba_id == waba.meta_waba_id:
                waba = dataclasses.replace(waba, id=existing.id, created_at=existing.created_at)
        phone = copy.deepcopy(completion.phone)
        if phone is not None:
            known = self._phone_by_meta_id(phone.org_id, phone.meta_phone_number_id)
            if known is not None:
                phone = dataclasses.replace(phone, id=known.id, created_at=known.created_at)
            phone.waba_id = waba.id
        for event in completion.events:
            self._check_new_event(event, completion.deliveries_of(event))
        self._wabas[waba.id] = waba
        if phone is not None:
            self._phones[phone.id] = phone
        changes = dict(completion.link_changes)
        changes.update(phone_number_id=phone.id if phone else None, waba_id=waba.id)
        updated = dataclasses.replace(link, **copy.deepcopy(changes))
        self._links[link.id] = updated
        if completion.webhook is not None:
            self._webhooks[completion.webhook.id] = copy.deepcopy(completion.webhook)
        for event in completion.events:
            self._store_event(event, completion.deliveries_of(event))
        return Completed(copy.deepcopy(updated), copy.deepcopy(waba), copy.deepcopy(phone))

    def _phone_by_meta_id(self, org_id: str, meta_phone_number_id: str) -> Phone | None:
        for known in self._phones.values():
            if known.org_id == org_id and known.meta_phone_number_id == meta_phone_number_id:
                return known
        return None

    async def insert_phone(
        self, phone: Phone, event: Event | None = None, deliveries: Sequence[Delivery] = ()
    ) -> bool:
        if self._phone_by_meta_id(phone.org_id, phone.meta_phone_number_id) is not None:
            return False
        if phone.id in self._phones:
            raise DuplicateError(f"phone {phone.id} exists")
        if event is not None:
            self._check_new_event(event, deliveries)
        self._phones[phone.id] = copy.deepcopy(phone)
        if event is not None:
            self._store_event(event, deliveries)
        return True

    async def update_phone(
        self,
        phone_id: str,
        changes: Mapping[str, Any],
        *,
        statuses: Collection[PhoneStatus] | None = None,
        event: Event | None = None,
        deliveries: Sequence[Delivery] = (),
    ) -> Phone | None:
        phone = self._phones.get(phone_id)
        if phone is None or (statuses is not None and phone.status not in statuses):
            return None
        if event is not None:
            self._check_new_event(event, deliveries)
        updated = dataclasses.replace(phone, **copy.deepcopy(dict(changes)))
        self._phones[phone_id] = updated
        if event is not None:
            self._store_event(event, deliveries)
        return copy.deepcopy(updated)

    async def list_wabas(self, org_id: str, window: Window, *, livemode: bool) -> Page[Waba]:
        rows = [w for w in self._wabas.values() if w.org_id == org_id and w.livemode == livemode]
        return _window(rows, window)

    async def phones_of_wabas(self, waba_ids: Sequence[str]) -> list[Phone]:
        wanted = set(waba_ids)
        return [copy.deepcopy(p) for p in self._phones.values() if p.waba_id in wanted]

    async def get_phone(self, phone_id: str) -> Phone | None:
        return copy.deepcopy(self._phones.get(phone_id))

    async def list_phones(self, org_id: str, window: Window, *, livemode: bool) -> Page[Phone]:
        rows = [p for p in self._phones.values() if p.org_id == org_id and p.livemode == livemode]
        return _window(rows, window)

    async def get_waba(self, waba_id: str) -> Waba | None:
        return copy.deepcopy(self._wabas.get(waba_id))

    async def insert_webhook(self, webhook: OutgoingWebhook) -> None:
        if webhook.id in self._webhooks:
            raise DuplicateError(f"webhook {webhook.id} exists")
        self._webhooks[webhook.id] = copy.deepcopy(webhook)

    async def get_webhook(self, webhook_id: str) -> OutgoingWebhook | None:
        return copy.deepcopy(self._webhooks.get(webhook_id))

    async def get_webhooks(self, webhook_ids: Collection[str]) -> list[OutgoingWebhook]:
        return [copy.deepcopy(self._webhooks[i]) for i in set(webhook_ids) if i in self._webhooks]

    async def list_webhooks(
        self, org_id: str, window: Window, *, livemode: bool
    ) -> Page[OutgoingWebhook]:
        rows = [
            w
            for w in self._webhooks.values()
            if w.org_id == org_id and w.livemode == livemode and not w.deleted_at
        ]
        return _window(rows, window)

    async def active_webhooks(self, org_id: str, *, livemode: bool) -> list[OutgoingWebhook]:
        return [
            copy.deepcopy(w)
            for w in self._webhooks.values()
            if w.org_id == org_id
            and w.livemode == livemode
            and w.status is WebhookStatus.ACTIVE
            and not w.deleted_at
        ]

    async def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        changes: Mapping[str, Any],
        *,
        expect_secret_enc: str | None = None,
    ) -> OutgoingWebhook | None:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None or webhook.org_id != org_id or webhook.deleted_at is not None:
            return None
        if expect_secret_enc is not None and webhook.secret_enc != expect_secret_enc:
            return None
        updated = dataclasses.replace(webhook, **copy.deepcopy(dict(changes)))
        self._webhooks[webhook_id] = updated
        return copy.deepcopy(updated)

    def _check_new_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        if event.id in self._events or any(d.id in self._deliveries for d in deliveries):
            raise DuplicateError(f"event {event.id} exists")

    def _store_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        self._check_new_event(event, deliveries)
        self._events[event.id] = copy.deepcopy(event)
        for delivery in deliveries:
            self._deliveries[delivery.id] = copy.deepcopy(delivery)

    async def record_event(self, event: Event, deliveries: Sequence[Delivery]) -> None:
        self._store_event(event, deliveries)

    async def get_event(self, event_id: str) -> Event | None:
        return copy.deepcopy(self._events.get(event_id))

    async def put_inbox(self, item: InboxItem) -> bool:
        if item.id in self._inbox:
            return False
        self._inbox[item.id] = copy.deepcopy(item)
        return True

    async def claim_inbox(self, now: datetime, until: datetime, limit: int) -> list[InboxItem]:
        lapsed = sorted(
            (i for i in self._inbox.values() if i.lease_until <= now), key=lambda i: i.lease_until
        )[:limit]
        for item in lapsed:
            item.lease_until = until
        return copy.deepcopy(lapsed)

    async def delete_inbox(self, item_id: str) -> None:
        self._inbox.pop(item_id, None)

    async def list_events(self, org_id: str, flt: EventFilter, window: Window) -> Page[Event]:
        rows = [e for e in self._events.values() if e.org_id == org_id and flt.matches(e)]
        return _window(rows, window)

    async def delete_events_before(self, before: datetime, limit: int) -> int:
        old = sorted(
            (e for e in self._events.values() if e.created_at < before),
            key=lambda e: (e.created_at, e.id),
        )[:limit]
        gone = {e.id for e in old}
        for delivery in [d for d in self._deliveries.values() if d.event_id in gone]:
            del self._deliveries[delivery.id]
        for event_id in gone:
            del self._events[event_id]
        return len(gone)

    async def failed_deliveries(
        self, webhook_id: str, since: datetime, until: datetime, after: Key | None, limit: int
    ) -> list[Delivery]:
        rows = sorted(
            (
                d
                for d in self._deliveries.values()
                if d.webhook_id == webhook_id
                and d.status is DeliveryStatus.FAILED
                and since <= d.created_at < until
                and (after is None or (d.created_at, d.id) > after)
            ),
            key=lambda d: (d.created_at, d.id),
        )
        return [copy.deepcopy(d) for d in rows[:limit]]

    async def requeue_failed(
        self, delivery_ids: Collection[str], failed_by: datetime, recovery_id: str, now: datetime
    ) -> list[Delivery]:
        changed: list[Delivery] = []
        for delivery_id in set(delivery_ids):
            delivery = self._deliveries.get(delivery_id)
            if (
                delivery is None
                or delivery.status is not DeliveryStatus.FAILED
                or delivery.updated_at > failed_by
            ):
                continue
            updated = dataclasses.replace(delivery, **requeued(recovery_id, now))
            self._deliveries[delivery_id] = updated
            changed.append(copy.deepcopy(updated))
        return changed

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return copy.deepcopy(self._deliveries.get(delivery_id))

    async def get_events(self, event_ids: Collection[str]) -> list[Event]:
        return [copy.deepcopy(self._events[i]) for i in set(event_ids) if i in self._events]

    async def get_deliveries(self, delivery_ids: Collection[str]) -> list[Delivery]:
        wanted = set(delivery_ids)
        return [copy.deepcopy(self._deliveries[i]) for i in wanted if i in self._deliveries]

    async def list_deliveries(self, webhook_id: str, window: Window) -> Page[Delivery]:
        return _window([d for d in self._deliveries.values() if d.webhook_id == webhook_id], window)

    async def update_delivery(
        self, delivery_id: str, changes: Mapping[str, Any], *, expect_attempts: int | None = None
    ) -> Delivery | None:
        delivery = self._deliveries.get(delivery_id)
        if delivery is None or (
            expect_attempts is not None and delivery.attempts != expect_attempts
        ):
            return None
        updated = dataclasses.replace(delivery, **copy.deepcopy(dict(changes)))
        self._deliveries[delivery_id] = updated
        return copy.deepcopy(updated)

    async def finish_deliveries(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any]]]
    ) -> None:
        for delivery_id, attempts, changes in updates:
            await self.update_delivery(delivery_id, changes, expect_attempts=attempts)

    async def due_deliveries(self, before: datetime, limit: int) -> list[Delivery]:
        rows = [
            d
            for d in self._deliveries.values()
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at is not None
            and d.next_attempt_at <= before
        ]
        rows.sort(key=lambda d: (d.next_attempt_at or before, d.id))
        return [copy.deepcopy(d) for d in rows[:limit]]

    async def claim_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = self._idem.get((record.org_id, record.key))
        if existing is not None and existing.holds_key(record.created_at):
            return copy.deepcopy(existing)
        self._idem[(record.org_id, record.key)] = copy.deepcopy(record)
        return None

    async def complete_idempotency(
        self, org_id: str, key: str, status_code: int, body: bytes
    ) -> None:
        record = self._idem.get((org_id, key))
        if record is not None:
            record.status_code = status_code
            record.body = body

    async def release_idempotency(self, org_id: str, key: str) -> None:
        self._idem.pop((org_id, key), None)


class _Listed(Protocol):
    created_at: datetime
    id: str


R = TypeVar("R", bound=_Listed)


def _window(rows: list[R], window: Window) -> Page[R]:
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    page = page_of(rows, window, lambda r: (r.created_at, r.id))
    return dataclasses.replace(page, items=[copy.deepcopy(r) for r in page.items])
