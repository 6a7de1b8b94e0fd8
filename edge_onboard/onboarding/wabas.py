"""WhatsApp Business Accounts: the read API, and the sync that connects numbers added at
Meta after the signup (``POST /v1/wabas/{id}/phones/sync``).

A signup may finish with a WABA and no number (Embedded Signup v4). When the business
adds one later, the sync lists the WABA's numbers at Meta and connects each new one
exactly as a signup would (webhooks, registration or verification later), recording it
with its ``phone_number.connected`` event; numbers already recorded are left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, not_found
from edge_onboard.core.validation import UUID_RE
from edge_onboard.meta.graph import GraphClient, PhoneInfo
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.connect import (
    StepFailed,
    connected_data,
    derived_pin,
    phone_record,
    record_id,
    set_up_phone,
    step,
)
from edge_onboard.onboarding.phones import business_token
from edge_onboard.storage import Phone, Storage, Waba
from edge_onboard.storage.paging import Key, Page, Window
from edge_onboard.webhooks.endpoints import WebhookService

log = logging.getLogger("edge_onboard.onboarding.wabas")


def waba_view(waba: Waba, phones: list[Phone]) -> dict[str, Any]:
    return {
        "id": waba.id,
        "metaWabaId": waba.meta_waba_id,
        "metaBusinessId": waba.meta_business_id,
        "phoneNumberIds": sorted(p.id for p in phones if p.waba_id == waba.id),
        "createdAt": isoformat(waba.created_at),
        "livemode": waba.livemode,
    }


class WabaService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        settings: Settings,
        webhooks: WebhookService,
        meta: MetaModes,
        verify_token: Any,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.settings = settings
        self.webhooks = webhooks
        self.meta = meta
        # The verify token Meta must echo for a phone (CompletionService.verify_token).
        self.verify_token = verify_token

    async def get(self, org_id: str, waba_id: str, *, livemode: bool) -> Waba:
        waba = await self.storage.get_waba(waba_id) if UUID_RE.match(waba_id) else None
        if waba is None or waba.org_id != org_id or waba.livemode != livemode:
            raise not_found("WABA", waba_id, param="id")
        return waba

    async def view(self, waba: Waba) -> dict[str, Any]:
        return waba_view(waba, await self.storage.phones_of_wabas([waba.id]))

    async def list(self, org_id: str, window: Window, *, livemode: bool) -> Page[dict[str, Any]]:
        """A page of WABA views (each with its phones' ids)."""
        page = await self.storage.list_wabas(org_id, window, livemode=livemode)
        phones = await self.storage.phones_of_wabas([w.id for w in page.items])
        views = [waba_view(w, phones) for w in page.items]
        return Page(views, page.has_more, page.total, page.total_is_estimate)

    async def locate(self, org_id: str, waba_id: str, *, livemode: bool) -> Key | None:
        """A list cursor's key: the WABA's, when this organisation has it in this mode."""
        waba = await self.storage.get_waba(waba_id) if UUID_RE.match(waba_id) else None
        if waba is None or waba.org_id != org_id or waba.livemode != livemode:
            return None
        return (waba.created_at, waba.id)

    async def sync(self, org_id: str, waba_id: str, *, livemode: bool) -> dict[str, Any]:
        """Connect the numbers Meta lists for the WABA that are not recorded yet."""
        waba = await self.get(org_id, waba_id, livemode=livemode)
        graph = self.meta.graph(waba.livemode)
        if graph is None:
            raise ApiError(503, "meta_not_configured", "No Meta app is configured.")
        token = business_token(self.box, waba)
        try:
            numbers: list[PhoneInfo] = await step(
                graph.waba_phone_numbers(waba.meta_waba_id, token),
                "phone_lookup_failed",
                "Meta did not list the account's numbers.",
            )
            known = {p.meta_phone_number_id for p in await self.storage.phones_of_wabas([waba.id])}
            for info in numbers:
                if info.id not in known:
                    await self._connect(graph, token, waba, info)
        except StepFailed as exc:
            if exc.error.unreachable:
                raise ApiError(
                    502, "meta_unavailable", "Meta could not be reached; try again shortly."
                ) from exc
            raise ApiError(422, exc.code, f"{exc.message} (Meta error {exc.error.code})") from exc
        return await self.view(waba)

    async def _connect(self, graph: GraphClient, token: str, waba: Waba, info: PhoneInfo) -> None:
        org = waba.org_id
        existing = await self.storage.find_phone_by_meta_id(org, info.id)
        if existing is not None:
            return  # recorded under another WABA record of ours: nothing new here
        phone_id = record_id("phone", org, info.id)
        pin = derived_pin(self.box, org, info.id)

        async def pin_for() -> str:
            return pin  # derived, so a retry after a crash registers with the same one

        coexistence = info.raw.get("is_on_biz_app") is True
        setup = await set_up_phone(
            graph,
            token,
            info,
            callback_url=f"{self.settings.public_url}/webhook/phone/{phone_id}",
            verify_token=self.verify_token(phone_id),
            coexistence=coexistence,
            pin_for=pin_for,
        )
        now = self.clock()
        context = f"phone:{org}:{info.id}"
        phone = phone_record(
            setup,
            info,
            phone_id=phone_id,
            org_id=org,
            waba_id=waba.id,
            meta_waba_id=waba.meta_waba_id,
            onboarding_link_id=None,  # found by a sync, not by a signup
            pin_enc=self.box.encrypt(setup.pin, context=context) if setup.pin else None,
            now=now,
            livemode=waba.livemode,
        )
        event, deliveries = await self.webhooks.plan(
            org,
            "phone_number.connected",
            connected_data(phone, waba_id=waba.id, link_id=None, external_id=None),
            waba_id=waba.id,
            livemode=waba.livemode,
        )
        if await self.storage.insert_phone(phone, event, deliveries):
            await self.webhooks.engine.dispatch(deliveries)
            log.info("waba %s: connected number %s (%s)", waba.id, phone.id, phone.status.value)
