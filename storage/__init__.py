"""Durable storage: the protocol, the records and the backends chosen by URL."""

from __future__ import annotations

from edge_onboard.storage.base import (
    Completed,
    Completion,
    DuplicateError,
    EventFilter,
    InvalidRecordError,
    LinkCondition,
    LinkFilter,
    Storage,
    StorageError,
    UnknownBackendError,
    UnsupportedServerError,
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
    PhonePlatform,
    PhoneStatus,
    Waba,
    WebhookStatus,
    utc_ms,
)


def from_url(url: str, *, max_staleness: int | None = None) -> Storage:
    """The backend for ``url``: ``memory://``, ``sqlite:///path`` or ``mongodb://…/db``.
    ``max_staleness`` (MongoDB, a region other than the primary): reads from the nearest
    member at most that many seconds behind.

    Drivers are imported lazily so an embedded install never loads PyMongo.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from edge_onboard.storage.memory import MemoryStorage

        return MemoryStorage()
    if scheme == "sqlite":
        from edge_onboard.storage.sqlite import SQLiteStorage

        return SQLiteStorage.from_url(url)
    if scheme in {"mongodb", "mongodb+srv"}:
        try:
            from edge_onboard.storage.mongo import MongoStorage
        except ImportError as exc:  # pragma: no cover - pymongo is a hard dependency
            raise UnknownBackendError(
                f"MongoDB storage needs pymongo>=4.13: pip install 'pymongo>=4.13' ({exc})"
            ) from exc
        return MongoStorage.from_url(url, max_staleness=max_staleness)
    raise UnknownBackendError(
        f"unknown storage scheme {scheme!r}: use memory://, sqlite:///path or mongodb://host/db"
    )


__all__ = [
    "ApiKey",
    "Completed",
    "Completion",
    "Delivery",
    "DeliveryStatus",
    "DuplicateError",
    "Event",
    "EventFilter",
    "IdempotencyRecord",
    "InboxItem",
    "InvalidRecordError",
    "LinkCondition",
    "LinkFilter",
    "LinkStatus",
    "OnboardingLink",
    "Organization",
    "OutgoingWebhook",
    "PartnerGrant",
    "Phone",
    "PhonePlatform",
    "PhoneStatus",
    "Storage",
    "StorageError",
    "UnknownBackendError",
    "UnsupportedServerError",
    "Waba",
    "WebhookStatus",
    "from_url",
    "utc_ms",
]
