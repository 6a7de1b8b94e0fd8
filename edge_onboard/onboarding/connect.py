"""Connecting a number Meta handed over: the Graph steps after Embedded Signup (and after
a WABA's sync finds a new number), by what Meta actually gave.

- a verified number: webhooks pointed at us, registered with a PIN unless it is already
  on the Cloud API (a refused registration is recorded, not fatal);
- an unverified number (``code_verification_status`` not VERIFIED): webhooks pointed at
  us, nothing registered: the phone waits in ``pending_verification`` for
  ``POST /v1/phones/{id}/verification-code`` and ``/verify`` (edge_onboard/onboarding/phones.py);
- a WhatsApp Business app number (coexistence): never registered; the two one-shot app
  syncs (state, then history) are started and their outcome recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from edge_onboard.core.crypto import SecretBox
from edge_onboard.meta.graph import GraphClient, GraphError, PhoneInfo, e164
from edge_onboard.storage import Phone, PhonePlatform, PhoneStatus

log = logging.getLogger("edge_onboard.onboarding.connect")

# Webhook fields a coexistence number needs besides messages (Meta's coexistence guide).
COEXISTENCE_FIELDS = ("messages", "history", "smb_app_state_sync", "smb_message_echoes")
# The one-shot syncs, in the order Meta asks for: (our name, Meta's sync_type).
APP_SYNCS = (("stateSync", "smb_app_state_sync"), ("historySync", "history"))
VERIFIED = "VERIFIED"


_ID_NAMESPACE = uuid.UUID("6f1c1f5e-9d1e-4c55-9a38-0e7d2b1f3a10")


def record_id(kind: str, org_id: str, meta_id: str) -> str:
    """A stable record id for a Meta object within an organisation."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{org_id}:{meta_id}"))


class StepFailed(Exception):
    """A Graph step failed; ``code``/``message`` say which, ``error`` is Meta's answer."""

    def __init__(self, code: str, message: str, error: GraphError) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error


async def step(call: Awaitable[Any], code: str, message: str) -> Any:
    try:
        return await call
    except GraphError as exc:
        log.warning("graph call failed (%s): %s", code, exc)
        raise StepFailed(code, message, exc) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class PhoneSetup:
    """What connecting the number gave: the phone record's fields."""

    status: PhoneStatus
    registered: bool
    platform: PhonePlatform
    details: PhoneInfo
    pin: str | None = None
    registration_error: dict[str, Any] | None = None
    coexistence: dict[str, str] | None = None


def derived_pin(box: SecretBox, org_id: str, meta_phone_id: str) -> str:
    """A number's two-step PIN, derived from the secret key: a retry after a crash
    between Meta's answer and our write registers with the same PIN."""
    digest = hashlib.sha256(box.token(f"pin:{org_id}:{meta_phone_id}").encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**6:06d}"


async def subscribe(graph: GraphClient, waba_id: str, token: str, *, coexistence: bool) -> None:
    """Subscribe the app to the WABA's webhooks (with coexistence's extra fields).

    Meta's pages disagree on whether the WABA subscription takes ``subscribed_fields``
    or the fields come only from the app's webhook settings. Both readings are covered:
    the fields are asked for, and if Meta refuses the parameter (error 100) the plain
    subscription is made and the app's settings must list them (README, Deploy)."""
    fields = COEXISTENCE_FIELDS if coexistence else ()
    message = "Meta refused to subscribe the app to the account's webhooks."
    try:
        await graph.subscribe_app(waba_id, token, fields=fields)
    except GraphError as exc:
        if not fields or exc.unreachable or exc.code != 100:
            log.warning("graph call failed (subscribe_failed): %s", exc)
            raise StepFailed("subscribe_failed", message, exc) from exc
        log.warning(
            "Meta refused subscribed_fields for WABA %s (%s); subscribed without them: the "
            "app's webhook settings must include %s",
            waba_id,
            exc,
            ", ".join(COEXISTENCE_FIELDS),
        )
        await step(graph.subscribe_app(waba_id, token), "subscribe_failed", message)


async def set_up_phone(
    graph: GraphClient,
    token: str,
    info: PhoneInfo,
    *,
    callback_url: str,
    verify_token: str,
    coexistence: bool,
    pin_for: Callable[[], Awaitable[str]],
) -> PhoneSetup:
    """Point the number's webhooks at us, then register, verify-later or sync by what
    the number is. ``pin_for`` gives the PIN to register with (it is kept before Meta
    hears it). A GraphError of a required step raises StepFailed; a refused
    registration or sync is recorded."""
    await step(
        graph.set_phone_webhook(
            info.id, token, callback_url=callback_url, verify_token=verify_token
        ),
        "webhook_setup_failed",
        "Meta refused to point the number's webhooks at us.",
    )
    pin: str | None = None
    registration_error: dict[str, Any] | None = None
    syncs: dict[str, str] | None = None
    registered = info.on_cloud_api
    verified = info.code_verification_status in (None, VERIFIED)
    if coexistence:
        syncs = await _start_app_syncs(graph, token, info.id)
    elif verified and not registered:
        pin = await pin_for()
        try:
            await graph.register_phone(info.id, token, pin)
            registered = True
        except GraphError as exc:
            if exc.unreachable:
                raise StepFailed("meta_unavailable", "Meta is unreachable.", exc) from exc
            # Recorded, not fatal: the number is connected, registration can be redone.
            pin = None
            registration_error = {"code": exc.code, "subcode": exc.subcode, "message": exc.message}
            log.warning("registration failed phone=%s: %s", info.id, exc)
    details = await step(
        graph.phone(info.id, token),
        "phone_lookup_failed",
        "Meta did not return the number's details.",
    )
    if coexistence or registered:
        status = PhoneStatus.CONNECTED
    elif not verified:
        status = PhoneStatus.PENDING_VERIFICATION
    else:
        status = PhoneStatus.REGISTRATION_FAILED
    return PhoneSetup(
        status=status,
        registered=registered,
        platform=PhonePlatform.BUSINESS_APP if coexistence else PhonePlatform.CLOUD_API,
        details=details,
        pin=pin,
        registration_error=registration_error,
        coexistence=syncs,
    )


async def _start_app_syncs(graph: GraphClient, token: str, phone_id: str) -> dict[str, str]:
    """Both one-shot syncs, each once: "requested"; "failed" when Meta refused it;
    "unknown" when Meta did not answer (it may have started: never asked twice)."""
    outcome: dict[str, str] = {}
    for name, sync_type in APP_SYNCS:
        try:
            await graph.smb_app_data(phone_id, token, sync_type)
            outcome[name] = "requested"
        except GraphError as exc:
            outcome[name] = "unknown" if exc.unreachable else "failed"
            log.warning("coexistence %s for phone %s: %s", sync_type, phone_id, exc)
    return outcome


def phone_record(
    setup: PhoneSetup,
    info: PhoneInfo,
    *,
    phone_id: str,
    org_id: str,
    waba_id: str,
    meta_waba_id: str,
    onboarding_link_id: str | None,
    pin_enc: str | None,
    now: datetime,
    livemode: bool,
) -> Phone:
    """The phone record for a number connected by ``set_up_phone``."""
    details = setup.details
    return Phone(
        id=phone_id,
        org_id=org_id,
        waba_id=waba_id,
        meta_waba_id=meta_waba_id,
        meta_phone_number_id=info.id,
        status=setup.status,
        is_registered=setup.registered,
        onboarding_link_id=onboarding_link_id,
        created_at=now,
        updated_at=now,
        phone_number=e164(details.display_phone_number or info.display_phone_number),
        verified_name=details.verified_name,
        pin_enc=pin_enc,
        registration_error=setup.registration_error,
        platform=setup.platform,
        coexistence=setup.coexistence,
        meta_state=meta_state(details) or None,
        livemode=livemode,
    )


def meta_state(info: PhoneInfo) -> dict[str, Any]:
    """What Graph said of the number's name, quality and limit, in ``Phone.meta_state``'s
    names (the webhooks keep them current)."""
    found = {
        "nameStatus": info.raw.get("name_status"),
        "qualityRating": info.quality_rating,
        "messagingLimit": info.raw.get("messaging_limit_tier"),
    }
    return {key: str(value) for key, value in found.items() if value}


def connected_data(
    phone: Phone, *, waba_id: str, link_id: str | None, external_id: str | None
) -> dict[str, Any]:
    """``phone_number.connected``'s data for a number just recorded (by a signup, an update
    link or a WABA's sync: ``link_id`` None)."""
    return {
        "onboardingLinkId": link_id,
        "externalId": external_id,
        "phoneNumberId": phone.id,
        "phoneNumber": phone.phone_number,
        "wabaId": waba_id,
        "metaWabaId": phone.meta_waba_id,
        "isPhoneRegistered": phone.is_registered,
        "status": phone.status.value,
        "platform": phone.platform.value,
    }
