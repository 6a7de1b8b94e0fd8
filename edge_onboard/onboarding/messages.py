"""Sending WhatsApp messages through a connected number (text or template)."""

from __future__ import annotations

import re
from typing import Any

from edge_onboard.core import validation as v
from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.meta.graph import GraphError
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.phones import PhoneService
from edge_onboard.storage import Storage

SEND_FIELDS = frozenset({"to", "type", "text", "template"})
TEXT_FIELDS = frozenset({"body", "previewUrl"})
TEMPLATE_FIELDS = frozenset({"name", "language", "components"})
E164 = re.compile(r"^\+?[1-9][0-9]{6,14}\Z")
# A business-scoped user id (Meta's BSUID: country, optionally ENT. for a parent id, then
# up to 128 letters and digits): a customer with a username may have no number for you.
BSUID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}\Z")
RECIPIENT = re.compile(f"{E164.pattern[:-2]}\\Z|{BSUID.pattern}")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}\Z")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?\Z")
# Meta's throttling codes: the customer should slow down and retry.
RATE_LIMITED = frozenset({4, 17, 80007, 130429, 131056})


def parse_send(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The recipient (E.164, or a business-scoped user id as given) and the Graph payload
    for it (Meta takes a BSUID as ``recipient``, in place of ``to``)."""
    v.reject_unknown(body, SEND_FIELDS)
    to = v.string(
        body,
        "to",
        min_length=1,
        max_length=136,
        required=True,
        pattern=RECIPIENT,
        hint="an E.164 number such as +15550783881, or a user id such as US.13491208655302741918",
    )
    assert to is not None
    kind = body.get("type")
    if kind not in ("text", "template"):
        raise invalid(
            "'type' must be text or template.",
            param="type",
            code="parameter_missing" if kind is None else "parameter_invalid",
        )
    other = "template" if kind == "text" else "text"
    if other in body:  # null too: the schema says the field is absent for this type
        raise invalid(f"'{other}' does not go with type {kind}.", param=other)
    content = body.get(kind)
    if not isinstance(content, dict):
        raise invalid(
            f"'{kind}' is required with type {kind}.",
            param=kind,
            code="parameter_missing" if content is None else "parameter_invalid",
        )
    if BSUID.match(to):
        shown, address = to, {"recipient": to}
    else:
        shown, address = "+" + to.lstrip("+"), {"to": to.lstrip("+")}
    if kind == "text":
        v.reject_unknown(content, TEXT_FIELDS, where="text.")
        text = v.string(content, "body", min_length=1, max_length=4096, required=True)
        preview = content.get("previewUrl", False)
        if not isinstance(preview, bool):
            raise invalid("'text.previewUrl' must be a boolean.", param="text.previewUrl")
        return shown, {
            **address,
            "type": "text",
            "text": {"body": text, "preview_url": preview},
        }
    v.reject_unknown(content, TEMPLATE_FIELDS, where="template.")
    name = v.string(
        content,
        "name",
        min_length=1,
        max_length=512,
        required=True,
        pattern=TEMPLATE_NAME,
        hint="lower-case letters, digits and _",
    )
    language = content.get("language")
    if (
        not isinstance(language, dict)
        or set(language) != {"code"}
        or not isinstance(language.get("code"), str)
        or not LANGUAGE.match(language["code"])
    ):
        raise invalid('\'template.language\' must be {"code": "en_US"}.', param="template.language")
    components = content.get("components")
    if components is not None and (
        not isinstance(components, list) or not all(isinstance(c, dict) for c in components)
    ):
        raise invalid(
            "'template.components' must be a list of objects.", param="template.components"
        )
    template: dict[str, Any] = {"name": name, "language": {"code": language["code"]}}
    if components:
        template["components"] = components
    return shown, {**address, "type": "template", "template": template}


class MessageService:
    def __init__(
        self, storage: Storage, box: SecretBox, phones: PhoneService, meta: MetaModes
    ) -> None:
        self.storage = storage
        self.box = box
        self.phones = phones
        self.meta = meta

    async def send(
        self, org_id: str, phone_id: str, body: dict[str, Any], *, livemode: bool
    ) -> dict[str, Any]:
        phone = await self.phones.get(org_id, phone_id, livemode=livemode)
        to, payload = parse_send(body)
        graph = self.meta.graph(phone.livemode)
        if graph is None:
            raise ApiError(503, "meta_not_configured", "No Meta app is configured.")
        if not phone.is_registered:
            raise ApiError(
                409,
                "phone_not_registered",
                "This number is not registered on the Cloud API, so it cannot send.",
            )
        waba = await self.storage.get_waba(phone.waba_id)
        if waba is None:
            raise ApiError(409, "phone_not_registered", "This number has no WABA record.")
        token = self.box.decrypt(
            waba.access_token_enc, context=f"waba:{waba.org_id}:{waba.meta_waba_id}"
        )
        try:
            message_id = await graph.send_message(phone.meta_phone_number_id, token, payload)
        except GraphError as exc:
            if exc.unreachable:
                raise ApiError(
                    502,
                    "meta_unavailable",
                    "Meta could not be reached; retry with the same Idempotency-Key.",
                ) from exc
            if exc.code in RATE_LIMITED:
                raise ApiError(
                    429,
                    "meta_rate_limited",
                    f"Meta is throttling this number (code {exc.code}); retry later.",
                    headers={"Retry-After": "60"},
                ) from exc
            raise ApiError(
                422, "meta_rejected", f"Meta refused the message (code {exc.code}): {exc.message}"
            ) from exc
        return {
            "metaMessageId": message_id,
            "phoneNumberId": phone.id,
            "to": to,
            "type": payload["type"],
            "status": "accepted",
        }
