"""Signups that finished at Meta but never came back, and what Meta says about accounts
later (the app-level webhook ``/webhook/meta``), plus the reconciliation pass.

Recovery: the hosted page reports Meta's session message before the code
(``session_report``). When Meta's ``account_update`` PARTNER_ADDED (or
PARTNER_APP_INSTALLED) names that WABA and no callback completed the link within
``EDGE_RECOVERY_GRACE_SECONDS``, the link is completed with a business token fetched
through the partner's system user (``EDGE_META_SYSTEM_USER_TOKEN``), by the same claim
and steps as a callback, so a late callback and a recovery still make one completion.
Without that token the link is marked recoverable with Meta's ids, and
``POST /v1/onboarding-links/{id}/recover`` finishes it once one is configured.

Meta's grant is kept (``PartnerGrant``) until it is settled, so one that arrives before
the page's session report, or meets a transient Meta error, is retried by ``reconcile``,
which ``serve`` and ``worker`` run every ``EDGE_RECONCILE_INTERVAL`` seconds and
``edge-onboard reconcile`` runs once. The same pass sends ``onboarding_link.expired`` and
removes events older than ``EDGE_EVENT_RETENTION_DAYS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import anyio
import orjson

from edge_onboard.config import Settings
from edge_onboard.core import redis_keys
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.errors import ApiError
from edge_onboard.meta.graph import GraphError
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.completion import CompletionService, Finish
from edge_onboard.onboarding.lifecycle import announce
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.phones import NOT_FROM_META, phone_view
from edge_onboard.storage import (
    DuplicateError,
    LinkCondition,
    LinkStatus,
    OnboardingLink,
    PartnerGrant,
    PhoneStatus,
    Storage,
    Waba,
)
from edge_onboard.webhooks.endpoints import WebhookService
from edge_onboard.webhooks.event_log import sweep_events

log = logging.getLogger("edge_onboard.onboarding.recovery")

_DIGEST = uuid.UUID("3e9a7c51-6f2d-4b8e-a0c4-9d1b2e3f4a5b")
# waba.updated and waba.disconnected keys Meta's typed notices fill (null when none does).
_NOT_TYPED: dict[str, Any] = {"metaField": None, "metaEvent": None, "change": None}
GRANT_EVENTS = frozenset({"PARTNER_ADDED", "PARTNER_APP_INSTALLED"})
ACCOUNT_EVENTS = frozenset(
    {"ACCOUNT_VIOLATION", "ACCOUNT_RESTRICTION", "ACCOUNT_DELETED", "DISABLED_UPDATE"}
)
# A grant no page reported within this long is given up (it was another partner's flow,
# or a signup made outside our pages).
GRANT_TTL = timedelta(hours=24)
BATCH = 100
MAX_BACKOFF = timedelta(minutes=30)


def _backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** min(attempts, 16)))


class Recovery:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        completion: CompletionService,
        links: LinkService,
        webhooks: WebhookService,
        meta: MetaModes,
        system_user_token: str | None,
        test_system_user_token: str,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.grace = timedelta(seconds=settings.recovery_grace)
        self.event_retention = timedelta(days=settings.event_retention_days)
        self.completion = completion
        self.links = links
        self.webhooks = webhooks
        self.meta = meta
        # Live links recover with the configured token; test links with the fake Meta's.
        self.system_user_token = system_user_token
        self.test_system_user_token = test_system_user_token

    def _token(self, livemode: bool) -> str | None:
        return self.system_user_token if livemode else self.test_system_user_token

    # Meta's account_update

    async def partner_added(
        self,
        waba_id: str,
        owner_business_id: str | None,
        event: str,
        *,
        livemode: bool | None = True,
    ) -> None:
        """``livemode``: the mode of the Meta that said it (None: EDGE_SANDBOX, either)."""
        grant = PartnerGrant(
            id=waba_id,
            owner_business_id=owner_business_id,
            event=event,
            received_at=self.clock(),
            livemode=livemode,
        )
        await self.storage.put_grant(grant)
        await self._settle(grant)

    async def partner_removed(
        self,
        waba_id: str,
        detail: dict[str, Any],
        *,
        livemode: bool | None = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The business took its access back: the WABA and its numbers are disconnected.
        ``extra``: the typed keys of Meta's notice (edge_onboard/meta/account_model.py)."""
        now = self.clock()
        for waba in await self.storage.wabas_by_meta_id(waba_id):
            if waba.status == "disconnected" or not _of_mode(waba.livemode, livemode):
                continue
            state = {"event": "PARTNER_REMOVED", "detail": detail, "at": isoformat(now)}
            event, deliveries = await self.webhooks.plan(
                waba.org_id,
                "waba.disconnected",
                {
                    "wabaId": waba.id,
                    "metaWabaId": waba.meta_waba_id,
                    **(extra or _NOT_TYPED),
                    "raw": detail,
                },
                waba_id=waba.id,
                livemode=waba.livemode,
            )
            updated = await self._update_waba(
                waba, {"status": "disconnected", "meta_state": state}, event, deliveries
            )
            if updated is None:
                continue
            for phone in await self.storage.phones_of_wabas([waba.id]):
                changes = {"status": PhoneStatus.DISCONNECTED, "updated_at": now}
                view = phone_view(phone) | {"status": PhoneStatus.DISCONNECTED.value}
                phone_event, phone_deliveries = await self.webhooks.plan(
                    phone.org_id,
                    "phone_number.updated",
                    {**view, "previousStatus": phone.status.value, **NOT_FROM_META},
                    waba_id=waba.id,
                    livemode=phone.livemode,
                )
                done = await self.storage.update_phone(
                    phone.id,
                    changes,
                    statuses=set(PhoneStatus) - {PhoneStatus.DISCONNECTED},
                    event=phone_event,
                    deliveries=phone_deliveries,
                )
                if done is not None:
                    await self.webhooks.engine.dispatch(phone_deliveries)

    async def account_changed(
        self,
        waba_id: str,
        event: str,
        detail: dict[str, Any],
        *,
        livemode: bool | None = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Anything Meta reports about the account (a restriction, violation, deletion,
        review, limits...): waba.updated, with ``extra`` (its typed keys), once however
        often Meta retries it (the event id is a digest of what it says)."""
        said = orjson.dumps({"event": event, "detail": detail}, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256(said).hexdigest()
        for waba in await self.storage.wabas_by_meta_id(waba_id):
            if not _of_mode(waba.livemode, livemode):
                continue
            state = {"event": event, "detail": detail, "at": isoformat(self.clock())}
            update, deliveries = await self.webhooks.plan(
                waba.org_id,
                "waba.updated",
                {
                    "wabaId": waba.id,
                    "metaWabaId": waba.meta_waba_id,
                    "status": waba.status,
                    "event": event,
                    **(extra or _NOT_TYPED),
                    "raw": detail,
                },
                waba_id=waba.id,
                livemode=waba.livemode,
            )
            update.id = "evt_" + uuid.uuid5(_DIGEST, f"{waba.id}:{digest}").hex
            for delivery in deliveries:
                delivery.event_id = update.id
            await self._update_waba(waba, {"meta_state": state}, update, deliveries)

    async def _update_waba(
        self, waba: Waba, changes: dict[str, Any], event: Any, deliveries: Any
    ) -> Waba | None:
        try:
            updated = await self.storage.update_waba(
                waba.id, changes, event=event, deliveries=deliveries
            )
        except DuplicateError:
            return None
        if updated is not None:
            await self.webhooks.engine.dispatch(deliveries)
        return updated

    # Recovery

    async def reconcile(self) -> dict[str, int]:
        """One pass: expiry events, every open grant, then events past their retention
        (edge_onboard/webhooks/event_log.py). Safe to run anywhere, any
        number of times at once: each step is a conditional write."""
        now = self.clock()
        expired = await self.storage.expire_due_links(now, BATCH)
        for link in expired:
            await announce(self.webhooks, link, "expired")
        settled = 0
        for grant in await self.storage.open_grants(now, BATCH):
            settled += await self._settle(grant)
        deleted = await sweep_events(self.storage, now - self.event_retention)
        return {"expired": len(expired), "grantsSettled": settled, "eventsDeleted": deleted}

    async def _settle(self, grant: PartnerGrant) -> int:
        """Recover what ``grant`` names, if the time has come; 1 when it is settled."""
        now = self.clock()
        candidates = [
            link
            for link in await self.storage.pending_links_by_session_waba(grant.id)
            if _of_mode(link.livemode, grant.livemode)
        ]
        links, ambiguous = await self._eligible(grant, candidates)
        if ambiguous:
            await self._close(grant, "ambiguous")
            return 1
        if not links:
            if now - grant.received_at > GRANT_TTL:
                await self._close(grant, "no_session_report")
                return 1
            return 0  # the page's report may still come (or the callback completes it)
        waiting = False
        for link in links:
            reported = (link.session_report or {}).get("at")
            if isinstance(reported, datetime) and now - reported < self.grace:
                waiting = True  # the callback may still land
                continue
            outcome = await self._recover(link, grant)
            if outcome == "retry":
                await self.storage.update_grant(
                    grant.id,
                    {
                        "attempts": grant.attempts + 1,
                        "retry_at": now
                        + min(MAX_BACKOFF, timedelta(seconds=5 * 2**grant.attempts)),
                    },
                )
                return 0
        if waiting:
            return 0
        await self._close(grant, "settled")
        return 1

    async def _eligible(
        self, grant: PartnerGrant, links: list[OnboardingLink]
    ) -> tuple[list[OnboardingLink], bool]:
        """The links ``grant``'s account may complete, and whether the reports are
        ambiguous. A session report is the page's word: anyone holding a link can send
        one naming any account. So a report never hands an account to an organisation
        other than the one already holding it; for an account nobody holds yet, reports
        from several organisations complete none (ambiguous: their end-users sign up
        again); and a report naming another business than Meta's grant is ignored."""
        business = grant.owner_business_id
        mine = [
            link
            for link in links
            if not business or (link.session_report or {}).get("business_id") in (None, business)
        ]
        holders = {
            waba.org_id
            for waba in await self.storage.wabas_by_meta_id(grant.id)
            if _of_mode(waba.livemode, grant.livemode)
        }
        if holders:
            kept = [link for link in mine if link.org_id in holders]
        elif len({link.org_id for link in mine}) > 1:
            log.warning(
                "recovery: account %s named by session reports of %d organisations; "
                "none completed (links %s)",
                grant.id,
                len({link.org_id for link in mine}),
                ", ".join(link.id for link in mine),
            )
            return [], True
        else:
            kept = mine
        refused = [link.id for link in links if link not in kept]
        if refused:
            log.debug("recovery: account %s not for links %s", grant.id, ", ".join(refused))
        return kept, False

    async def _close(self, grant: PartnerGrant, outcome: str) -> None:
        await self.storage.update_grant(grant.id, {"closed_at": self.clock(), "outcome": outcome})

    async def _recover(self, link: OnboardingLink, grant: PartnerGrant) -> str:
        """ "done", "failed" (recorded on the link), "recoverable" (no token), or "retry"."""
        graph, system_token = self.meta.graph(link.livemode), self._token(link.livemode)
        if graph is None or not system_token or not grant.owner_business_id:
            reason = "no_system_user_token" if not system_token else "no_owner_business_id"
            await self._mark_recoverable(link, grant, reason)
            return "recoverable"
        try:
            token = await graph.business_token(grant.owner_business_id, system_token)
        except GraphError as exc:
            log.warning("recovery of link %s: no business token: %s", link.id, exc)
            if exc.unreachable or exc.retryable:
                return "retry"
            await self._mark_recoverable(link, grant, f"token_refused_{exc.code}")
            return "failed"
        session = link.session_report or {}
        report = Finish(
            code="",
            waba_id=grant.id,
            phone_number_id=session.get("phone_number_id"),
            business_id=session.get("business_id") or grant.owner_business_id,
            event=str(session.get("event") or "FINISH"),
        )
        outcome = await self.completion.claim_and_complete(link, report, token)
        status = outcome.status_code
        log.info("recovery of link %s: %s", link.id, status)
        if status == 502:
            return "retry"
        return "done" if status in (200, 409, 410) else "failed"

    async def _mark_recoverable(self, link: OnboardingLink, grant: PartnerGrant, why: str) -> None:
        recovery = {
            "metaWabaId": grant.id,
            "metaBusinessId": grant.owner_business_id,
            "reason": why,
        }
        await self.links.update(
            link.org_id,
            link.id,
            LinkCondition(statuses={LinkStatus.PENDING}),
            {"recovery": recovery, "updated_at": self.clock()},
        )

    async def recover_link(self, org_id: str, link_id: str, *, livemode: bool) -> OnboardingLink:
        """``POST /v1/onboarding-links/{id}/recover``: finish a recoverable link now."""
        link = await self.links.get(org_id, link_id, livemode=livemode)
        if link.status is not LinkStatus.PENDING or link.recovery is None:
            raise ApiError(
                409,
                "link_not_recoverable",
                "Only a pending link that Meta reported as finished can be recovered.",
            )
        if not self._token(livemode) or self.meta.graph(livemode) is None:
            raise ApiError(
                409,
                "recovery_unavailable",
                "Set EDGE_META_SYSTEM_USER_TOKEN to recover signups.",
            )
        grant = PartnerGrant(
            id=str(link.recovery["metaWabaId"]),
            owner_business_id=link.recovery.get("metaBusinessId"),
            event="PARTNER_ADDED",
            received_at=self.clock(),
            livemode=livemode,
        )
        outcome = await self._recover(link, grant)
        if outcome == "retry":
            raise ApiError(502, "meta_unavailable", "Meta could not be reached; try again.")
        return await self.links.get(org_id, link_id, livemode=livemode)


async def reconcile_once(recovery: Recovery, redis: Any = None) -> dict[str, int] | None:
    """One reconciliation pass, under the Redis lock when there is Redis (another
    process holding it: None). Without Redis there is one process: no lock needed."""
    token = None
    if redis is not None:
        token = os.urandom(8).hex()
        try:
            got = await redis.set(
                redis_keys.RECONCILE_LOCK, token, nx=True, px=redis_keys.RECONCILE_LOCK_MS
            )
        except Exception as exc:  # Redis down: every step is conditional, run it anyway
            log.warning("reconcile: Redis lock unavailable (%s); running unlocked", exc)
            got, token = True, None
        if not got:
            return None
    try:
        return await recovery.reconcile()
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                if await redis.get(redis_keys.RECONCILE_LOCK) == token.encode():
                    await redis.delete(redis_keys.RECONCILE_LOCK)


async def reconcile_forever(recovery: Recovery, settings: Settings, redis: Any = None) -> None:
    """``reconcile_once`` every ``EDGE_RECONCILE_INTERVAL`` seconds until cancelled."""
    while True:
        await anyio.sleep(settings.reconcile_interval)
        try:
            await reconcile_once(recovery, redis)
        except Exception as exc:  # storage or Meta trouble: the next pass tries again
            log.warning("reconcile pass failed: %s", exc)


def _of_mode(livemode: bool, wanted: bool | None) -> bool:
    """Whether an object of ``livemode`` is one a Meta webhook of mode ``wanted`` may
    touch (None: EDGE_SANDBOX, where the fake Meta speaks for both modes)."""
    return wanted is None or livemode == wanted
