"""Update links (``type: "update"``): the hosted page shows an existing number (or a WABA
without one) only what it needs, in order, decided here from its current state:

1. ``reconnect``: the business took the app's access back (PARTNER_REMOVED): Embedded
   Signup again, which must end on the same WABA; the grant is restored (token, webhook
   subscription, the number's webhook and registration) and the number reconnected, with
   one ``phone_number.updated``;
2. ``add_number``: a WABA-only signup: Embedded Signup again, on the same WABA, to add one
   (``phone_number.connected``);
3. ``verify``: the number still needs its code (edge_onboard/onboarding/page_verification.py);
4. ``profile``: the business profile form, sent to Meta with only the fields the end-user
   changed, and the display name with its review status (read-only); then the link is
   completed, exactly once.

The link stays pending until that last step; what changed on the way is recorded on the
link as it happens (``changes``), so its result says so even if the end-user stops early.
The page reaches these steps with a pass (as the verification step does): an HMAC over
the link, its target and an expiry, sent in a header a cross-site page cannot send.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.validation import UUID_RE
from edge_onboard.meta.graph import GraphClient, PhoneInfo
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.completion import CLAIM_TTL, Finish, Outcome
from edge_onboard.onboarding.connect import (
    StepFailed,
    connected_data,
    derived_pin,
    phone_record,
    record_id,
    set_up_phone,
    subscribe,
)
from edge_onboard.onboarding.lifecycle import announce, link_data
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.page_verification import PASS_TTL, later_url
from edge_onboard.onboarding.page_verification import step as verification_step
from edge_onboard.onboarding.phones import NOT_FROM_META, phone_view
from edge_onboard.onboarding.profile import FIELDS, ProfileService, parse_patch
from edge_onboard.onboarding.returns import GONE, masked_phone, redirect_url
from edge_onboard.onboarding.signup_steps import SignupFailed, granted_numbers, step_failed
from edge_onboard.storage import (
    Delivery,
    Event,
    LinkCondition,
    LinkStatus,
    OnboardingLink,
    Phone,
    PhoneStatus,
    Storage,
    Waba,
)
from edge_onboard.webhooks.endpoints import WebhookService

log = logging.getLogger("edge_onboard.onboarding.updates")
HEADER = "x-signup-pass"
# The steps an update link's page may show, in their order.
UPDATE_STEPS = ("reconnect", "add_number", "verify", "profile")
FINISH_FIELDS = frozenset({"profile"})


def _signature(box: SecretBox, link_id: str, target: str, expires: int) -> str:
    return box.token(f"page-update:{link_id}:{target}:{expires}")


def _target_of(link: OnboardingLink) -> str:
    return link.phone_number_id or link.waba_id or ""


def _added(changes: list[str] | None, change: str) -> list[str]:
    done = list(changes or [])
    return done if change in done else [*done, change]


def _same(current: Any, wanted: Any) -> bool:
    """Whether Meta's value already is the one asked for (absent reads as empty)."""
    if isinstance(wanted, list):
        return [w for w in current or [] if isinstance(w, str)] == wanted
    return bool((current or "") == wanted)


class UpdateService:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        links: LinkService,
        settings: Settings,
        meta: MetaModes,
        webhooks: WebhookService,
        profiles: ProfileService,
        verify_token: Callable[[str], str],
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.links = links
        self.settings = settings
        self.meta = meta
        self.webhooks = webhooks
        self.profiles = profiles
        self.verify_token = verify_token

    # The page's pass

    def issue(self, link: OnboardingLink, now: datetime) -> str:
        expires = int((now + PASS_TTL).timestamp())
        return f"{expires}.{_signature(self.box, link.id, _target_of(link), expires)}"

    async def _pending(self, link_id: str) -> OnboardingLink:
        """The update link, still pending: else 404 (unknown, or not an update link),
        410 (expired or deleted) or 409 (used already)."""
        link = await self.links.load(None, link_id, fresh=True) if UUID_RE.match(link_id) else None
        if link is None or link.type != "update":
            raise ApiError(404, "link_not_found", "This onboarding link does not exist.")
        self._refuse_unless_pending(link)
        return link

    async def allowed(self, link_id: str, token: str | None) -> OnboardingLink:
        """The pending update link the pass was made for, or 404/403/409/410."""
        link = await self._pending(link_id)
        expires, _, signature = (token or "").partition(".")
        valid = (
            expires.isdigit()
            and len(expires) <= 12
            and int(expires) > self.clock().timestamp()
            and hmac.compare_digest(
                signature.encode(),
                _signature(self.box, link.id, _target_of(link), int(expires)).encode(),
            )
        )
        if not valid:
            raise ApiError(
                403,
                "update_pass_invalid",
                "This page can no longer update the number; reload it or ask for a new link.",
            )
        return link

    @staticmethod
    def _refuse_unless_pending(link: OnboardingLink) -> None:
        for status, reason in ((LinkStatus.DELETED, "deleted"), (LinkStatus.EXPIRED, "expired")):
            if link.status is status:
                raise ApiError(410, f"link_{reason}", GONE[reason])
        if link.status is LinkStatus.COMPLETED:
            raise ApiError(409, "link_completed", "This update link has been used already.")

    # What the page shows

    async def start(self, link_id: str) -> dict[str, Any]:
        """The page's first call: its pass and the steps the number needs now."""
        return await self.plan(await self._pending(link_id))

    async def plan(self, link: OnboardingLink) -> dict[str, Any]:
        """The steps the link's number needs, in order, from its current state."""
        now = self.clock()
        waba = await self.storage.get_waba(link.waba_id) if link.waba_id else None
        phone = await self.storage.get_phone(link.phone_number_id) if link.phone_number_id else None
        steps: list[str] = []
        lost = (waba is not None and waba.status == "disconnected") or (
            phone is not None and phone.status is PhoneStatus.DISCONNECTED
        )
        if lost:
            steps.append("reconnect")
        elif phone is None:
            steps.append("add_number")
        if phone is not None and phone.status is PhoneStatus.PENDING_VERIFICATION:
            steps.append("verify")
        steps.append("profile")
        plan: dict[str, Any] = {
            "steps": steps,
            "token": self.issue(link, now),
            "phoneNumberMasked": masked_phone(phone.phone_number if phone else None),
            "displayName": phone.verified_name if phone else None,
            "nameStatus": (phone.meta_state or {}).get("nameStatus") if phone else None,
            "changes": list(link.changes or []),
            "profile": None,
            "verification": None,
        }
        if phone is not None and "verify" in steps:
            plan["verification"] = verification_step(self.box, now, link, phone)
        if phone is not None and not lost:
            try:
                profile = await self.profiles.get(link.org_id, phone.id, livemode=link.livemode)
            except ApiError as exc:  # the form still works: Meta's answer is read again on save
                log.warning("update link %s: profile unreadable: %s", link.id, exc.message)
            else:
                plan["profile"] = {name: profile.get(name) for name in FIELDS}
        return plan

    # Embedded Signup again (from CompletionService.claim_and_complete, under its claim)

    async def signup(
        self, link: OnboardingLink, claim_id: str, report: Finish, token: str | None
    ) -> Outcome:
        """Restore access to the link's WABA, or add a number to it: refused (nothing
        recorded) unless the signup ended on that same WABA."""
        waba = await self.storage.get_waba(link.waba_id) if link.waba_id else None
        graph = self.meta.graph(link.livemode)
        if waba is None or graph is None:
            raise SignupFailed(409, "link_not_pending", "This link's account is gone.")
        if report.waba_id != waba.meta_waba_id:
            raise SignupFailed(
                422,
                "waba_mismatch",
                "The signup ended on another WhatsApp Business Account than the one this "
                "link updates.",
            )
        phone = await self.storage.get_phone(link.phone_number_id) if link.phone_number_id else None
        lost = waba.status == "disconnected" or (
            phone is not None and phone.status is PhoneStatus.DISCONNECTED
        )
        if not lost and phone is not None:
            # Nothing to restore or add: the page goes on to its other steps.
            raise SignupFailed(
                409, "update_not_needed", "This number is connected: it needs no new signup."
            )
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
        coexistence = info is not None and info.is_on_biz_app
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
            changes = _added(changes, "reconnected")
        elif new_phone is not None:
            await self._record_new(link, new_phone)
            changes = _added(changes, "phone_added")
        elif reconnected:
            changes = _added(changes, "reconnected")
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
        if new_phone is not None and phone is None:
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
        shown = new_phone or phone
        return Outcome(
            200,
            {
                "status": "success",
                "redirectUrl": None,
                "phoneNumberMasked": masked_phone(shown.phone_number if shown else None),
                "update": await self.plan(updated),
            },
        )

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

        try:
            setup = await set_up_phone(
                graph,
                token,
                info,
                callback_url=f"{self.settings.public_url}/webhook/phone/{phone_id}",
                verify_token=self.verify_token(phone_id),
                coexistence=coexistence,
                pin_for=pin_for,
            )
        except StepFailed as exc:
            raise step_failed(exc.error, exc.code, exc.message) from exc
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

    async def _record_new(self, link: OnboardingLink, phone: Phone) -> None:
        """A number added to the WABA by this link, with its ``phone_number.connected``."""
        event, deliveries = await self.webhooks.plan(
            link.org_id,
            "phone_number.connected",
            connected_data(
                phone, waba_id=phone.waba_id, link_id=link.id, external_id=link.external_id
            ),
            waba_id=phone.waba_id,
            livemode=phone.livemode,
        )
        if await self.storage.insert_phone(phone, event, deliveries):
            await self.webhooks.engine.dispatch(deliveries)

    # The last step: the profile, then the link completed

    async def finish(self, link: OnboardingLink, body: dict[str, Any]) -> dict[str, Any]:
        """Send Meta the profile fields that differ from what it has, then complete the
        link exactly once (two tabs racing: one completes, the other is told)."""
        unknown = sorted(set(body) - FINISH_FIELDS)
        if unknown:
            raise invalid(
                f"Received unknown parameter: {unknown[0]}",
                param=unknown[0],
                code="unknown_parameter",
            )
        given = body.get("profile") or {}
        if not isinstance(given, dict):
            raise invalid("'profile' must be an object.", param="profile")
        fields = parse_patch(given) if given else {}
        if fields and not link.phone_number_id:
            raise invalid("There is no number to give a profile yet.", param="profile")
        now = self.clock()
        claim_id = str(uuid.uuid4())
        claimed = await self.links.update(
            link.org_id,
            link.id,
            LinkCondition({LinkStatus.PENDING}, unexpired_at=now, unclaimed_at=now),
            {"claim_id": claim_id, "claimed_until": now + CLAIM_TTL},
        )
        if claimed is None:
            current = await self.links.load(None, link.id, fresh=True)
            if current is not None:
                self._refuse_unless_pending(current)
            raise ApiError(
                409, "completion_in_progress", "This link is being used in another window."
            )
        try:
            changed = await self._send_profile(claimed, fields) if fields else []
        except ApiError:
            await self.links.update(
                link.org_id,
                link.id,
                LinkCondition({LinkStatus.PENDING}, claim_id=claim_id),
                {"claim_id": None, "claimed_until": None},
            )
            raise
        changes = list(claimed.changes or [])
        if changed:
            changes = _added(changes, "profile_updated")
        now = self.clock()
        done = await self.links.update(
            link.org_id,
            link.id,
            LinkCondition({LinkStatus.PENDING}, claim_id=claim_id),
            {
                "status": LinkStatus.COMPLETED,
                "completed_at": now,
                "updated_at": now,
                "changes": changes,
                "profile_fields": changed,
                "claim_id": None,
                "claimed_until": None,
                "last_error": None,
                "completed_via": "callback",
            },
        )
        if done is None:
            raise ApiError(409, "link_completed", "This update link has been used already.")
        result = {"changes": changes, "profileFields": changed}
        data = {**link_data(done), "type": "update", "result": result}
        data |= {"completedVia": "callback", "wabaId": done.waba_id}
        data["phoneNumberId"] = done.phone_number_id
        await announce(self.webhooks, done, "completed", data)
        return {
            "status": "success",
            "redirectUrl": await self._return_url(done),
            "phoneNumberMasked": masked_phone(done.phone_number),
            "changes": changes,
        }

    async def _return_url(self, link: OnboardingLink) -> str | None:
        """``redirectUrl`` with ``status=success``, and ``verification=pending`` when the
        end-user left the code for later, as an onboarding link's page does."""
        phone = await self.storage.get_phone(link.phone_number_id) if link.phone_number_id else None
        if phone is not None and phone.status is PhoneStatus.PENDING_VERIFICATION:
            return later_url(link)
        return redirect_url(link, ok=True)

    async def _send_profile(self, link: OnboardingLink, fields: dict[str, Any]) -> list[str]:
        """The fields whose value differs from Meta's, sent; their names."""
        assert link.phone_number_id is not None
        current = await self.profiles.get(link.org_id, link.phone_number_id, livemode=link.livemode)
        different = {k: v for k, v in fields.items() if not _same(current.get(k), v)}
        if different:
            await self.profiles.update(
                link.org_id, link.phone_number_id, different, livemode=link.livemode
            )
        return sorted(different)


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
