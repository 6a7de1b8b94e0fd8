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
   completed, exactly once: not while steps 1 or 2 remain (409 ``update_step_required``).

Steps 1 and 2 run in edge_onboard/onboarding/update_signup.py. The link stays pending
until the last step; what changed on the way is recorded on the link as it happens
(``changes``), so its result says so even if the end-user stops early. Every step that
writes ``changes`` holds the link's claim and reads the link under it: none is lost.
The page reaches these steps with a pass (as the verification step does): an HMAC over
the link, its target and an expiry, sent in a header a cross-site page cannot send.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.validation import UUID_RE
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.completion import Finish, Outcome
from edge_onboard.onboarding.lifecycle import announce, link_data
from edge_onboard.onboarding.links import LinkService, refuse_unless_pending, with_change
from edge_onboard.onboarding.page_verification import (
    CLAIM_TTL,
    PASS_TTL,
    later_url,
    read_pass,
)
from edge_onboard.onboarding.page_verification import step as verification_step
from edge_onboard.onboarding.profile import FIELDS, ProfileService, parse_patch
from edge_onboard.onboarding.returns import masked_phone, redirect_url
from edge_onboard.onboarding.signup_steps import SignupFailed
from edge_onboard.onboarding.update_signup import UpdateSignup
from edge_onboard.storage import (
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
# The profile fields the page's form offers (the category is the API's alone).
PAGE_FIELDS = ("about", "description", "address", "email", "websites")
# The steps that are an Embedded Signup again: the link cannot finish before them.
SIGNUP_STEPS = ("reconnect", "add_number")


def _signature(box: SecretBox, link_id: str, target: str, expires: int) -> str:
    return box.token(f"page-update:{link_id}:{target}:{expires}")


def _target_of(link: OnboardingLink) -> str:
    return link.phone_number_id or link.waba_id or ""


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
        # The signup steps (reconnect, add a number), run under the completion's claim.
        self.again = UpdateSignup(
            storage, clock, box, links, settings, meta, webhooks, verify_token
        )

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
        refuse_unless_pending(link)
        return link

    async def allowed(self, link_id: str, token: str | None) -> OnboardingLink:
        """The pending update link the pass was made for, or 404/403/409/410."""
        link = await self._pending(link_id)
        given = read_pass(token)
        valid = (
            given is not None
            and given[0] > self.clock().timestamp()
            and hmac.compare_digest(
                given[1].encode(),
                _signature(self.box, link.id, _target_of(link), given[0]).encode(),
            )
        )
        if not valid:
            raise ApiError(
                403,
                "update_pass_invalid",
                "This page can no longer update the number; reload it or ask for a new link.",
            )
        return link

    # What the page shows

    async def start(self, link_id: str) -> dict[str, Any]:
        """The page's first call: its pass and the steps the number needs now."""
        return await self.plan(await self._pending(link_id))

    async def target(self, link: OnboardingLink) -> tuple[Waba | None, Phone | None]:
        """The link's WABA and number as they stand now. A WABA-only link whose account
        has a number now (added by another link, or by Meta's sync) is that number's."""
        waba = await self.storage.get_waba(link.waba_id) if link.waba_id else None
        if link.phone_number_id:
            return waba, await self.storage.get_phone(link.phone_number_id)
        numbers = await self.storage.phones_of_wabas([waba.id]) if waba is not None else []
        return waba, min(numbers, key=lambda p: (p.created_at, p.id), default=None)

    @staticmethod
    def _steps(waba: Waba | None, phone: Phone | None) -> list[str]:
        """The steps the number needs, in order, from its current state."""
        steps: list[str] = []
        if (waba is not None and waba.status == "disconnected") or (
            phone is not None and phone.status is PhoneStatus.DISCONNECTED
        ):
            steps.append("reconnect")
        elif phone is None:
            steps.append("add_number")
        if phone is not None and phone.status is PhoneStatus.PENDING_VERIFICATION:
            steps.append("verify")
        steps.append("profile")
        return steps

    async def plan(self, link: OnboardingLink) -> dict[str, Any]:
        """The steps the link's number needs, with what the page shows for them."""
        now = self.clock()
        waba, phone = await self.target(link)
        if phone is not None and link.phone_number_id is None:
            # The account's number now: the link's from here on (its pass, its result).
            link = await self._adopt(link, phone) or link
        steps = self._steps(waba, phone)
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
            # The verification pass is for the link's own number.
            plan["verification"] = verification_step(self.box, now, link, phone)
        if phone is not None and "reconnect" not in steps:
            try:
                profile = await self.profiles.get(link.org_id, phone.id, livemode=link.livemode)
            except ApiError as exc:  # the form still works: Meta's answer is read again on save
                log.warning("update link %s: profile unreadable: %s", link.id, exc.message)
            else:
                plan["profile"] = {name: profile.get(name) for name in FIELDS}
        return plan

    async def _adopt(self, link: OnboardingLink, phone: Phone) -> OnboardingLink | None:
        return await self.links.update(
            link.org_id,
            link.id,
            LinkCondition({LinkStatus.PENDING}),
            {"phone_number_id": phone.id, "phone_number": phone.phone_number},
        )

    # Embedded Signup again (from CompletionService.claim_and_complete, under its claim)

    async def signup(
        self, link: OnboardingLink, claim_id: str, report: Finish, token: str | None
    ) -> Outcome:
        """Restore access to the link's WABA, or add a number to it: refused (nothing
        recorded) unless the signup ended on that same WABA, or when the number needs no
        signup (it is connected)."""
        waba, phone = await self.target(link)
        if waba is None:
            raise SignupFailed(409, "link_not_pending", "This link's account is gone.")
        if report.waba_id != waba.meta_waba_id:
            raise SignupFailed(
                422,
                "waba_mismatch",
                "The signup ended on another WhatsApp Business Account than the one this "
                "link updates.",
            )
        if not any(step in SIGNUP_STEPS for step in self._steps(waba, phone)):
            # Nothing to restore or add: the page goes on to its other steps.
            raise SignupFailed(
                409, "update_not_needed", "This number is connected: it needs no new signup."
            )
        updated, shown = await self.again.run(link, claim_id, report, token, waba, phone)
        return Outcome(
            200,
            {
                "status": "success",
                "redirectUrl": None,
                "phoneNumberMasked": masked_phone(shown.phone_number if shown else None),
                "update": await self.plan(updated),
            },
        )

    # The last step: the profile, then the link completed

    async def finish(self, link: OnboardingLink, body: dict[str, Any]) -> dict[str, Any]:
        """Send Meta the profile fields that differ from what it has, then complete the
        link exactly once (two tabs racing: one completes, the other is told). Refused
        (409) while the number still needs its signup (reconnect, add a number)."""
        fields = _page_profile(body)
        waba, phone = await self.target(link)
        needed = [step for step in self._steps(waba, phone) if step in SIGNUP_STEPS]
        if needed or phone is None:
            raise ApiError(
                409,
                "update_step_required",
                f"The number needs its step '{needed[0] if needed else 'add_number'}' "
                "before the link can finish.",
            )
        claimed, claim_id = await self.links.claim(link, CLAIM_TTL)
        try:
            changed = await self._send_profile(claimed, phone, fields) if fields else []
        except ApiError:
            await self.links.update(
                link.org_id,
                link.id,
                LinkCondition({LinkStatus.PENDING}, claim_id=claim_id),
                {"claim_id": None, "claimed_until": None},
            )
            raise
        # Read under the claim, which every writer of ``changes`` holds: none is lost.
        changes = list(claimed.changes or [])
        if changed:
            changes = with_change(changes, "profile_updated")
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
                # A WABA-only link whose account has a number now: the result names it.
                "phone_number_id": phone.id,
                "phone_number": phone.phone_number,
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

    async def _send_profile(
        self, link: OnboardingLink, phone: Phone, fields: dict[str, Any]
    ) -> list[str]:
        """The fields whose value differs from Meta's, sent; their names."""
        current = await self.profiles.get(link.org_id, phone.id, livemode=link.livemode)
        different = {k: v for k, v in fields.items() if not _same(current.get(k), v)}
        if different:
            await self.profiles.update(link.org_id, phone.id, different, livemode=link.livemode)
        return sorted(different)


def _page_profile(body: dict[str, Any]) -> dict[str, Any]:
    """The profile fields the page's finish sends (``{"profile"?: {…}}``, null read as
    not given), checked: an object of the form's fields, within Meta's limits."""
    unknown = sorted(set(body) - FINISH_FIELDS)
    if unknown:
        raise invalid(
            f"Received unknown parameter: {unknown[0]}", param=unknown[0], code="unknown_parameter"
        )
    given = body.get("profile")
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise invalid("'profile' must be an object.", param="profile")
    other = sorted(set(given) - set(PAGE_FIELDS))
    if other:
        raise invalid(
            f"Received unknown parameter: {other[0]} (this page changes {', '.join(PAGE_FIELDS)}).",
            param=other[0],
            code="unknown_parameter",
        )
    return parse_patch(given) if given else {}
