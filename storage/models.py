"""Durable records, shared by every backend.

Each record converts to and from a plain document (``to_doc``/``from_doc``): JSON
types plus ``datetime``. Backends store that document natively (MongoDB) or encode
the datetimes themselves (SQLite); none of them knows the fields.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self


class LinkStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    # Soft delete: the API answers 404, the hosted URL 410.
    DELETED = "deleted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_LINK_STATUSES


TERMINAL_LINK_STATUSES = frozenset({LinkStatus.COMPLETED, LinkStatus.EXPIRED, LinkStatus.DELETED})
# Statuses a customer can see and filter on.
VISIBLE_LINK_STATUSES = (LinkStatus.PENDING, LinkStatus.COMPLETED, LinkStatus.EXPIRED)


def utc_ms(moment: datetime) -> datetime:
    """Truncate to milliseconds in UTC: the precision every backend keeps."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# dataclasses.fields() is slow enough to show on the hot path; a class's names never change.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


# Field value types a document holds as they are.
_PLAIN = frozenset({str, int, float, bool, type(None), datetime, bytes, list})


class _Record:
    __slots__ = ()

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if type(value) not in _PLAIN:  # most fields are; one set lookup each
                if isinstance(value, enum.Enum):
                    value = value.value
                elif isinstance(value, dict):
                    value = dict(value)
                elif isinstance(value, tuple):
                    value = list(value)
            doc[name] = value
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Self:
        kwargs: dict[str, Any] = {}
        for name in _field_names(cls):
            if name not in doc:
                continue  # added by a later schema version: the dataclass default applies
            value = doc[name]
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)  # BSON dates come back naive
            kwargs[name] = value
        return cls(**kwargs)


@dataclasses.dataclass(slots=True)
class Organization(_Record):
    id: str
    name: str
    created_at: datetime
    # Branding on the hosted page (edge_onboard/onboarding/branding.py checks every value).
    display_name: str | None = None
    brand_color: str | None = None  # "#rrggbb"
    support_email: str | None = None
    support_url: str | None = None
    privacy_url: str | None = None
    terms_url: str | None = None
    # The uploaded logo (PNG, JPEG or WebP, at most 256 KB), its media type and the
    # SHA-256 of its bytes (the hash in its URL).
    logo: bytes | None = None
    logo_type: str | None = None
    logo_hash: str | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass(slots=True)
class ApiKey(_Record):
    id: str
    org_id: str
    # SHA-256 hex of the full key; the key itself is never stored.
    key_hash: str
    # The first characters of the key, enough to recognise it in a list.
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    # False for a test key (sk_test_): it sees only test objects. Keys made before test
    # mode (sk_org_) have no such field and are live.
    livemode: bool = True

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclasses.dataclass(slots=True)
class OnboardingLink(_Record):
    id: str
    org_id: str
    name: str
    status: LinkStatus
    created_at: datetime
    expires_at: datetime
    external_id: str | None = None
    redirect_url: str | None = None
    webhook_url: str | None = None
    # Encrypted with the service's secret key (see edge_onboard.core.crypto).
    webhook_secret_enc: str | None = None
    webhook_events: list[str] | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    # Business data for Meta's form (personal data: e-mail, phone, address), as JSON
    # encrypted by the service (context: "{id}:prefill"); only the hosted page reads it.
    prefill_enc: str | None = None
    # Plain prefill of links created before it was encrypted: read, never written.
    prefill: dict[str, Any] | None = None
    locale: str | None = None
    # The hosted page's name for the organisation, instead of its displayName.
    display_name: str | None = None
    # Where the page sends an end-user whose link is expired or deleted (https).
    refresh_url: str | None = None
    # Which numbers the link welcomes: "cloud_api" (always) and "business_app"
    # (WhatsApp Business app numbers, coexistence). None: ["cloud_api"].
    connection_types: list[str] | None = None
    # What the page reported from Meta's session message before the code (event, Meta's
    # waba/phone/business ids, session id, when): what recovery matches Meta against.
    session_report: dict[str, Any] | None = None
    # "callback" or "recovery": how a completed link got there.
    completed_via: str | None = None
    # A recovery that waits for EDGE_META_SYSTEM_USER_TOKEN (or failed for good): Meta's
    # ids and why ({"metaWabaId", "metaBusinessId", "reason"}).
    recovery: dict[str, Any] | None = None
    # When the hosted page was first opened (onboarding_link.opened is sent once).
    opened_at: datetime | None = None
    phone_number_id: str | None = None
    phone_number: str | None = None
    waba_id: str | None = None
    is_phone_registered: bool = False
    outgoing_webhook_id: str | None = None
    completed_at: datetime | None = None
    deleted_at: datetime | None = None
    # {"code", "message", "at"} of the last failed signup attempt.
    last_error: dict[str, Any] | None = None
    updated_at: datetime | None = None
    # The completion in progress: whoever holds the claim finishes the link; it lapses
    # at ``claimed_until`` so a crashed worker never blocks the link for good.
    claim_id: str | None = None
    claimed_until: datetime | None = None
    # The PIN an attempt registered (or is about to register) the number with, kept
    # encrypted so a retry after a later failure still knows it.
    pending_pin_enc: str | None = None
    pending_pin_phone: str | None = None
    # Test mode: a test link runs against the built-in fake Meta; records made before
    # test mode are live.
    livemode: bool = True
    # "onboarding" (a new signup) or "update" (an existing number or WABA of the
    # organisation, named by ``phone_number_id``/``waba_id`` from the start:
    # edge_onboard/onboarding/updates.py).
    type: str = "onboarding"
    # An update link's result so far, in order: "reconnected", "phone_added", "verified",
    # "profile_updated"; and the profile fields the end-user changed.
    changes: list[str] | None = None
    profile_fields: list[str] | None = None

    def __post_init__(self) -> None:
        self.status = LinkStatus(self.status)


@dataclasses.dataclass(slots=True)
class IdempotencyRecord(_Record):
    org_id: str
    key: str
    # SHA-256 of method, path and canonical body: "same key, same request".
    fingerprint: str
    created_at: datetime
    expires_at: datetime
    # None while the first request is still running.
    status_code: int | None = None
    # The stored response, encrypted by the service (it can hold a webhook secret).
    body: bytes | None = None
    # An unfinished first request holds the key until then; after, a retry may take it.
    locked_until: datetime | None = None

    def holds_key(self, now: datetime) -> bool:
        """Whether this record still decides what a request with its key gets."""
        if self.expires_at <= now:
            return False
        return self.status_code is not None or self.locked_until is None or self.locked_until > now


@dataclasses.dataclass(slots=True)
class Waba(_Record):
    """A WhatsApp Business Account an organisation connected, with its business token."""

    id: str
    org_id: str
    meta_waba_id: str
    # The business integration token, encrypted (context: this record's id).
    access_token_enc: str
    created_at: datetime
    updated_at: datetime
    meta_business_id: str | None = None
    # "connected", or "disconnected" once the business removed the partner's access.
    status: str = "connected"
    # Meta's latest word on the account (account_update): {"event", "reason", "at"}.
    meta_state: dict[str, Any] | None = None
    livemode: bool = True


@dataclasses.dataclass(slots=True)
class PartnerGrant(_Record):
    """Meta's account_update PARTNER_ADDED / PARTNER_APP_INSTALLED for a WABA: what
    recovery matches against pending links' session reports. One per Meta WABA id."""

    id: str  # Meta's WABA id
    owner_business_id: str | None
    event: str
    received_at: datetime
    attempts: int = 0
    # When it was settled (a link recovered, or given up), and how.
    closed_at: datetime | None = None
    outcome: str | None = None
    # Not before this time again (a transient Meta error backs off).
    retry_at: datetime | None = None
    # Which links it may recover: True (the configured Meta app sent it) live ones, False
    # (the built-in fake Meta) test ones, None (EDGE_SANDBOX: the fake is both) either.
    livemode: bool | None = True


class PhoneStatus(enum.StrEnum):
    # Registered on the Cloud API and subscribed: ready to use.
    CONNECTED = "connected"
    # Finished Embedded Signup unverified: a code (request, verify) comes before registering.
    PENDING_VERIFICATION = "pending_verification"
    # Connected to us, but Meta refused the registration: not usable for messaging yet.
    REGISTRATION_FAILED = "registration_failed"
    # The business took the partner's access back (account_update PARTNER_REMOVED).
    DISCONNECTED = "disconnected"


class PhonePlatform(enum.StrEnum):
    CLOUD_API = "cloud_api"
    # A WhatsApp Business app number also on the Cloud API (coexistence): never registered.
    BUSINESS_APP = "business_app"


@dataclasses.dataclass(slots=True)
class Phone(_Record):
    id: str
    org_id: str
    waba_id: str
    meta_waba_id: str
    meta_phone_number_id: str
    status: PhoneStatus
    is_registered: bool
    # The link whose signup connected it; None for a number a WABA sync found later.
    onboarding_link_id: str | None
    created_at: datetime
    updated_at: datetime
    phone_number: str | None = None
    verified_name: str | None = None
    # The two-step verification PIN we registered with, encrypted (context: record id).
    pin_enc: str | None = None
    registration_error: dict[str, Any] | None = None
    platform: PhonePlatform = PhonePlatform.CLOUD_API
    # The latest Meta told us by webhook (phone_number_quality_update / _name_update):
    # {"qualityEvent", "messagingLimit", "nameStatus", "at"}; health reads it between checks.
    meta_state: dict[str, Any] | None = None
    # Coexistence: how each one-shot WhatsApp Business app sync went ({"stateSync",
    # "historySync"}: "requested", "failed", or "unknown" when Meta did not answer).
    coexistence: dict[str, Any] | None = None
    livemode: bool = True

    def __post_init__(self) -> None:
        self.status = PhoneStatus(self.status)
        self.platform = PhonePlatform(self.platform)


class WebhookStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclasses.dataclass(slots=True)
class OutgoingWebhook(_Record):
    """A customer endpoint that receives signed events."""

    id: str
    org_id: str
    url: str
    # Encrypted (context: "webhook:{id}"); delivery.signing_key makes it the HMAC key.
    secret_enc: str
    events: list[str]
    status: WebhookStatus
    created_at: datetime
    updated_at: datetime
    # Scope: only events of this WABA (our record id); None = the whole organisation.
    waba_id: str | None = None
    # Set when created from an onboarding link's webhookUrl.
    onboarding_link_id: str | None = None
    disabled_reason: str | None = None
    deleted_at: datetime | None = None
    # After a rotation: the secret it replaced (encrypted like secret_enc) and when that
    # one stops signing; until then deliveries carry both signatures.
    previous_secret_enc: str | None = None
    previous_secret_expires_at: datetime | None = None
    # A test webhook receives only test objects' events, a live one only live ones.
    livemode: bool = True

    def __post_init__(self) -> None:
        self.status = WebhookStatus(self.status)

    def wants(self, event_type: str, waba_id: str | None) -> bool:
        return (
            self.status is WebhookStatus.ACTIVE
            and self.deleted_at is None
            and event_type in self.events
            and (self.waba_id is None or self.waba_id == waba_id)
        )

    def signing_secrets_enc(self, now: datetime) -> list[str]:
        """The encrypted secrets a delivery sent at ``now`` is signed with: the current
        one first, then the previous one while it has not expired."""
        if (
            self.previous_secret_enc is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        ):
            return [self.secret_enc, self.previous_secret_enc]
        return [self.secret_enc]


@dataclasses.dataclass(slots=True)
class Event(_Record):
    """An outbox entry: written in the same transaction as the change it reports."""

    id: str
    org_id: str
    type: str
    data: dict[str, Any]
    created_at: datetime
    # The WABA (our record id) the event concerns, for WABA-scoped webhooks.
    waba_id: str | None = None
    # The mode of the object it reports: it goes only to webhooks of the same mode.
    livemode: bool = True


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclasses.dataclass(slots=True)
class Delivery(_Record):
    """One event for one endpoint, with its attempts; the durable truth behind the queue."""

    id: str
    org_id: str
    event_id: str
    webhook_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    # [{"at", "statusCode", "error", "durationMs"}], newest last, capped.
    attempt_log: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The recovery (POST /v1/outgoing-webhooks/{id}/recover) that last re-sent it.
    recovery_id: str | None = None
    livemode: bool = True

    def __post_init__(self) -> None:
        self.status = DeliveryStatus(self.status)


@dataclasses.dataclass(slots=True)
class InboxItem:
    """A verified body of Meta's, recorded before it is acknowledged and processed after:
    one write per POST. Leased to the process processing it until ``lease_until``; an
    item still there after its lease (its process died) is taken by a sweeper."""

    id: str  # a digest of the body and its mode: a retry of a body is the same item
    body: bytes
    livemode: bool | None  # the mode the signature allows (None: either)
    received_at: datetime
    lease_until: datetime
