"""Whose an event is: every event but the links' own carries ``onboardingLinkId`` and
``externalId`` of the link that connected its number (as Stripe puts ``account`` on every
Connect event), so a customer routes it without a lookup.

Added once, where events are made (``WebhookService.plan`` and ``emit``), so every kind,
including ones added later, gets it. The number is the event's ``phoneNumberId`` (or
``id`` for ``phone_number.*``, whose data is the phone's view), else a number of its WABA.
What a number belongs to is kept a minute per process: inbound messages come in bursts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from edge_onboard.storage import Storage

TTL = 60.0  # seconds a number's owner is reused
SIZE = 4096  # numbers and WABAs remembered
LINK_ID = "onboardingLinkId"
EXTERNAL_ID = "externalId"
Owner = tuple[str | None, str | None]


def owned(event_type: str) -> bool:
    """Every kind but the links' own lifecycle events (which are the link's already)."""
    return not event_type.startswith("onboarding_link.")


class Owners:
    def __init__(self, storage: Storage, *, monotonic: Callable[[], float] = time.monotonic):
        self.storage = storage
        self._monotonic = monotonic
        self._known: OrderedDict[str, tuple[float, Owner]] = OrderedDict()

    async def stamp(
        self, event_type: str, data: dict[str, Any], waba_id: str | None
    ) -> dict[str, Any]:
        """``data`` with the owner's two fields (null when no link connected the number,
        e.g. one a WABA sync found); fields the producer set itself are kept."""
        if not owned(event_type) or (LINK_ID in data and EXTERNAL_ID in data):
            return data
        link_id = data.get(LINK_ID)
        phone_id = data.get("phoneNumberId")
        if phone_id is None and event_type.startswith("phone_number."):
            phone_id = data.get("id")
        if isinstance(link_id, str):
            owner = await self._link(link_id)
        elif isinstance(phone_id, str) or waba_id:
            owner = await self._owner(phone_id if isinstance(phone_id, str) else None, waba_id)
        else:
            return data  # not a number's event: nothing to say whose
        return {**data, LINK_ID: owner[0], EXTERNAL_ID: owner[1]}

    def forget(self, key: str) -> None:
        """A number (or WABA) changed hands: the next event reads its owner again."""
        self._known.pop(key, None)

    def _remembered(self, key: str) -> Owner | None:
        hit = self._known.get(key)
        if hit is None or self._monotonic() - hit[0] > TTL:
            return None
        return hit[1]

    def _remember(self, key: str, owner: Owner) -> Owner:
        self._known[key] = (self._monotonic(), owner)
        self._known.move_to_end(key)
        while len(self._known) > SIZE:
            self._known.popitem(last=False)
        return owner

    async def _owner(self, phone_id: str | None, waba_id: str | None) -> Owner:
        key = f"phone:{phone_id}" if phone_id else f"waba:{waba_id}" if waba_id else None
        if key is None:
            return None, None
        known = self._remembered(key)
        if known is not None:
            return known
        link_id: str | None = None
        if phone_id:
            phone = await self.storage.get_phone(phone_id)
            link_id = phone.onboarding_link_id if phone else None
        elif waba_id:
            phones = await self.storage.phones_of_wabas([waba_id])
            link_id = next((p.onboarding_link_id for p in phones if p.onboarding_link_id), None)
        owner = await self._link(link_id) if link_id else (None, None)
        return self._remember(key, owner)

    async def _link(self, link_id: str) -> Owner:
        known = self._remembered(f"link:{link_id}")
        if known is not None:
            return known
        link = await self.storage.get_link(link_id)
        return self._remember(f"link:{link_id}", (link_id, link.external_id if link else None))
