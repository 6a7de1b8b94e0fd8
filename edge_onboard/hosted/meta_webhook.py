"""Meta's app-level webhook, ``GET/POST /webhook/meta``: the callback URL to set in the
Meta app's WhatsApp webhook settings (phone numbers have their own, set per number).

``GET`` answers Meta's handshake with ``EDGE_META_VERIFY_TOKEN``, or without it a token
derived from ``EDGE_SECRET_KEY`` (``edge-onboard meta-webhook`` prints the URL and token to
enter in Meta's dashboard).
``POST`` must carry ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app
secret; else 401 and nothing changes). Every field becomes an event (the table:
edge_onboard/meta/fields.py). A change naming a number (``metadata.phone_number_id``:
messages, statuses, calls, coexistence syncs...) is handled exactly as at the number's own
endpoint. ``account_update`` also drives recovery (partner added, removed:
edge_onboard/onboarding/recovery.py) and, like ``account_review_update``,
``business_capability_update`` and any field not typed yet, becomes ``waba.updated``;
the number fields (quality, name, username, alerts, security) ``phone_number.updated``;
the template fields ``template.updated``. Meta retries for days: each change is applied
once (its event id is a digest of what it says). Anything unusable is answered 200 with
one warning line, like the phone endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core import validation
from edge_onboard.core.errors import ApiError
from edge_onboard.hosted.deps import HostedServices, get_services, limit_inbound
from edge_onboard.meta import account_model, fields
from edge_onboard.meta import readers as r
from edge_onboard.meta.graph import e164
from edge_onboard.meta.inbound import Parsed, meta_phone_id, read_change
from edge_onboard.meta.modes import Signed
from edge_onboard.onboarding.phones import phone_view
from edge_onboard.onboarding.recovery import ACCOUNT_EVENTS, GRANT_EVENTS
from edge_onboard.storage import DuplicateError

log = logging.getLogger("edge_onboard.hosted.meta_webhook")
_DIGEST = uuid.UUID("8c2b6f0e-1d3a-4e5f-9b7c-2a4d6e8f0a1c")


def verify_token(services: HostedServices) -> str:
    configured = services.settings.meta_verify_token
    return configured.reveal() if configured else services.box.token("verify:meta-app")


async def handshake(request: Request) -> Response:
    services = get_services(request)
    query = request.query_params
    given = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    if (
        query.get("hub.mode") == "subscribe"
        and hmac.compare_digest(given.encode(), verify_token(services).encode())
        and 0 < len(challenge) <= 256
    ):
        return Response(challenge.encode(), media_type="text/plain")
    return Response(b"Forbidden", status_code=403, media_type="text/plain")


async def receive(request: Request) -> Response:
    services = get_services(request)
    try:
        await limit_inbound(request, services)
        raw = await validation.read_body(request)
    except ApiError as exc:
        return Response(exc.message.encode(), status_code=exc.status_code, headers=exc.headers)
    signed = services.meta.signed(raw, request.headers.get("x-hub-signature-256"))
    if signed is None:
        log.warning("meta app webhook: bad or missing signature (%d bytes); refused", len(raw))
        return Response(b"Invalid signature", status_code=401, media_type="text/plain")
    await handle(services, raw, signed)
    return Response(b"OK", media_type="text/plain")


async def handle(services: HostedServices, raw: bytes, signed: Signed) -> None:
    """Apply what the body says to the objects ``signed`` allows; never raises for its
    shape."""
    bad = r.Unusable()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("meta app webhook: body is not JSON (%d bytes); ignored", len(raw))
        return
    if not isinstance(body, dict):
        bad.add("body", body, "an object")
        bad.report()
        return
    numbers = Parsed()
    for entry_path, entry in r.objects(bad, body, "entry", ""):
        entry_id = r.string(bad, entry, "id", entry_path)
        for path, change in r.objects(bad, entry, "changes", entry_path):
            field = r.string(bad, change, "field", path)
            value = r.obj(bad, change, "value", path)
            if value is None or field is None:
                continue
            value_path = f"{path}.value"
            if meta_phone_id(bad, value, value_path) is not None:
                numbers.changes.append(read_change(bad, value, value_path, field))
            elif field == "account_update":
                await _account_update(services, bad, value, entry_id, value_path, signed)
            elif field in account_model.PHONE_FIELDS and "display_phone_number" in value:
                await _phone_update(
                    services, bad, field, value, entry_id, raw_change=change, signed=signed
                )
            elif field in account_model.TEMPLATE_FIELDS:
                await _template_update(services, bad, field, value, entry_id, signed)
            elif entry_id is not None:
                await _waba_update(services, bad, field, value, entry_id, value_path, signed)
    bad.report()
    if numbers.changes:
        # Messages and the rest of a number's fields, as at the number's own endpoint.
        await services.inbound.handle_parsed(numbers, livemode=signed.livemode)


async def _account_update(
    services: HostedServices,
    bad: r.Unusable,
    value: dict[str, Any],
    entry_id: str | None,
    path: str,
    signed: Signed,
) -> None:
    event = r.string(bad, value, "event", path, required=True)
    info = r.obj(bad, value, "waba_info", path) or {}
    # The WABA is named in waba_info, else it is the entry (the partner's business, for
    # the events about sharing, where it finds no WABA of ours).
    waba_id = r.string(bad, info, "waba_id", f"{path}.waba_info") or entry_id
    if event is None or waba_id is None:
        return
    recovery = services.recovery
    assert recovery is not None  # built with the app's services
    typed = {
        "metaField": "account_update",
        "metaEvent": event,
        "change": account_model.change(bad, "account_update", value, path),
    }
    if event in GRANT_EVENTS:
        owner = r.string(bad, info, "owner_business_id", f"{path}.waba_info")
        await recovery.partner_added(waba_id, owner, event, livemode=signed.livemode)
    if event == "PARTNER_REMOVED":
        await recovery.partner_removed(
            waba_id, _detail(value), livemode=signed.livemode, extra=typed
        )
        return
    if event not in ACCOUNT_EVENTS | GRANT_EVENTS | _TYPED_ACCOUNT_EVENTS:
        fields.unknown("account_update", event)
    await recovery.account_changed(
        waba_id, event, _detail(value), livemode=signed.livemode, extra=typed
    )


# account_update events whose details ``account_model`` types (besides recovery's own).
_TYPED_ACCOUNT_EVENTS = frozenset(
    {
        "ACCOUNT_OFFBOARDED",
        "ACCOUNT_RECONNECTED",
        "PARTNER_APP_UNINSTALLED",
        "VERIFIED_ACCOUNT",
        "AD_ACCOUNT_LINKED",
        "MM_LITE_TERMS_SIGNED",
        "VOLUME_BASED_PRICING_TIER_UPDATE",
        "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
        "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE",
        "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE",
    }
)


async def _waba_update(
    services: HostedServices,
    bad: r.Unusable,
    field: str,
    value: dict[str, Any],
    entry_id: str,
    path: str,
    signed: Signed,
) -> None:
    """A WABA-level field other than account_update: ``waba.updated``, typed when we know
    the field, else with Meta's value under ``raw`` only."""
    typed = account_model.change(bad, field, value, path)
    if field not in account_model.KNOWN_FIELDS:
        fields.unknown(field)
    event = value.get("event")
    meta_event = event if isinstance(event, str) else None
    recovery = services.recovery
    assert recovery is not None
    await recovery.account_changed(
        entry_id,
        meta_event or field.upper(),
        _detail(value),
        livemode=signed.livemode,
        extra={"metaField": field, "metaEvent": meta_event, "change": typed},
    )


async def _template_update(
    services: HostedServices,
    bad: r.Unusable,
    field: str,
    value: dict[str, Any],
    waba_id: str | None,
    signed: Signed,
) -> None:
    """A template's status, quality, category or components changed: ``template.updated``
    for each connected WABA it belongs to, once however often Meta retries it."""
    if waba_id is None:
        return
    data = {"metaField": field, **account_model.template(bad, value, field), "raw": _detail(value)}
    digest = r.digest({"field": field, "value": value})
    for waba in await services.storage.wabas_by_meta_id(waba_id):
        if not signed.allows(waba.livemode):
            continue
        await services.webhooks.emit(
            waba.org_id,
            "template.updated",
            {"wabaId": waba.id, "metaWabaId": waba.meta_waba_id, **data},
            waba_id=waba.id,
            event_id="evt_" + uuid.uuid5(_DIGEST, f"{waba.id}:template:{digest}").hex,
            livemode=waba.livemode,
        )


def _detail(value: dict[str, Any]) -> dict[str, Any]:
    """Meta's account_update as sent, kept storable (it becomes the event's ``raw``)."""
    stored: dict[str, Any] = r.storable(r.Unusable(), value, "raw") or {}
    return stored


async def _phone_update(
    services: HostedServices,
    bad: r.Unusable,
    field: str,
    value: dict[str, Any],
    waba_id: str | None,
    raw_change: dict[str, Any],
    signed: Signed,
) -> None:
    number = e164(r.string(bad, value, "display_phone_number", field))
    if waba_id is None or number is None:
        return
    storage = services.storage
    event_name = value.get("event")
    typed = {
        "metaField": field,
        "metaEvent": event_name if isinstance(event_name, str) else None,
        "change": account_model.change(bad, field, value, field),
        "raw": _detail(value),
    }
    if field == "phone_number_quality_update":
        state = {
            "qualityEvent": r.string(bad, value, "event", field),
            "messagingLimit": r.string(bad, value, "current_limit", field),
        }
    elif field == "business_username_update":
        state = {
            "username": r.string(bad, value, "username", field),
            "usernameStatus": r.string(bad, value, "status", field),
        }
    elif field != "phone_number_name_update":
        state = {}
    else:
        state = {
            "nameStatus": r.string(bad, value, "decision", field),
            "requestedName": r.string(bad, value, "requested_verified_name", field),
            "rejectionReason": r.string(bad, value, "rejection_reason", field),
        }
    # Each change once, however often Meta retries it.
    digest = hashlib.sha256(orjson.dumps(raw_change, option=orjson.OPT_SORT_KEYS)).hexdigest()
    for waba in await storage.wabas_by_meta_id(waba_id):
        if not signed.allows(waba.livemode):
            continue
        for phone in await storage.phones_of_wabas([waba.id]):
            if phone.phone_number != number:
                continue
            merged = {**(phone.meta_state or {}), **state, "at": services.clock()}
            event, deliveries = await services.webhooks.plan(
                phone.org_id,
                "phone_number.updated",
                {
                    **phone_view(phone),
                    "previousStatus": phone.status.value,
                    "metaState": state,
                    **typed,
                },
                waba_id=waba.id,
                livemode=phone.livemode,
            )
            event.id = "evt_" + uuid.uuid5(_DIGEST, f"{phone.id}:{digest}").hex
            for delivery in deliveries:
                delivery.event_id = event.id
            try:
                done = await storage.update_phone(
                    phone.id, {"meta_state": merged}, event=event, deliveries=deliveries
                )
            except DuplicateError:
                continue  # Meta's retry of a change already applied
            if done is not None:
                await services.webhooks.engine.dispatch(deliveries)
