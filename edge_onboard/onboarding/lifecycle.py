"""An onboarding link's life as events, for customers' funnels: ``opened`` (first view of
the hosted page), ``failed`` (each failed attempt, with its code), ``completed``,
``expired`` and ``recovered``.

Those that happen once per link (opened, completed, expired, recovered) have an event
id derived from the link and the kind, so two processes that both see the moment write
one event: the second write is a duplicate and records nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from edge_onboard.storage import OnboardingLink
from edge_onboard.webhooks.endpoints import WebhookService

log = logging.getLogger("edge_onboard.onboarding.lifecycle")

_ONCE = uuid.UUID("5d7f3c1e-2b44-4f7e-9a61-0c2f7b8e4d93")
ONCE_KINDS = frozenset({"opened", "completed", "expired", "recovered"})


def once_id(link_id: str, kind: str) -> str:
    """The event id of a once-per-link event."""
    return "evt_" + uuid.uuid5(_ONCE, f"{link_id}:{kind}").hex


def link_data(link: OnboardingLink) -> dict[str, Any]:
    """What every onboarding_link.* event says about its link."""
    return {
        "onboardingLinkId": link.id,
        "externalId": link.external_id,
        "status": link.status.value,
        "metadata": dict(link.metadata),
    }


async def announce(
    webhooks: WebhookService,
    link: OnboardingLink,
    kind: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Emit ``onboarding_link.{kind}`` for ``link`` (once per link for ONCE_KINDS). A
    failure to record it is logged, never raised: the change it reports has happened."""
    data = {**link_data(link), **(extra or {})}
    try:
        await webhooks.emit(
            link.org_id,
            f"onboarding_link.{kind}",
            data,
            event_id=once_id(link.id, kind) if kind in ONCE_KINDS else None,
            livemode=link.livemode,
        )
    except Exception as exc:  # the storage is down: the transition stands, the event is lost
        log.warning("could not record onboarding_link.%s for %s: %s", kind, link.id, exc)
