"""Meta's app-level webhook, ``GET/POST /webhook/meta``: the callback URL to set in the
Meta app's WhatsApp webhook settings (phone numbers have their own, set per number).

``GET`` answers Meta's handshake with ``EDGE_META_VERIFY_TOKEN``, or without it a token
derived from ``EDGE_SECRET_KEY`` (``edge-onboard meta-webhook`` prints the URL and token to
enter in Meta's dashboard).
``POST`` must carry ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app
secret; else 401 and nothing changes). Fields handled: ``account_update`` (partner added,
removed, restrictions: edge_onboard/onboarding/recovery.py), ``phone_number_quality_update`` and
``phone_number_name_update`` (``phone_number.updated``). Meta retries for days: each
change is applied once (its event id is a digest of what it says). Anything unusable is
answered 200 with one warning line, like the phone endpoint.
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
from edge_onboard.meta import readers as r
from edge_onboard.meta.graph import e164
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
    for entry_path, entry in r.objects(bad, body, "entry", ""):
        entry_id = r.string(bad, entry, "id", entry_path)
        for path, change in r.objects(bad, entry, "changes", entry_path):
            field = r.string(bad, change, "field", path)
            value = r.obj(bad, change, "value", path)
            if value is None or field is None:
                continue
            if field == "account_update":
                await _account_update(services, bad, value, entry_id, f"{path}.value", signed)
            elif field in ("phone_number_quality_update", "phone_number_name_update"):
                await _phone_update(
                    services, bad, field, value, entry_id, raw_change=change, signed=signed
                )
    bad.report()


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
    waba_id = r.string(bad, info, "waba_id", f"{path}.waba_info") or (
        entry_id if event in ACCOUNT_EVENTS else None
    )
    if event is None or waba_id is None:
        return
    recovery = services.recovery
    assert recovery is not None  # built with the app's services
    if event in GRANT_EVENTS:
        owner = r.string(bad, info, "owner_business_id", f"{path}.waba_info")
        await recovery.partner_added(waba_id, owner, event, livemode=signed.livemode)
    elif event == "PARTNER_REMOVED":
        await recovery.partner_removed(waba_id, _detail(value), livemode=signed.livemode)
    elif event in ACCOUNT_EVENTS:
        await recovery.account_changed(waba_id, event, _detail(value), livemode=signed.livemode)
    else:
        log.info("meta app webhook: account_update %s not handled", r.plain(event.lower()))


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
    if field == "phone_number_quality_update":
        state = {
            "qualityEvent": r.string(bad, value, "event", field),
            "messagingLimit": r.string(bad, value, "current_limit", field),
        }
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
                {**phone_view(phone), "previousStatus": phone.status.value, "metaState": state},
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
