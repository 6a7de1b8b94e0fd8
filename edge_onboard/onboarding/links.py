"""Onboarding links: the create rules, the service over storage, and the public view."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson

from edge_onboard.core import i18n
from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid, not_found
from edge_onboard.core.hot import HotCache
from edge_onboard.core.urls import check_redirect_url, check_webhook_url
from edge_onboard.core.validation import UUID_RE
from edge_onboard.onboarding import prefill
from edge_onboard.onboarding.prefill import SAFE_KEY
from edge_onboard.onboarding.returns import GONE
from edge_onboard.storage import (
    Completed,
    Completion,
    LinkCondition,
    LinkFilter,
    LinkStatus,
    OnboardingLink,
    Storage,
)
from edge_onboard.storage.base import shown_status
from edge_onboard.storage.paging import Page, Window
from edge_onboard.webhooks.catalog import parse_event_types
from edge_onboard.webhooks.endpoints import generate_webhook_secret

DEFAULT_EXPIRES_IN = 7 * 24 * 3600
MIN_EXPIRES_IN = 5 * 60
MAX_EXPIRES_IN = 30 * 24 * 3600
MAX_METADATA_PAIRS = 20
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
CREATE_FIELDS = frozenset(
    {
        "name",
        "externalId",
        "redirectUrl",
        "webhookUrl",
        "webhookSecret",
        "webhookEvents",
        "expiresInSeconds",
        "metadata",
        "prefill",
        "locale",
        "connectionTypes",
        "displayName",
        "refreshUrl",
        "type",
        "phoneNumberId",
        "wabaId",
    }
)
# What a link is for: a new signup, or an update of a number (or WABA) already connected.
LINK_TYPES = ("onboarding", "update")
# Which numbers a link welcomes: Cloud API numbers always; WhatsApp Business app numbers
# (coexistence) when asked for.
CONNECTION_TYPES = ("cloud_api", "business_app")
NON_BLANK = v.NON_BLANK
BLANK = "it must not be blank"
LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?\Z")


@dataclasses.dataclass(frozen=True, slots=True)
class CreateLink:
    name: str
    external_id: str | None = None
    redirect_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_events: list[str] | None = None
    expires_in: int = DEFAULT_EXPIRES_IN
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    prefill: dict[str, Any] | None = None
    locale: str | None = None
    connection_types: list[str] | None = None
    display_name: str | None = None
    refresh_url: str | None = None
    type: str = "onboarding"
    # An update link's target (our record ids), checked against the caller's
    # organisation and mode by ``LinkService.create``.
    phone_number_id: str | None = None
    waba_id: str | None = None


async def parse_create(body: dict[str, Any], *, allow_private: bool) -> CreateLink:
    v.reject_unknown(body, CREATE_FIELDS)
    name = v.string(
        body,
        "name",
        min_length=1,
        max_length=200,
        required=True,
        pattern=NON_BLANK,
        hint=BLANK,
    )
    assert name is not None
    external_id = v.string(body, "externalId", min_length=1, max_length=255)
    redirect_url = (
        check_redirect_url(body["redirectUrl"]) if body.get("redirectUrl") is not None else None
    )

    webhook_url = None
    if body.get("webhookUrl") is not None:
        webhook_url = await check_webhook_url(body["webhookUrl"], allow_private=allow_private)
    webhook_secret = v.string(body, "webhookSecret", min_length=16, max_length=256)
    given = body.get("webhookEvents")
    events = None if given is None else parse_event_types(given, "webhookEvents")
    if webhook_url is None:
        if webhook_secret is not None:
            raise invalid("'webhookSecret' needs 'webhookUrl'.", param="webhookSecret")
        if events is not None:
            raise invalid("'webhookEvents' needs 'webhookUrl'.", param="webhookEvents")
    else:
        if events is None:
            raise invalid(
                "'webhookEvents' is required with 'webhookUrl'.",
                param="webhookEvents",
                code="parameter_missing",
            )
        webhook_secret = webhook_secret or generate_webhook_secret()

    expires_in = v.integer(body, "expiresInSeconds", low=MIN_EXPIRES_IN, high=MAX_EXPIRES_IN)
    link_type, phone_number_id, waba_id = _target(body)
    if link_type == "update" and webhook_url is not None:
        raise invalid(
            "An update link's events go to the organisation's outgoing webhooks: "
            "'webhookUrl' is for onboarding links.",
            param="webhookUrl",
        )
    return CreateLink(
        type=link_type,
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        name=name,
        external_id=external_id,
        redirect_url=redirect_url,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_events=events,
        expires_in=expires_in if expires_in is not None else DEFAULT_EXPIRES_IN,
        metadata=_metadata(body.get("metadata")),
        prefill=prefill.parse(body.get("prefill")),
        locale=_locale(body.get("locale")),
        connection_types=_connection_types(body.get("connectionTypes")),
        display_name=v.string(
            body, "displayName", min_length=1, max_length=100, pattern=NON_BLANK, hint=BLANK
        ),
        refresh_url=(
            check_redirect_url(body["refreshUrl"], "refreshUrl")
            if body.get("refreshUrl") is not None
            else None
        ),
    )


def _target(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """``type`` and an update link's target: exactly one of ``phoneNumberId`` and
    ``wabaId`` (our record ids), and neither on an onboarding link."""
    link_type = body.get("type")
    if link_type is None:  # null is "not given", as for every optional field
        link_type = "onboarding"
    if link_type not in LINK_TYPES:
        raise invalid(f"'type' must be one of {', '.join(LINK_TYPES)}.", param="type")
    phone_id = v.string(body, "phoneNumberId", min_length=1, max_length=64)
    waba_id = v.string(body, "wabaId", min_length=1, max_length=64)
    if link_type == "onboarding":
        for name, given in (("phoneNumberId", phone_id), ("wabaId", waba_id)):
            if given is not None:
                raise invalid(f'\'{name}\' is for update links: add "type": "update".', param=name)
        return link_type, None, None
    if phone_id is None and waba_id is None:
        raise invalid(
            "An update link names the number to update: give 'phoneNumberId' (or 'wabaId' "
            "for an account that has no number yet).",
            param="phoneNumberId",
            code="parameter_missing",
        )
    if phone_id is not None and waba_id is not None:
        raise invalid(
            "Give either 'phoneNumberId' or 'wabaId', not both: a number names its WABA.",
            param="wabaId",
        )
    return link_type, phone_id, waba_id


def _locale(value: Any) -> str | None:
    """One of the hosted pages' locales (Meta's names, so Meta's popup speaks it too)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in i18n.SUPPORTED:
        raise invalid(
            f"'locale' must be one of the hosted page's locales: {', '.join(i18n.SUPPORTED)}.",
            param="locale",
        )
    return value


def _connection_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    allowed = ", ".join(CONNECTION_TYPES)
    if (
        not isinstance(value, list)
        or not value
        or any(item not in CONNECTION_TYPES for item in value)
        or len(set(value)) != len(value)
    ):
        raise invalid(
            f"'connectionTypes' must be a list of distinct values from: {allowed}.",
            param="connectionTypes",
        )
    if "cloud_api" not in value:
        raise invalid(
            "'connectionTypes' must include cloud_api: Meta's signup always lets the "
            "business add a new Cloud API number.",
            param="connectionTypes",
        )
    return [t for t in CONNECTION_TYPES if t in value]


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("'metadata' must be an object of string pairs.", param="metadata")
    if len(value) > MAX_METADATA_PAIRS:
        raise invalid(f"'metadata' holds at most {MAX_METADATA_PAIRS} pairs.", param="metadata")
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY or not SAFE_KEY.match(key):
            raise invalid(
                f"Metadata keys are 1-{MAX_METADATA_KEY} characters, without control "
                "characters, '.', '[', ']' or a leading '$'.",
                param=f"metadata[{key}]",
            )
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE:
            raise invalid(
                f"Metadata values are strings of at most {MAX_METADATA_VALUE} characters.",
                param=f"metadata[{key}]",
            )
    return dict(value)


class LinkService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        public_url: str,
        cache: HotCache | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.public_url = public_url
        self.cache = cache or HotCache()

    # Every change to a link goes through these, so the hot layer never keeps a stale one.

    async def update(
        self, org_id: str, link_id: str, condition: LinkCondition, changes: Mapping[str, Any]
    ) -> OnboardingLink | None:
        updated = await self.storage.update_link(org_id, link_id, condition, changes)
        # Changed, or the condition failed because our copy was stale: drop it either way.
        await self.cache.forget("link", link_id)
        return updated

    async def complete(self, completion: Completion) -> Completed | None:
        done = await self.storage.complete_link(completion)
        await self.cache.forget("link", completion.link_id)
        return done

    async def _target(
        self, org_id: str, params: CreateLink, livemode: bool
    ) -> tuple[str | None, str | None, str | None]:
        """An update link's phone record id, its number and WABA record id: objects of
        this organisation and mode only (any other id is a 404, as every foreign id)."""
        if params.phone_number_id is not None:
            ident = params.phone_number_id
            phone = await self.storage.get_phone(ident) if UUID_RE.match(ident) else None
            if phone is None or phone.org_id != org_id or phone.livemode != livemode:
                raise not_found("phone number", ident, param="phoneNumberId")
            return phone.id, phone.phone_number, phone.waba_id
        if params.waba_id is not None:
            ident = params.waba_id
            waba = await self.storage.get_waba(ident) if UUID_RE.match(ident) else None
            if waba is None or waba.org_id != org_id or waba.livemode != livemode:
                raise not_found("WABA", ident, param="wabaId")
            if await self.storage.phones_of_wabas([waba.id]):
                raise invalid(
                    "This WABA has numbers: name the one to update with 'phoneNumberId' "
                    "('wabaId' is for an account that has no number yet).",
                    param="wabaId",
                )
            return None, None, waba.id
        return None, None, None

    async def claim(self, link: OnboardingLink, ttl: timedelta) -> tuple[OnboardingLink, str]:
        """Hold a pending link for one step that writes it (an update link's finish, its
        verification): the link as it stands under the claim, and the claim's id. Whoever
        changes a link's ``changes`` holds its claim, so none overwrites another's. A link
        held already (409), used up (409) or gone (410) is refused."""
        now = self.clock()
        claim_id = str(uuid.uuid4())
        claimed = await self.update(
            link.org_id,
            link.id,
            LinkCondition({LinkStatus.PENDING}, unexpired_at=now, unclaimed_at=now),
            {"claim_id": claim_id, "claimed_until": now + ttl},
        )
        if claimed is not None:
            return claimed, claim_id
        current = await self.load(None, link.id, fresh=True)
        if current is not None:
            refuse_unless_pending(current)
        raise ApiError(409, "completion_in_progress", "This link is being used in another window.")

    async def create(self, org_id: str, params: CreateLink, *, livemode: bool) -> OnboardingLink:
        phone_id, phone_number, waba_id = await self._target(org_id, params, livemode)
        now = self.clock()
        link_id = str(uuid.uuid4())
        link = OnboardingLink(
            id=link_id,
            org_id=org_id,
            name=params.name,
            status=LinkStatus.PENDING,
            created_at=now,
            expires_at=now + timedelta(seconds=params.expires_in),
            external_id=params.external_id,
            redirect_url=params.redirect_url,
            webhook_url=params.webhook_url,
            webhook_secret_enc=(
                self.box.encrypt(params.webhook_secret, context=link_id)
                if params.webhook_secret
                else None
            ),
            webhook_events=params.webhook_events,
            metadata=params.metadata,
            prefill_enc=(
                self.box.encrypt(
                    orjson.dumps(params.prefill).decode(), context=f"{link_id}:prefill"
                )
                if params.prefill
                else None
            ),
            locale=params.locale,
            connection_types=params.connection_types,
            display_name=params.display_name,
            refresh_url=params.refresh_url,
            updated_at=now,
            livemode=livemode,
            type=params.type,
            phone_number_id=phone_id,
            phone_number=phone_number,
            waba_id=waba_id,
            changes=[] if params.type == "update" else None,
        )
        await self.storage.insert_link(link)
        entry = self.cache.keep("link", link.id, link.to_doc())
        entry.memo["record"] = link
        return link

    async def load(
        self, org_id: str | None, link_id: str, *, fresh: bool = False
    ) -> OnboardingLink | None:
        """The link as it stands now (a pending link past its expiry shows as expired);
        None for unknown, malformed or foreign ids. Read through the hot layer unless
        ``fresh``."""
        return (await self.load_cached(org_id, link_id, fresh=fresh))[0]

    async def load_cached(
        self,
        org_id: str | None,
        link_id: str,
        *,
        fresh: bool = False,
        livemode: bool | None = None,
    ) -> tuple[OnboardingLink | None, dict[Any, Any]]:
        """``load``, with a memo for what callers derive from the link (a rendered page or
        response): the hot entry's own, so it lives exactly as long as that copy of the
        link; a throwaway one when the link did not come from the hot layer unchanged."""
        if not UUID_RE.match(link_id):
            return None, {}
        memo: dict[Any, Any] = {}
        if fresh:
            link = await self.storage.get_link(link_id)
        else:

            async def fetch() -> dict[str, Any] | None:
                stored = await self.storage.get_link(link_id)
                return stored.to_doc() if stored is not None else None

            entry = await self.cache.load("link", link_id, fetch)
            link = entry.record(OnboardingLink.from_doc) if entry is not None else None
            memo = entry.memo if entry is not None else memo
        if link is None or (org_id is not None and link.org_id != org_id):
            return None, {}
        if livemode is not None and link.livemode != livemode:
            return None, {}  # test and live objects never see each other
        shown = self.as_of(link)
        # A view rendered while the link was pending must not outlive its expiry.
        return shown, (memo if shown is link else {})

    async def get(self, org_id: str, link_id: str, *, livemode: bool) -> OnboardingLink:
        return (await self.get_cached(org_id, link_id, livemode=livemode))[0]

    async def get_cached(
        self, org_id: str, link_id: str, *, livemode: bool
    ) -> tuple[OnboardingLink, dict[Any, Any]]:
        """``get``, with ``load_cached``'s memo; 404 for another organisation's or mode's."""
        link, memo = await self.load_cached(org_id, link_id, livemode=livemode)
        if link is None or link.status is LinkStatus.DELETED:
            raise not_found("onboarding link", link_id, param="id")
        return link, memo

    def as_of(self, link: OnboardingLink) -> OnboardingLink:
        """Reads never write: a pending link past its expiry is shown as expired, and
        the background sweep (``Recovery.reconcile``) stores that and announces it."""
        if link.status is not LinkStatus.PENDING:
            return link  # only a pending link can show otherwise (no clock read)
        shown = shown_status(link, self.clock())
        return link if shown is link.status else dataclasses.replace(link, status=shown)

    async def list(self, org_id: str, flt: LinkFilter, window: Window) -> Page[OnboardingLink]:
        flt = dataclasses.replace(flt, as_of=self.clock())
        page = await self.storage.list_links(org_id, flt, window)
        return dataclasses.replace(page, items=[self.as_of(link) for link in page.items])

    async def delete(self, org_id: str, link_id: str, *, livemode: bool) -> None:
        link = await self.get(org_id, link_id, livemode=livemode)
        if link.status is LinkStatus.PENDING:
            now = self.clock()
            deleted = await self.update(
                org_id,
                link_id,
                LinkCondition(statuses={LinkStatus.PENDING}, unexpired_at=now, unclaimed_at=now),
                {"status": LinkStatus.DELETED, "deleted_at": now, "updated_at": now},
            )
            if deleted is not None:
                return
            link = await self.get(org_id, link_id, livemode=livemode)  # lost a race: the winner
            if link.status is LinkStatus.PENDING:
                raise ApiError(
                    409,
                    "completion_in_progress",
                    "The end-user is connecting a number with this link right now.",
                )
        raise ApiError(
            409,
            "link_not_pending",
            f"Only pending links can be deleted; this one is {link.status.value}.",
        )

    def prefill_of(self, link: OnboardingLink) -> dict[str, Any]:
        """The business data for Meta's form, decrypted (only the hosted page reads it)."""
        if link.prefill_enc:
            data: dict[str, Any] = orjson.loads(
                self.box.decrypt(link.prefill_enc, context=f"{link.id}:prefill")
            )
            return data
        return link.prefill or {}

    def view(self, link: OnboardingLink) -> dict[str, Any]:
        """The link as the API shows it (absent values are null, never missing)."""
        view: dict[str, Any] = {
            "id": link.id,
            "name": link.name,
            "status": link.status.value,
            "externalId": link.external_id,
            "redirectUrl": link.redirect_url,
            "refreshUrl": link.refresh_url,
            "displayName": link.display_name,
            "locale": link.locale,
            "hostedUrl": f"{self.public_url}/signup/{link.id}",
            "phoneNumberId": link.phone_number_id,
            "phoneNumber": link.phone_number,
            "wabaId": link.waba_id,
            # null while pending and when the link completed without a number (v4).
            "isPhoneRegistered": (
                link.is_phone_registered
                if link.status is LinkStatus.COMPLETED and link.phone_number_id
                else None
            ),
            "webhookUrl": link.webhook_url,
            "webhookSecret": (
                self.box.decrypt(link.webhook_secret_enc, context=link.id)
                if link.webhook_secret_enc
                else None
            ),
            "webhookEvents": link.webhook_events,
            "createdAt": isoformat(link.created_at),
            "completedAt": isoformat(link.completed_at),
            "expiresAt": isoformat(link.expires_at),
            "metadata": link.metadata,
            "lastError": _error_view(link.last_error),
            "completedVia": link.completed_via,
            "livemode": link.livemode,
            # Meta reported the signup finished, but it needs EDGE_META_SYSTEM_USER_TOKEN
            # (POST /v1/onboarding-links/{id}/recover): Meta's ids, and why.
            "recoverable": link.status is LinkStatus.PENDING and link.recovery is not None,
            "recovery": link.recovery if link.status is LinkStatus.PENDING else None,
            "type": link.type,
            # An update link's result: what changed so far, in order (null on onboarding).
            "result": (
                {"changes": list(link.changes or []), "profileFields": link.profile_fields or []}
                if link.type == "update"
                else None
            ),
        }
        if link.status is LinkStatus.COMPLETED:
            # Enriched: the webhook settings moved to the outgoing webhook it created,
            # and webhookUrl is now the phone's inbound URL.
            del view["webhookSecret"], view["webhookEvents"]
            view["webhookUrl"] = (
                f"{self.public_url}/webhook/phone/{link.phone_number_id}"
                if link.phone_number_id
                else None
            )
            view["outgoingWebhookId"] = link.outgoing_webhook_id
        return view


_META_ERROR_FIELDS = (
    ("meta_session_id", "metaSessionId"),
    ("meta_step", "metaStep"),
    ("meta_error_code", "metaErrorCode"),
)


def _error_view(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    view = {
        "code": error.get("code"),
        "message": error.get("message"),
        "at": isoformat(error.get("at")),
    }
    # Meta's own data about a signup that did not finish (edge_onboard/onboarding/reports.py).
    for stored, shown in _META_ERROR_FIELDS:
        if error.get(stored) is not None:
            view[shown] = error[stored]
    return view


def refuse_unless_pending(link: OnboardingLink) -> None:
    """410 for a link deleted or expired, 409 once used."""
    refuse_if_gone(link)
    if link.status is LinkStatus.COMPLETED:
        raise ApiError(409, "link_completed", "This link has been used already.")


def refuse_if_gone(link: OnboardingLink) -> None:
    for status, reason in ((LinkStatus.DELETED, "deleted"), (LinkStatus.EXPIRED, "expired")):
        if link.status is status:
            raise ApiError(410, f"link_{reason}", GONE[reason])


def with_change(changes: list[str] | None, change: str) -> list[str]:
    """An update link's ``changes`` with ``change`` noted (once)."""
    done = list(changes or [])
    return done if change in done else [*done, change]
