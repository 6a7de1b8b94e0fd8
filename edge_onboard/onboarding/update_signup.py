"""An update link's Embedded Signup again (edge_onboard/onboarding/updates.py): run under
the claim ``CompletionService.claim_and_complete`` took, it restores the grant on the
link's WABA or adds a number to a WABA-only account, and records what changed on the link.

Refused with nothing recorded unless the signup ended on the link's own WABA, and, for a
WhatsApp Business app number (coexistence), unless the link's ``connectionTypes`` accept
it, as an onboarding link's completion refuses it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.meta.graph import GraphClient, PhoneInfo
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.completion import COEXISTENCE, Finish
from edge_onboard.onboarding.connect import (
    StepFailed,
    connected_data,
    derived_pin,
    phone_record,
    record_id,
    subscribe,
)
from edge_onboard.onboarding.links import LinkService, with_change
from edge_onboard.onboarding.phones import NOT_FROM_META, phone_view
from edge_onboard.onboarding.signup_steps import (
    SignupFailed,
    connect_number,
    granted_numbers,
    step_failed,
)
from edge_onboard.storage import (
    Delivery,
    Event,
    LinkCondition,
    LinkStatus,
    OnboardingLink,
    Phone,
    Storage,
    Waba,
)
from edge_onboard.webhooks.endpoints import WebhookService

log = logging.getLogger("edge_onboard.onboarding.update_signup")


@dataclasses.dataclass(frozen=True, slots=True)
class UpdateSignup:
    storage: Storage
    clock: Clock
    box: SecretBox
    links: LinkService
    settings: Settings
    meta: MetaModes
    webhooks: WebhookService
    verify_token: Callable[[str], str]

    async def run(
        self,
        link: OnboardingLink,
        claim_id: str,
        report: Finish,
        token: str | None,
        waba: Waba,
        phone: Phone | None,
    ) -> tuple[OnboardingLink, Phone | None]:
        """Restore access to ``waba`` (and reconnect ``phone``, the link's number), or add
        a number to it; the link as it now stands and the number to show."""
        graph = self.meta.graph(link.livemode)
        if graph is None:
            raise SignupFailed(409, "link_not_pending", "This link's account is gone.")
        token, numbers = await granted_numbers(
            graph,
            waba.meta_waba_id,
            report.code,
            token,
            refusal=SignupFailed(
                422,
                "waba_mismatch",
                "The signup did not share the WhatsApp Business Account this link updates.",
            ),
        )
        info = _pick(numbers, phone, report)
        # A WhatsApp Business app number: the page's event says so, or Meta's is_on_biz_app.
        coexistence = report.event == COEXISTENCE or (info is not None and info.is_on_biz_app)
        # Unless the link names its connection types, the number it reconnects may stay
        # what it is; a number it adds is a Cloud API one, as an onboarding link's default.
        allowed = link.connection_types or (
            ["cloud_api", "business_app"] if phone is not None else ["cloud_api"]
        )
        if coexistence and "business_app" not in allowed:
            raise SignupFailed(
                422,
                "connection_type_not_allowed",
                "This link does not accept WhatsApp Business app numbers.",
            )
        try:
            await subscribe(graph, waba.meta_waba_id, token, coexistence=coexistence)
        except StepFailed as exc:
            raise step_failed(exc.error, exc.code, exc.message) from exc
        changes = list(link.changes or [])
        new_phone: Phone | None = None
        if info is not None:
            new_phone = await self._connect(graph, token, link, waba, phone, info, coexistence)
        reconnected = await self._restore_waba(link, waba, token)
        if phone is not None and new_phone is not None:
            await self._reconnect_phone(phone, new_phone)
            changes = with_change(changes, "reconnected")
        elif new_phone is not None:
            # Noted only if this signup added it (not a number recorded meanwhile).
            if await self._record_new(link, new_phone):
                changes = with_change(changes, "phone_added")
        elif reconnected:
            changes = with_change(changes, "reconnected")
        now = self.clock()
        link_changes: dict[str, Any] = {
            "claim_id": None,
            "claimed_until": None,
            "last_error": None,
            "changes": changes,
            # Done: Meta's later PARTNER_ADDED for this WABA has nothing left to recover.
            "session_report": None,
            "updated_at": now,
        }
        if new_phone is not None and link.phone_number_id is None:
            link_changes |= {
                "phone_number_id": new_phone.id,
                "phone_number": new_phone.phone_number,
            }
        updated = await self.links.update(
            link.org_id,
            link.id,
            LinkCondition({LinkStatus.PENDING}, claim_id=claim_id),
            link_changes,
        )
        if updated is None:
            raise SignupFailed(
                409, "completion_in_progress", "This link was used in another window."
            )
        log.info("update link %s: %s", link.id, ", ".join(changes) or "nothing changed")
        return updated, new_phone or phone

    async def _connect(
        self,
        graph: GraphClient,
        token: str,
        link: OnboardingLink,
        waba: Waba,
        phone: Phone | None,
        info: PhoneInfo,
        coexistence: bool,
    ) -> Phone:
        """The number's Graph steps (webhook, registration unless already on the Cloud
        API, or its code later) and its record as it now stands (not written yet)."""
        org = link.org_id
        phone_id = phone.id if phone else record_id("phone", org, info.id)
        context = f"phone:{org}:{info.id}"
        pin = (
            self.box.decrypt(phone.pin_enc, context=context)
            if phone is not None and phone.pin_enc
            else derived_pin(self.box, org, info.id)
        )

        async def pin_for() -> str:
            return pin  # the number's own, or derived: a retry registers with the same one

        setup = await connect_number(
            graph,
            token,
            info,
            public_url=self.settings.public_url,
            phone_id=phone_id,
            verify_token=self.verify_token,
            coexistence=coexistence,
            pin_for=pin_for,
        )
        return phone_record(
            setup,
            info,
            phone_id=phone_id,
            org_id=org,
            waba_id=waba.id,
            meta_waba_id=waba.meta_waba_id,
            onboarding_link_id=phone.onboarding_link_id if phone else link.id,
            pin_enc=(
                self.box.encrypt(setup.pin, context=context)
                if setup.pin
                else phone.pin_enc
                if phone
                else None
            ),
            now=self.clock(),
            livemode=link.livemode,
        )

    async def _restore_waba(self, link: OnboardingLink, waba: Waba, token: str) -> bool:
        """The new grant's token on the WABA, connected again (``waba.connected`` when it
        was disconnected); whether it was."""
        lost = waba.status == "disconnected"
        changes: dict[str, Any] = {
            "access_token_enc": self.box.encrypt(
                token, context=f"waba:{waba.org_id}:{waba.meta_waba_id}"
            ),
            "status": "connected",
            "updated_at": self.clock(),
        }
        event: Event | None = None
        deliveries: list[Delivery] = []
        if lost:
            event, deliveries = await self.webhooks.plan(
                waba.org_id,
                "waba.connected",
                {
                    "onboardingLinkId": link.id,
                    "externalId": link.external_id,
                    "wabaId": waba.id,
                    "metaWabaId": waba.meta_waba_id,
                },
                waba_id=waba.id,
                livemode=waba.livemode,
            )
        updated = await self.storage.update_waba(
            waba.id, changes, event=event, deliveries=deliveries
        )
        if updated is not None and deliveries:
            await self.webhooks.engine.dispatch(deliveries)
        return lost

    async def _reconnect_phone(self, phone: Phone, now_phone: Phone) -> None:
        """The number's record as Meta now has it, with one ``phone_number.updated``
        (written only if nobody changed its status meanwhile: never twice)."""
        changes: dict[str, Any] = {
            "status": now_phone.status,
            "is_registered": now_phone.is_registered,
            "registration_error": now_phone.registration_error,
            "platform": now_phone.platform,
            "verified_name": now_phone.verified_name or phone.verified_name,
            "pin_enc": now_phone.pin_enc,
            "meta_state": {**(phone.meta_state or {}), **(now_phone.meta_state or {})} or None,
            "updated_at": self.clock(),
        }
        preview = Phone.from_doc({**phone.to_doc(), **changes})
        event, deliveries = await self.webhooks.plan(
            phone.org_id,
            "phone_number.updated",
            {**phone_view(preview), "previousStatus": phone.status.value, **NOT_FROM_META},
            waba_id=phone.waba_id,
            livemode=phone.livemode,
        )
        done = await self.storage.update_phone(
            phone.id, changes, statuses={phone.status}, event=event, deliveries=deliveries
        )
        if done is None:
            raise SignupFailed(
                409, "completion_in_progress", "This number was changed in another window."
            )
        await self.webhooks.engine.dispatch(deliveries)

    async def _record_new(self, link: OnboardingLink, phone: Phone) -> bool:
        """A number added to the WABA by this link, with its ``phone_number.connected``;
        whether it was (not when the organisation has that number already)."""
        event, deliveries = await self.webhooks.plan(
            link.org_id,
            "phone_number.connected",
            connected_data(
                phone, waba_id=phone.waba_id, link_id=link.id, external_id=link.external_id
            ),
            waba_id=phone.waba_id,
            livemode=phone.livemode,
        )
        if not await self.storage.insert_phone(phone, event, deliveries):
            return False
        await self.webhooks.engine.dispatch(deliveries)
        return True


def _pick(numbers: list[PhoneInfo], phone: Phone | None, report: Finish) -> PhoneInfo | None:
    """The number to (re)connect: the link's own, else the one the signup reported (or
    the account's only one)."""
    if phone is not None:
        for info in numbers:
            if info.id == phone.meta_phone_number_id:
                return info
        raise SignupFailed(
            422,
            "phone_not_in_waba",
            "The number this link updates is no longer in the shared WhatsApp Business Account.",
        )
    if report.phone_number_id is not None:
        for info in numbers:
            if info.id == report.phone_number_id:
                return info
        raise SignupFailed(
            422,
            "phone_not_in_waba",
            "The phone number reported by the signup is not in the shared "
            "WhatsApp Business Account.",
        )
    return numbers[0] if len(numbers) == 1 else None
