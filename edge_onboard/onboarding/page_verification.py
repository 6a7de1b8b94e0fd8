"""The hosted page's verification step: a signup that ends with an unverified number goes
on, on our page, to the code (SMS or voice) and the registration, through the same Meta
calls as the API's ``/v1/phones/{id}/verification-code`` and ``/verify``.

The page reaches them with a pass it got in the callback's answer: an HMAC over the link,
its number and an expiry (``SecretBox.token``), so it is worth nothing for another link or
after ``PASS_TTL``, and nothing needs to be stored. It travels in a request header, which a
cross-site form or image cannot send (and a cross-site ``fetch`` would need a preflight we
never answer); the routes also refuse another origin. The routes give each link a budget
of its own (``LINK_LIMIT``) on top of the public one, so the code cannot be guessed
through it.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

import anyio

from edge_onboard.core import i18n
from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.ratelimit import Limit
from edge_onboard.core.validation import UUID_RE, ascii_digits
from edge_onboard.onboarding.links import (
    LinkService,
    refuse_if_gone,
    refuse_unless_pending,
    with_change,
)
from edge_onboard.onboarding.returns import masked_phone, redirect_url
from edge_onboard.onboarding.verification import PhoneVerification
from edge_onboard.storage import LinkCondition, LinkStatus, OnboardingLink, Phone, PhoneStatus

PASS_TTL = timedelta(minutes=30)
# How long a step may hold its link (a signup, an update link's verification or finish):
# a signup's seven Graph calls, each up to three tries of 15 s plus backoff, fit in it (it
# is renewed before registration); a crashed holder frees the link when it lapses.
CLAIM_TTL = timedelta(minutes=5)
# Meta sends one code at a time and limits how often: the page offers "send again" after it.
RESEND_AFTER = 60
# Per link: five tries at once, then one every ten seconds (codes are six digits).
LINK_LIMIT = Limit(rate=0.1, burst=5)
HEADER = "x-signup-pass"
# The page's locales as Meta's request_code names its languages (its template languages).
META_LANGUAGE = {
    "ar_AR": "ar",
    "de_DE": "de",
    "es_LA": "es_MX",
    "fr_FR": "fr",
    "hi_IN": "hi",
    "id_ID": "id",
    "it_IT": "it",
    "tr_TR": "tr",
}


def _signature(box: SecretBox, link_id: str, phone_id: str, expires: int) -> str:
    return box.token(f"page-verification:{link_id}:{phone_id}:{expires}")


def step(box: SecretBox, now: datetime, link: OnboardingLink, phone: Phone) -> dict[str, Any]:
    """What the page needs for the step of a link whose number still needs its code: the
    pass, the masked number, and where "later" leads."""
    expires = int((now + PASS_TTL).timestamp())
    return {
        "token": f"{expires}.{_signature(box, link.id, phone.id, expires)}",
        "phoneNumberMasked": masked_phone(phone.phone_number),
        "laterUrl": later_url(link),
        "resendAfter": RESEND_AFTER,
    }


def later_url(link: OnboardingLink) -> str | None:
    """``redirectUrl`` with ``status=success&verification=pending``."""
    return redirect_url(link, ok=True, extra=[("verification", "pending")])


class PageVerification:
    def __init__(
        self, verification: PhoneVerification, links: LinkService, box: SecretBox, clock: Clock
    ) -> None:
        self.verification = verification
        self.links = links
        self.box = box
        self.clock = clock

    async def allowed(self, link_id: str, token: str | None) -> OnboardingLink:
        """The link the pass was made for, while it may still verify: else 404 (unknown),
        410 (deleted or expired), 409 (an update link used up: its result is final) or
        403 (no valid pass for this link and number)."""
        # Fresh: the page asks right after the callback completed the link.
        link = await self.links.load(None, link_id, fresh=True) if UUID_RE.match(link_id) else None
        if link is None:
            raise ApiError(404, "link_not_found", "This onboarding link does not exist.")
        # An onboarding link's page verifies after completing it; an update link's page
        # verifies on the way, while the link is pending (edge_onboard/onboarding/updates.py).
        if link.type == "update":
            refuse_unless_pending(link)
        else:
            refuse_if_gone(link)
        given = read_pass(token)
        valid = (
            (link.status is LinkStatus.COMPLETED or link.type == "update")
            and link.phone_number_id is not None
            and given is not None
            and given[0] > self.clock().timestamp()
            and hmac.compare_digest(
                given[1].encode(),
                _signature(self.box, link.id, link.phone_number_id, given[0]).encode(),
            )
        )
        if not valid:
            raise ApiError(
                403,
                "verification_pass_invalid",
                "This page can no longer verify the number; reload it or ask for a new link.",
            )
        return link

    async def request_code(self, link: OnboardingLink, body: dict[str, Any]) -> dict[str, Any]:
        """Send the code (``{"method": "sms"|"voice", "locale"?}``, ``locale`` the page's),
        in the language the page speaks."""
        assert link.phone_number_id is not None
        v.reject_unknown(body, {"method", "locale"})
        locale = body.get("locale") or link.locale or i18n.DEFAULT
        if locale not in i18n.SUPPORTED:
            raise invalid(f"'locale' must be one of {', '.join(i18n.SUPPORTED)}.", param="locale")
        meta_body = {"method": body.get("method"), "locale": META_LANGUAGE.get(locale, locale)}
        await self.verification.request_code(
            link.org_id, link.phone_number_id, meta_body, livemode=link.livemode
        )
        return {"status": "sent", "resendAfter": RESEND_AFTER}

    async def verify(self, link: OnboardingLink, body: dict[str, Any]) -> dict[str, Any]:
        """Check the code and register the number; the answer says where the page goes."""
        assert link.phone_number_id is not None
        if link.type == "update":
            phone = await self._verify_update(link, body)
        else:
            phone = await self.verification.verify(
                link.org_id, link.phone_number_id, body, livemode=link.livemode
            )
        if phone.status is not PhoneStatus.CONNECTED:
            raise ApiError(
                422,
                "registration_failed",
                "The number is verified, but Meta did not register it.",
            )
        return {
            "status": "success",
            "redirectUrl": redirect_url(link, ok=True),
            "phoneNumberMasked": masked_phone(phone.phone_number),
        }

    async def _verify_update(self, link: OnboardingLink, body: dict[str, Any]) -> Phone:
        """An update link's code, checked under the link's claim, then ``verified`` noted
        on its result in the same write that lets it go: a finish in another tab waits for
        it (409 ``completion_in_progress``) rather than completing the link without it."""
        assert link.phone_number_id is not None
        claimed, claim_id = await self.links.claim(link, CLAIM_TTL)
        release: dict[str, Any] = {"claim_id": None, "claimed_until": None}
        try:
            phone = await self.verification.verify(
                link.org_id, link.phone_number_id, body, livemode=link.livemode
            )
            release |= {
                "changes": with_change(claimed.changes, "verified"),
                "updated_at": self.clock(),
            }
            return phone
        finally:
            with anyio.CancelScope(shield=True):
                await self.links.update(
                    link.org_id,
                    link.id,
                    LinkCondition({LinkStatus.PENDING}, claim_id=claim_id),
                    release,
                )


def read_pass(token: str | None) -> tuple[int, str] | None:
    """A page pass's expiry and signature, ``"{expires}.{signature}"``; None if it is not
    one (the expiry ASCII digits only: ``int()`` refuses a "²" that ``isdigit`` takes)."""
    expires, _, signature = (token or "").partition(".")
    if not ascii_digits(expires, most=12):
        return None
    return int(expires), signature
