"""What the fake Meta sends to the service: message statuses and inbound messages to a
number's callback URL, and its app-level ``account_update`` webhooks."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse
from edge_onboard.meta.fields import NUMBER_FIELDS
from edge_onboard.meta.sandbox._state import APP_ID, APP_WEBHOOK_URL, graph_error
from edge_onboard.meta.sandbox.samples import sample
from edge_onboard.meta.sandbox.sharing import Shared

_BSUID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}\Z")


class Messaging(Shared):
    async def _send(self, request: Request, phone: dict[str, Any]) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return graph_error("(#100) Invalid parameter", 100)
        to = str(body.get("to", ""))
        # Like Meta: a business-scoped user id goes as ``recipient``, in place of ``to``.
        user_id = str(body.get("recipient", "")) if "to" not in body else ""
        if body.get("messaging_product") != "whatsapp" or not (
            to.isdigit() or _BSUID.match(user_id)
        ):
            return graph_error("(#100) Invalid parameter", 100)
        recipient = {"recipient_id": to} if to else {"recipient_user_id": user_id}
        if phone["platform_type"] != "CLOUD_API":
            return graph_error("(#133010) Account not registered", 133010)
        message_id = "wamid.Sandbox" + secrets.token_urlsafe(18)
        # Like Meta: the statuses follow, by webhook, to the number's callback URL.
        for status in ("sent", "delivered", "read"):
            self.queue_webhook(
                phone,
                {
                    "statuses": [
                        {
                            "id": message_id,
                            "status": status,
                            "timestamp": str(int(time.time())),
                            **recipient,
                        }
                    ]
                },
            )
        contact = {"input": to, "wa_id": to} if to else {"input": user_id, "user_id": user_id}
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": message_id}],
            }
        )

    def queue_webhook(
        self,
        phone: dict[str, Any],
        value: dict[str, Any],
        field: str = "messages",
        *,
        or_app: bool = False,
    ) -> None:
        """A Meta webhook for ``phone`` to be posted to its callback URL; without one,
        nothing (or, ``or_app``, to the app's, as Meta does for a number with no override)."""
        url = phone.get("_webhook") or (APP_WEBHOOK_URL if or_app else None)
        if not url:
            return
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": phone["_waba"],
                    "changes": [
                        {
                            "field": field,
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": phone["display_phone_number"],
                                    "phone_number_id": phone["id"],
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }
        self.outbox.append((url, orjson.dumps(payload)))

    def emit(self, phone_id: str, field: str, value: dict[str, Any]) -> bool:
        """Meta's webhook ``field`` with ``value`` for a number of the fake Meta: a field
        naming the number goes to its callback URL (the app's when it has none), with the
        number's metadata; the others to the app's, for the number's WABA. False: no such
        number."""
        phone = self.phones.get(phone_id)
        if phone is None:
            return False
        if field in NUMBER_FIELDS:
            self.queue_webhook(phone, value, field, or_app=True)
            return True
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": phone["_waba"],
                    "time": int(time.time()),
                    "changes": [{"field": field, "value": value}],
                }
            ],
        }
        self.outbox.append((APP_WEBHOOK_URL, orjson.dumps(payload)))
        return True

    def emit_sample(self, phone_id: str, kind: str) -> bool:
        """One of ``samples.SAMPLES`` for the number; False: no such number or kind."""
        phone = self.phones.get(phone_id)
        found = sample(kind, phone) if phone is not None else None
        return found is not None and self.emit(phone_id, *found)

    def inbound(self, phone_id: str, sender: str, text: str) -> bool:
        """A customer writes to a connected number: Meta's ``messages`` webhook follows."""
        phone = self.phones.get(phone_id)
        if phone is None:
            return False
        self.queue_webhook(
            phone,
            {
                "contacts": [{"profile": {"name": "Sandbox Customer"}, "wa_id": sender}],
                "messages": [
                    {
                        "from": sender,
                        "id": "wamid.Sandbox" + secrets.token_urlsafe(18),
                        "timestamp": str(int(time.time())),
                        "type": "text",
                        "text": {"body": text},
                    }
                ],
            },
        )
        return True

    async def flush(self, client: Any) -> int:
        """POST the queued webhooks, signed with the app secret, through ``client``
        (an httpx client on the service itself); returns how many were sent."""
        from edge_onboard.meta.inbound import sign_body

        sent = 0
        while self.outbox:
            url, raw = self.outbox.pop(0)
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

    async def inbound_endpoint(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "send {phone_number_id, from, text}"}, status_code=400)
        phone_id = str(body.get("phone_number_id", ""))
        async with self._synced(ids=[phone_id] if phone_id.isdigit() else []):
            ok = self.inbound(phone_id, str(body.get("from", "")), str(body.get("text", "")))
        return JSONResponse({"queued": ok}, status_code=202 if ok else 404)

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
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": entry_id,
                    "time": int(time.time()),
                    "changes": [{"field": "account_update", "value": value}],
                }
            ],
        }
        self.outbox.append((APP_WEBHOOK_URL, orjson.dumps(payload)))
