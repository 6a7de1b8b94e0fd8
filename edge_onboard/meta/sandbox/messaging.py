"""What the fake Meta sends to the service: message statuses and inbound messages to a
number's callback URL, and its app-level ``account_update`` webhooks."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse
from edge_onboard.core.validation import ascii_digits
from edge_onboard.meta.fields import NUMBER_FIELDS
from edge_onboard.meta.sandbox import platform_samples, samples
from edge_onboard.meta.sandbox._state import APP_ID, APP_WEBHOOK_URL, graph_error
from edge_onboard.meta.sandbox.sharing import Shared

# Fields Meta sends about one number (``value.metadata`` names it), to the number's
# callback URL when it has one; any other field goes to the app's callback.
PHONE_FIELDS = NUMBER_FIELDS
# A business-scoped user id, which Meta takes as ``recipient`` in place of ``to``.
_BSUID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}\Z")


class Messaging(Shared):
    async def _send(self, request: Request, phone: dict[str, Any]) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return graph_error("(#100) Invalid parameter", 100)
        to = str(body.get("to", ""))
        user_id = str(body.get("recipient", "")) if "to" not in body else ""
        if body.get("messaging_product") != "whatsapp" or not (
            ascii_digits(to) or _BSUID.match(user_id)
        ):
            return graph_error("(#100) Invalid parameter", 100)
        if phone["platform_type"] != "CLOUD_API":
            return graph_error("(#133010) Account not registered", 133010)
        message_id = samples.new_message_id()
        # Like Meta: the statuses follow, by webhook, to the number's callback URL.
        for status in ("sent", "delivered", "read"):
            value = samples.status_value(status, message_id, to)
            if not to:  # sent to a user id: Meta names the recipient by it
                for item in value["statuses"]:
                    del item["recipient_id"]
                    item["recipient_user_id"] = user_id
            self.queue_webhook(phone, value)
        contact = {"input": to, "wa_id": to} if to else {"input": user_id, "user_id": user_id}
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": message_id}],
            }
        )

    def queue_webhook(self, phone: dict[str, Any], value: dict[str, Any]) -> None:
        """A Meta webhook for ``phone`` (when its callback URL is set), to be posted."""
        url = phone.get("_webhook")
        if not url:
            return
        self.outbox.append((url, _envelope(phone["_waba"], "messages", _scoped(phone, value))))

    def deliver(self, phone_id: str, field: str, value: dict[str, Any]) -> str | None:
        """Any Meta webhook change (``field``, ``value``) about a number, posted as Meta
        would: a number-scoped change (a field in PHONE_FIELDS, or a value with
        ``metadata``) to the number's callback URL, with ``metadata`` naming the number
        (Meta's precedence: the number's override, else the app's callback); any other to
        the app's callback, on the number's WABA. Returns where it goes (``phone`` or
        ``app``), or None for an unknown number."""
        phone = self.phones.get(phone_id)
        if phone is None:
            return None
        url = APP_WEBHOOK_URL
        if field in PHONE_FIELDS or "metadata" in value:
            value = _scoped(phone, value)
            url = phone.get("_webhook") or APP_WEBHOOK_URL
        self.outbox.append((url, _envelope(phone["_waba"], field, value)))
        return "app" if url == APP_WEBHOOK_URL else "phone"

    def emit_sample(self, phone_id: str, kind: str) -> bool:
        """One of ``platform_samples.SAMPLES`` for the number, posted as Meta would
        (``deliver``); False: no such number or kind."""
        phone = self.phones.get(phone_id)
        found = platform_samples.sample(kind, phone) if phone is not None else None
        return found is not None and self.deliver(phone_id, *found) is not None

    def inbound(self, phone_id: str, sender: str, text: str) -> bool:
        """A customer writes to a connected number: Meta's ``messages`` webhook follows."""
        phone = self.phones.get(phone_id)
        if phone is None:
            return False
        self.queue_webhook(phone, samples.message_value("text", sender=sender, text=text)[1])
        return True

    async def flush(self, client: Any) -> int:
        """POST the queued webhooks, signed with the app secret, through ``client``
        (an httpx client on the service itself); returns how many were sent."""
        from edge_onboard.meta.inbound import sign_body

        sent = 0
        while self.outbox:
            url, raw = self.outbox.popleft()
            path = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
            await client.post(
                path,
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign_body(self.app_secret, raw),
                },
            )
            sent += 1
        return sent

    async def write_in(self, phone_id: str, sender: str, text: str) -> bool:
        """``inbound`` on the state every process shares (a test control: the caller has
        checked that the number is the caller's)."""
        async with self._synced(ids=[phone_id] if ascii_digits(phone_id) else []):
            return self.inbound(phone_id, sender, text)

    def account_update(
        self, entry_id: str, event: str, waba_id: str, owner_business_id: str
    ) -> None:
        """Meta's app-level ``account_update`` webhook, queued for /webhook/meta."""
        value = {
            "event": event,
            "waba_info": {
                "waba_id": waba_id,
                "owner_business_id": owner_business_id,
                "partner_app_id": APP_ID,
            },
        }
        self.outbox.append((APP_WEBHOOK_URL, _envelope(entry_id, "account_update", value)))


def _scoped(phone: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as Meta sends it for ``phone``: the product and the number's metadata."""
    metadata = {
        "display_phone_number": phone["display_phone_number"],
        "phone_number_id": phone["id"],
    }
    return {"messaging_product": "whatsapp", **value, "metadata": metadata}


def _envelope(entry_id: str, field: str, value: dict[str, Any]) -> bytes:
    """Meta's webhook body around one change."""
    change = {"field": field, "value": value}
    entry = {"id": entry_id, "time": int(time.time()), "changes": [change]}
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [entry]})
