"""Finishing a signup: the hosted page's callback, exactly once per link.

Concurrent callbacks race for a claim on the link (a conditional update in the
store); the winner does the Meta side and then writes the WABA, the phone and the
completed link in one transaction. Any failure releases the claim, records
``lastError`` and leaves the link pending, so the end-user can try again; nothing
half-made becomes visible.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from edge_onboard.config import Settings
from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.validation import UUID_RE
from edge_onboard.meta.graph import PhoneInfo
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.connect import (
    StepFailed,
    connected_data,
    phone_record,
    record_id,
    subscribe,
)
from edge_onboard.onboarding.lifecycle import announce, link_data, once_id
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.page_verification import CLAIM_TTL
from edge_onboard.onboarding.page_verification import step as verification_step
from edge_onboard.onboarding.reports import Abandon, parse_abandon
from edge_onboard.onboarding.returns import GONE, dead_end_url, masked_phone, redirect_url
from edge_onboard.onboarding.signup_steps import (
    SignupFailed,
    connect_number,
    granted_numbers,
    step_failed,
)
from edge_onboard.storage import (
    Completion,
    LinkCondition,
    LinkStatus,
    OnboardingLink,
    Phone,
    PhoneStatus,
    Storage,
    Waba,
)
from edge_onboard.webhooks.endpoints import WebhookService, new_event, plan_deliveries

log = logging.getLogger("edge_onboard.onboarding.completion")

# Embedded Signup v4's finish events (meta-embedded-signup facts).
FINISH_EVENTS = frozenset(
    {
        "FINISH",
        "FINISH_ONLY_WABA",
        "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
        "FINISH_OBO_MIGRATION",
        "FINISH_GRANT_ONLY_API_ACCESS",
    }
)
COEXISTENCE = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
ONLY_WABA = "FINISH_ONLY_WABA"
META_ID = re.compile(r"^[0-9]{1,32}\Z")
CALLBACK_FIELDS = frozenset({"code", "phoneNumberId", "wabaId", "businessId", "event", "error"})
SESSION_FIELDS = frozenset({"event", "wabaId", "phoneNumberId", "businessId", "sessionId"})
SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")
# An update link's signup, run under the claim instead of the completion (set by the
# assembly: edge_onboard/onboarding/updates.py, which builds on this module).
UpdateSignup = Callable[["OnboardingLink", str, "Finish", "str | None"], Awaitable["Outcome"]]


@dataclasses.dataclass(frozen=True, slots=True)
class Finish:
    code: str
    waba_id: str
    phone_number_id: str | None
    business_id: str | None
    event: str


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: dict[str, Any]


def parse_callback(body: Mapping[str, Any]) -> Finish | Abandon:
    """The page's report: Meta's ids and the code, or why the user did not finish."""
    v.reject_unknown(body, CALLBACK_FIELDS)
    if body.get("error") is not None:
        return parse_abandon(body["error"])
    code = v.string(body, "code", min_length=1, max_length=4096, required=True)
    waba_id = v.string(
        body, "wabaId", max_length=32, required=True, pattern=META_ID, hint="a Meta id is digits"
    )
    phone_id = v.string(
        body, "phoneNumberId", max_length=32, pattern=META_ID, hint="a Meta id is digits"
    )
    business_id = v.string(
        body, "businessId", max_length=32, pattern=META_ID, hint="a Meta id is digits"
    )
    event = body.get("event") or "FINISH"
    if not isinstance(event, str) or event.upper() not in FINISH_EVENTS:
        raise invalid(f"'event' must be one of {', '.join(sorted(FINISH_EVENTS))}.", param="event")
    assert code is not None and waba_id is not None
    return Finish(code, waba_id, phone_id, business_id, event.upper())


class CompletionService:
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
    ) -> None:
        self.webhooks = webhooks
        self.storage = storage
        self.clock = clock
        self.box = box
        self.links = links
        self.settings = settings
        # A link runs against its mode's Meta: the fake for test links (edge_onboard/meta/modes.py).
        self.meta = meta
        self.update_signup: UpdateSignup | None = None

    def verify_token(self, phone_id: str) -> str:
        """The token Meta must echo in the webhook handshake for this phone."""
        configured = self.settings.meta_verify_token
        return configured.reveal() if configured else self.box.token(f"verify:{phone_id}")

    async def handle(self, link_id: str, body: Mapping[str, Any]) -> Outcome:
        link = await self.links.load(None, link_id) if UUID_RE.match(link_id) else None
        if link is None:
            return _error(404, "link_not_found", "This onboarding link does not exist.", None)
        refusal = self._state_refusal(link)
        if refusal is not None:
            return refusal
        report = parse_callback(body)
        if isinstance(report, Abandon):
            return await self._abandon(link, report)
        if self.meta.graph(link.livemode) is None:
            return _error(
                503, "meta_not_configured", "No Meta app is configured for this service.", None
            )

        return await self.claim_and_complete(link, report, None)

    async def claim_and_complete(
        self, link: OnboardingLink, report: Finish, token: str | None
    ) -> Outcome:
        """Complete ``link`` exactly once: claim it, run the steps, release it on failure.
        With ``token`` (a recovery: the business token came from the system user) there
        is no code to exchange."""
        now = self.clock()
        claim_id = str(uuid.uuid4())
        claimed = await self.links.update(
            link.org_id,
            link.id,
            LinkCondition(statuses={LinkStatus.PENDING}, unexpired_at=now, unclaimed_at=now),
            {"claim_id": claim_id, "claimed_until": now + CLAIM_TTL},
        )
        if claimed is None:
            current = await self.links.load(None, link.id, fresh=True)
            assert current is not None
            return self._state_refusal(current) or _error(
                409,
                "completion_in_progress",
                "This signup is already being completed in another window.",
                None,
            )
        try:
            if claimed.type == "update":
                if self.update_signup is None:
                    raise SignupFailed(503, "internal_error", "Update links are not set up.")
                return await self.update_signup(claimed, claim_id, report, token)
            return await self._complete(claimed, claim_id, report, token)
        except SignupFailed as exc:
            await self._release(claimed, claim_id, exc.code, exc.message)
            return _error(
                exc.status,
                exc.code,
                exc.message,
                redirect_url(claimed, ok=False, code=exc.code, message=exc.message),
            )
        except BaseException:
            await self._release(
                claimed, claim_id, "internal_error", "Something went wrong on our side."
            )
            raise

    async def record_session(self, link_id: str, body: Mapping[str, Any]) -> None:
        """Keep what Meta's session message said on a pending link (``session_report``):
        never a completion, only what recovery matches Meta's account_update against."""
        link = await self.links.load(None, link_id) if UUID_RE.match(link_id) else None
        if link is None:
            raise ApiError(404, "link_not_found", "This onboarding link does not exist.")
        refusal = self._state_refusal(link)
        if refusal is not None:
            error = refusal.body["error"]
            raise ApiError(refusal.status_code, error["code"], error["message"])
        v.reject_unknown(body, SESSION_FIELDS)
        event = body.get("event")
        if not isinstance(event, str) or event.upper() not in FINISH_EVENTS:
            raise invalid(
                f"'event' must be one of {', '.join(sorted(FINISH_EVENTS))}.", param="event"
            )
        report: dict[str, Any] = {"event": event.upper(), "at": self.clock()}
        for name, stored, pattern, required in (
            ("wabaId", "waba_id", META_ID, True),
            ("phoneNumberId", "phone_number_id", META_ID, False),
            ("businessId", "business_id", META_ID, False),
            ("sessionId", "session_id", SESSION_ID, False),
        ):
            value = v.string(body, name, max_length=128, required=required, pattern=pattern)
            if value is not None:
                report[stored] = value
        now = self.clock()
        await self.links.update(
            link.org_id,
            link.id,
            LinkCondition(statuses={LinkStatus.PENDING}),
            {"session_report": report, "updated_at": now},
        )

    def _state_refusal(self, link: OnboardingLink) -> Outcome | None:
        # The page sends the end-user on (refreshUrl, else redirectUrl), never to a dead end.
        for status, reason in ((LinkStatus.DELETED, "deleted"), (LinkStatus.EXPIRED, "expired")):
            if link.status is status:
                return _error(410, f"link_{reason}", GONE[reason], dead_end_url(link, reason))
        if link.status is LinkStatus.COMPLETED:
            return _error(
                409,
                "link_completed",
                "A WhatsApp number is already connected with this link.",
                redirect_url(link, ok=True),
            )
        return None

    async def _abandon(self, link: OnboardingLink, report: Abandon) -> Outcome:
        now = self.clock()
        # Recorded only while nobody is completing the link: a stale tab cannot overwrite it.
        await self.links.update(
            link.org_id,
            link.id,
            LinkCondition(statuses={LinkStatus.PENDING}, unclaimed_at=now),
            {"last_error": report.last_error(now), "updated_at": now},
        )
        code, message = report.reason, report.message
        await announce(self.webhooks, link, "failed", {"code": code, "message": message})
        return _error(422, code, message, redirect_url(link, ok=False, code=code, message=message))

    async def _release(self, link: OnboardingLink, claim_id: str, code: str, message: str) -> None:
        now = self.clock()
        with anyio.CancelScope(shield=True):
            await self.links.update(
                link.org_id,
                link.id,
                LinkCondition(statuses={LinkStatus.PENDING}, claim_id=claim_id),
                {
                    "claim_id": None,
                    "claimed_until": None,
                    "last_error": {"code": code, "message": message[:500], "at": now},
                    "updated_at": now,
                },
            )
        log.info("signup failed link=%s code=%s", link.id, code)
        with anyio.CancelScope(shield=True):
            await announce(self.webhooks, link, "failed", {"code": code, "message": message[:500]})

    async def _complete(
        self, link: OnboardingLink, claim_id: str, report: Finish, token: str | None
    ) -> Outcome:
        graph = self.meta.graph(link.livemode)
        assert graph is not None
        via = "callback" if token is None else "recovery"
        token, numbers = await granted_numbers(
            graph,
            report.waba_id,
            report.code,
            token,
            refusal=SignupFailed(
                422,
                "waba_not_granted",
                "The WhatsApp Business Account reported by the signup was not "
                "shared with this app.",
            ),
        )
        info = _pick_phone(numbers, report)
        # A WhatsApp Business app number: the page's event says so, or Meta's is_on_biz_app.
        coexistence = report.event == COEXISTENCE or (info is not None and info.is_on_biz_app)
        if coexistence and "business_app" not in (link.connection_types or ["cloud_api"]):
            raise SignupFailed(
                422,
                "connection_type_not_allowed",
                "This link does not accept WhatsApp Business app numbers.",
            )
        try:
            await subscribe(graph, report.waba_id, token, coexistence=coexistence)
        except StepFailed as exc:
            raise step_failed(exc.error, exc.code, exc.message) from exc

        org = link.org_id
        waba_record_id = record_id("waba", org, report.waba_id)
        phone: Phone | None = None
        if info is not None:
            phone = await self._connect_phone(link, claim_id, token, report, info, coexistence)

        now = self.clock()
        webhook = None
        if link.webhook_url and link.webhook_secret_enc and link.webhook_events:
            webhook = self.webhooks.build(
                org,
                link.webhook_url,
                link.webhook_events,
                self.box.decrypt(link.webhook_secret_enc, context=link.id),
                waba_id=waba_record_id,
                onboarding_link_id=link.id,
                livemode=link.livemode,
            )
        events = [
            new_event(
                org,
                "waba.connected",
                {
                    "onboardingLinkId": link.id,
                    "externalId": link.external_id,
                    "wabaId": waba_record_id,
                    "metaWabaId": report.waba_id,
                },
                waba_record_id,
                self.clock,
                livemode=link.livemode,
            )
        ]
        if phone is not None:
            events.append(
                new_event(
                    org,
                    "phone_number.connected",
                    connected_data(
                        phone,
                        waba_id=waba_record_id,
                        link_id=link.id,
                        external_id=link.external_id,
                    ),
                    waba_record_id,
                    self.clock,
                    livemode=link.livemode,
                )
            )
        done_data = {**link_data(link), "status": "completed", "completedVia": via}
        done_data |= {"type": link.type, "result": None}  # an onboarding link's
        done_data["wabaId"] = waba_record_id
        done_data["phoneNumberId"] = phone.id if phone else None
        for kind in ("completed", "recovered") if via == "recovery" else ("completed",):
            events.append(
                new_event(
                    org,
                    f"onboarding_link.{kind}",
                    done_data,
                    waba_record_id,
                    self.clock,
                    livemode=link.livemode,
                )
            )
            events[-1].id = once_id(link.id, kind)
        # The link's own webhook comes first, so it gets these events too when it asked.
        endpoints = [webhook] if webhook else []
        endpoints += await self.storage.active_webhooks(org, livemode=link.livemode)
        deliveries = [d for event in events for d in plan_deliveries(event, endpoints)]
        completion = Completion(
            org_id=org,
            link_id=link.id,
            claim_id=claim_id,
            waba=Waba(
                id=waba_record_id,
                org_id=org,
                meta_waba_id=report.waba_id,
                meta_business_id=report.business_id,
                access_token_enc=self.box.encrypt(token, context=f"waba:{org}:{report.waba_id}"),
                created_at=now,
                updated_at=now,
                livemode=link.livemode,
            ),
            phone=phone,
            link_changes={
                "status": LinkStatus.COMPLETED,
                "completed_at": now,
                "updated_at": now,
                "phone_number": phone.phone_number if phone else None,
                "is_phone_registered": phone.is_registered if phone else False,
                "last_error": None,
                "completed_via": via,
                "recovery": None,
                "claim_id": None,
                "claimed_until": None,
                "pending_pin_enc": None,
                "pending_pin_phone": None,
                "outgoing_webhook_id": webhook.id if webhook else None,
            },
            webhook=webhook,
            events=events,
            deliveries=deliveries,
        )
        done = await self.links.complete(completion)
        if done is None:
            raise SignupFailed(
                409, "completion_in_progress", "This signup was completed in another window."
            )
        log.info(
            "link completed link=%s phone=%s status=%s",
            link.id,
            done.phone.id if done.phone else None,
            done.phone.status.value if done.phone else "no number",
        )
        await self.webhooks.engine.dispatch(deliveries)
        body: dict[str, Any] = {
            "status": "success",
            "redirectUrl": redirect_url(done.link, ok=True),
            # For the page's success screen; the full number is the customer's.
            "phoneNumberMasked": masked_phone(done.link.phone_number),
        }
        if done.phone is not None and done.phone.status is PhoneStatus.PENDING_VERIFICATION:
            # The page goes on to the code instead of leaving (only this page gets the pass).
            body["verification"] = verification_step(self.box, now, done.link, done.phone)
        return Outcome(200, body)

    async def _connect_phone(
        self,
        link: OnboardingLink,
        claim_id: str,
        token: str,
        report: Finish,
        info: PhoneInfo,
        coexistence: bool,
    ) -> Phone:
        """The number's Graph steps, and its record (written with the completion)."""
        graph = self.meta.graph(link.livemode)
        assert graph is not None
        org = link.org_id
        existing = await self.storage.find_phone_by_meta_id(org, info.id)
        # Ids derived from the Meta ids within the organisation: a number connected again
        # gets the same record (and webhook URL), even when two signups race.
        phone_id = existing.id if existing else record_id("phone", org, info.id)
        pin_context = f"phone:{org}:{info.id}"

        async def pin_for() -> str:
            # A PIN an earlier attempt registered this number with (it failed later on).
            if link.pending_pin_phone == info.id and link.pending_pin_enc:
                return self.box.decrypt(link.pending_pin_enc, context=pin_context)
            pin = f"{secrets.randbelow(10**6):06d}"
            # Kept before Meta hears it, so no later failure can lose the number's PIN.
            now = self.clock()
            kept = await self.links.update(
                org,
                link.id,
                LinkCondition(statuses={LinkStatus.PENDING}, claim_id=claim_id),
                {
                    "pending_pin_enc": self.box.encrypt(pin, context=pin_context),
                    "pending_pin_phone": info.id,
                    "claimed_until": now + CLAIM_TTL,
                },
            )
            if kept is None:
                raise SignupFailed(
                    409,
                    "completion_in_progress",
                    "This signup is being completed in another window.",
                )
            return pin

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
        now = self.clock()
        pin_enc = self.box.encrypt(setup.pin, context=pin_context) if setup.pin else None
        if (
            pin_enc is None
            and setup.registration_error is None
            and link.pending_pin_phone == info.id
        ):
            # An earlier attempt registered it, then failed: its PIN is the number's PIN.
            pin_enc = link.pending_pin_enc
        return phone_record(
            setup,
            info,
            phone_id=phone_id,
            org_id=org,
            waba_id="",  # the completion sets it to the WABA record's id
            meta_waba_id=report.waba_id,
            onboarding_link_id=link.id,
            pin_enc=pin_enc or (existing.pin_enc if existing else None),
            now=now,
            livemode=link.livemode,
        )


def _pick_phone(numbers: list[PhoneInfo], report: Finish) -> PhoneInfo | None:
    """The number the signup handed over, or None: v4 lets a business finish without
    one (FINISH_ONLY_WABA, or a WABA with none, or several and no choice reported; a
    number added later is connected by POST /v1/wabas/{id}/phones/sync)."""
    if report.event == ONLY_WABA:
        return None
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


def _error(status: int, code: str, message: str, redirect: str | None) -> Outcome:
    return Outcome(
        status,
        {"status": "error", "redirectUrl": redirect, "error": {"code": code, "message": message}},
    )
