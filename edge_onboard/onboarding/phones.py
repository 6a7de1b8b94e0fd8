"""Connected phone numbers: the API view and the live health check against Graph."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, not_found
from edge_onboard.core.validation import UUID_RE
from edge_onboard.meta.graph import HEALTH_FIELDS, GraphError
from edge_onboard.meta.modes import MetaModes
from edge_onboard.storage import Phone, PhoneStatus, Storage, Waba

HEALTH_TTL = 30.0  # seconds a health answer is reused: Graph has rate limits
HEALTH_CACHE_SIZE = 1024


# phone_number.updated's keys that only Meta's notices of a number fill
# (edge_onboard/hosted/meta_webhook.py, edge_onboard/meta/inbound.py): null in the others.
NOT_FROM_META: dict[str, Any] = {
    "metaField": None,
    "metaEvent": None,
    "change": None,
    "metaState": None,
    "raw": None,
}


def phone_view(phone: Phone) -> dict[str, Any]:
    # What Meta said of the number: when it was connected, then by webhook since.
    state = phone.meta_state or {}
    return {
        "id": phone.id,
        "phoneNumber": phone.phone_number,
        "metaPhoneNumberId": phone.meta_phone_number_id,
        "wabaId": phone.waba_id,
        "metaWabaId": phone.meta_waba_id,
        "isPhoneRegistered": phone.is_registered,
        "status": phone.status.value,
        "platform": phone.platform.value,
        "displayName": phone.verified_name,
        "nameStatus": state.get("nameStatus"),
        "qualityRating": state.get("qualityRating"),
        "messagingLimit": state.get("messagingLimit"),
        # Coexistence numbers: how the two WhatsApp Business app syncs went.
        "coexistence": phone.coexistence,
        "onboardingLinkId": phone.onboarding_link_id,
        "createdAt": isoformat(phone.created_at),
        "livemode": phone.livemode,
    }


def business_token(box: SecretBox, waba: Waba) -> str:
    """The WABA's business token, decrypted (never shown to customers)."""
    return box.decrypt(waba.access_token_enc, context=f"waba:{waba.org_id}:{waba.meta_waba_id}")


class PhoneService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        meta: MetaModes,
        *,
        monotonic: Any = time.monotonic,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.meta = meta
        self._monotonic = monotonic
        self._health: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    async def get(self, org_id: str, phone_id: str, *, livemode: bool) -> Phone:
        phone = await self.storage.get_phone(phone_id) if UUID_RE.match(phone_id) else None
        if phone is None or phone.org_id != org_id or phone.livemode != livemode:
            raise not_found("phone number", phone_id, param="id")
        return phone

    async def health(self, org_id: str, phone_id: str, *, livemode: bool) -> dict[str, Any]:
        phone = await self.get(org_id, phone_id, livemode=livemode)
        if phone.status is PhoneStatus.DISCONNECTED:
            # The business took the partner's access back: Meta would refuse to say more.
            return _disconnected_report(phone, isoformat(self.clock()) or "")
        cached = self._health.get(phone.id)
        if cached is not None and self._monotonic() - cached[0] < HEALTH_TTL:
            return cached[1]
        graph = self.meta.graph(phone.livemode)
        if graph is None:
            raise ApiError(
                503,
                "meta_not_configured",
                "No Meta app is configured, so health cannot be checked.",
            )
        waba = await self.storage.get_waba(phone.waba_id)
        if waba is None:
            raise not_found("phone number", phone_id, param="id")
        token = business_token(self.box, waba)
        try:
            info = await graph.phone(phone.meta_phone_number_id, token, fields=HEALTH_FIELDS)
            subscribed = graph.app_id in await graph.subscribed_app_ids(waba.meta_waba_id, token)
        except GraphError as exc:
            if exc.unreachable:
                raise ApiError(
                    502, "meta_unavailable", "Meta could not be reached; try again shortly."
                ) from exc
            raise ApiError(
                502, "meta_error", f"Meta refused the health check (Graph error {exc.code})."
            ) from exc
        report = _health_report(phone, info.raw, subscribed, isoformat(self.clock()) or "")
        self._health[phone.id] = (self._monotonic(), report)
        self._health.move_to_end(phone.id)
        while len(self._health) > HEALTH_CACHE_SIZE:
            self._health.popitem(last=False)
        return report


def _disconnected_report(phone: Phone, checked_at: str) -> dict[str, Any]:
    return {
        "phoneNumberId": phone.id,
        "checkedAt": checked_at,
        "status": "DISCONNECTED",
        "qualityRating": None,
        "platformType": None,
        "healthStatus": "BLOCKED",
        "webhookSubscribed": False,
        "webhookUrl": None,
        "capabilities": {"canSendMessages": False, "canReceiveMessages": False},
        "issues": [
            {
                "entityType": "WABA",
                "code": "partner_removed",
                "description": "The business removed this app's access to its account.",
                "possibleSolution": "Ask the business to connect again with a new link.",
            }
        ],
    }


def _health_report(
    phone: Phone, raw: Mapping[str, Any], subscribed: bool, checked_at: str
) -> dict[str, Any]:
    status = raw.get("status")
    platform = raw.get("platform_type")
    health = raw.get("health_status") or {}
    can_send = health.get("can_send_message")
    issues: list[dict[str, Any]] = []
    for entity in health.get("entities") or []:
        for error in entity.get("errors") or []:
            issues.append(
                {
                    "entityType": entity.get("entity_type"),
                    "code": error.get("error_code"),
                    "description": error.get("error_description"),
                    "possibleSolution": error.get("possible_solution"),
                }
            )
    webhook = raw.get("webhook_configuration") or {}
    registered = platform == "CLOUD_API"
    if not subscribed:
        issues.append(
            {
                "entityType": "APP",
                "code": "app_not_subscribed",
                "description": "The app is not subscribed to the WABA's webhooks.",
                "possibleSolution": "Reconnect the number with a new onboarding link.",
            }
        )
    if not registered:
        issues.append(
            {
                "entityType": "PHONE_NUMBER",
                "code": "not_registered",
                "description": "The number is not registered on the Cloud API.",
                "possibleSolution": "Reconnect the number, or register it with its two-step PIN.",
            }
        )
    connected = status == "CONNECTED"
    return {
        "phoneNumberId": phone.id,
        "checkedAt": checked_at,
        "status": status,
        "qualityRating": raw.get("quality_rating"),
        "platformType": platform,
        "healthStatus": can_send,
        "webhookSubscribed": subscribed,
        "webhookUrl": webhook.get("phone_number"),
        "capabilities": {
            "canSendMessages": registered and connected and can_send in ("AVAILABLE", "LIMITED"),
            # Safe for inbound-first customers: registered, subscribed, connected, not blocked.
            "canReceiveMessages": registered and subscribed and connected and can_send != "BLOCKED",
        },
        "issues": issues,
    }
