"""Numbers that finished Embedded Signup unverified: a code by SMS or voice, the code
back, then registration (``POST /v1/phones/{id}/verification-code`` and ``/verify``).

Each step's Meta error comes back in the API's error shape: a wrong code is 422
``verification_code_incorrect`` (``verification_code_expired`` once Meta says the code
expired), Meta's rate limits 429 ``meta_rate_limited`` (with
``Retry-After``), Meta unreachable 502, anything else Meta refuses 422 ``meta_rejected``
with its code. Once verified, the number is registered with a PIN that is stored
(encrypted) before Meta hears it, and ``phone_number.updated`` reports the change.
"""

from __future__ import annotations

import re
from typing import Any

from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.meta.graph import GraphClient, GraphError
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.connect import derived_pin
from edge_onboard.onboarding.links import LOCALE, LinkService
from edge_onboard.onboarding.phones import (
    NOT_FROM_META,
    PhoneService,
    business_token,
    phone_view,
)
from edge_onboard.storage import LinkCondition, LinkStatus, Phone, PhoneStatus, Storage
from edge_onboard.webhooks.endpoints import WebhookService

# Meta's error for a code that does not match (Cloud API error codes).
WRONG_CODE = 136025
RATE_LIMITED = frozenset({4, 80007, 130429, 133016})
CODE = re.compile(r"^[0-9]{6}\Z")
METHODS = {"sms": "SMS", "voice": "VOICE"}


class PhoneVerification:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        box: SecretBox,
        phones: PhoneService,
        links: LinkService,
        webhooks: WebhookService,
        meta: MetaModes,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.box = box
        self.phones = phones
        self.links = links
        self.webhooks = webhooks
        self.meta = meta

    async def _pending(
        self, org_id: str, phone_id: str, livemode: bool
    ) -> tuple[Phone, GraphClient, str]:
        phone = await self.phones.get(org_id, phone_id, livemode=livemode)
        if phone.status is not PhoneStatus.PENDING_VERIFICATION:
            raise ApiError(
                409,
                "phone_not_pending_verification",
                f"This number is {phone.status.value}: it needs no verification.",
            )
        graph = self.meta.graph(phone.livemode)
        if graph is None:
            raise ApiError(503, "meta_not_configured", "No Meta app is configured.")
        waba = await self.storage.get_waba(phone.waba_id)
        if waba is None:
            raise ApiError(409, "phone_not_pending_verification", "This number has no WABA.")
        return phone, graph, business_token(self.box, waba)

    async def request_code(
        self, org_id: str, phone_id: str, body: dict[str, Any], *, livemode: bool
    ) -> Phone:
        v.reject_unknown(body, {"method", "locale"})
        method = body.get("method")
        if method not in METHODS:
            raise invalid(
                "'method' must be sms or voice.",
                param="method",
                code="parameter_missing" if method is None else "parameter_invalid",
            )
        locale = v.string(body, "locale", max_length=6, pattern=LOCALE, hint="e.g. en_US")
        phone, graph, token = await self._pending(org_id, phone_id, livemode)
        try:
            await graph.request_code(
                phone.meta_phone_number_id, token, METHODS[method], locale or "en_US"
            )
        except GraphError as exc:
            raise _api_error(exc, "send a verification code") from exc
        return phone

    async def verify(
        self, org_id: str, phone_id: str, body: dict[str, Any], *, livemode: bool
    ) -> Phone:
        v.reject_unknown(body, {"code"})
        code = v.string(body, "code", max_length=6, required=True, pattern=CODE, hint="six digits")
        assert code is not None
        phone, graph, token = await self._pending(org_id, phone_id, livemode)
        try:
            await graph.verify_code(phone.meta_phone_number_id, token, code)
        except GraphError as exc:
            if exc.code == WRONG_CODE and await _expired(graph, phone, token):
                raise ApiError(
                    422,
                    "verification_code_expired",
                    "The verification code has expired; request a new one.",
                ) from exc
            raise _api_error(exc, "verify the number") from exc

        context = f"phone:{phone.org_id}:{phone.meta_phone_number_id}"
        pin = derived_pin(self.box, phone.org_id, phone.meta_phone_number_id)
        # Kept before Meta hears it: a number must never end up with a PIN we lost.
        await self.storage.update_phone(
            phone.id,
            {"pin_enc": self.box.encrypt(pin, context=context)},
            statuses={PhoneStatus.PENDING_VERIFICATION},
        )
        changes: dict[str, Any]
        try:
            await graph.register_phone(phone.meta_phone_number_id, token, pin)
            changes = {"status": PhoneStatus.CONNECTED, "is_registered": True}
            changes["registration_error"] = None
        except GraphError as exc:
            if exc.unreachable:
                raise _api_error(exc, "register the verified number") from exc
            error = {"code": exc.code, "subcode": exc.subcode, "message": exc.message}
            changes = {"status": PhoneStatus.REGISTRATION_FAILED, "registration_error": error}
        changes["updated_at"] = self.clock()
        return await self._update(phone, changes)

    async def _update(self, phone: Phone, changes: dict[str, Any]) -> Phone:
        """Apply the change with its phone_number.updated event, at most once."""
        preview = Phone.from_doc({**phone.to_doc(), **changes})
        data = {**phone_view(preview), "previousStatus": phone.status.value, **NOT_FROM_META}
        event, deliveries = await self.webhooks.plan(
            phone.org_id,
            "phone_number.updated",
            data,
            waba_id=phone.waba_id,
            livemode=phone.livemode,
        )
        updated = await self.storage.update_phone(
            phone.id,
            changes,
            statuses={PhoneStatus.PENDING_VERIFICATION},
            event=event,
            deliveries=deliveries,
        )
        if updated is None:
            raise ApiError(
                409, "phone_not_pending_verification", "This number was verified meanwhile."
            )
        await self.webhooks.engine.dispatch(deliveries)
        if updated.onboarding_link_id and "is_registered" in changes:
            # The link that connected it shows the same state.
            await self.links.update(
                updated.org_id,
                updated.onboarding_link_id,
                LinkCondition(statuses={LinkStatus.COMPLETED}),
                {"is_phone_registered": updated.is_registered, "updated_at": self.clock()},
            )
        return updated


async def _expired(graph: GraphClient, phone: Phone, token: str) -> bool:
    """Meta answers a wrong and an expired code alike (136025); the number's
    ``code_verification_status`` tells them apart."""
    try:
        info = await graph.phone(
            phone.meta_phone_number_id, token, fields="code_verification_status"
        )
    except GraphError:
        return False
    return info.code_verification_status == "EXPIRED"


def _api_error(exc: GraphError, action: str) -> ApiError:
    if exc.unreachable:
        return ApiError(502, "meta_unavailable", "Meta could not be reached; try again shortly.")
    if exc.code == WRONG_CODE:
        return ApiError(
            422, "verification_code_incorrect", "Meta did not accept this verification code."
        )
    if exc.code in RATE_LIMITED:
        return ApiError(
            429,
            "meta_rate_limited",
            f"Meta limits how often it can {action} (code {exc.code}); try again later.",
            headers={"Retry-After": "60"},
        )
    return ApiError(
        422, "meta_rejected", f"Meta refused to {action} (code {exc.code}): {exc.message}"
    )
