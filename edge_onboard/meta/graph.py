"""Meta's Graph API: the calls Embedded Signup needs, with errors that know retry from final.

Only calls that are safe to repeat are retried (with backoff and jitter). The code
exchange never is: codes are single-use and live about 30 seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import orjson

log = logging.getLogger("edge_onboard.meta.graph")

# Meta's codes worth another try (rate limits, transient server trouble).
RETRYABLE_CODES = frozenset(
    {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 133004, 131057, 133015}
)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PHONE_FIELDS = (
    "display_phone_number,verified_name,code_verification_status,quality_rating,"
    "platform_type,status,throughput,name_status,is_on_biz_app"
)
HEALTH_FIELDS = PHONE_FIELDS + ",health_status,webhook_configuration"
PROFILE_FIELDS = "about,address,description,email,profile_picture_url,websites,vertical"


class GraphError(Exception):
    """Graph answered with an error, or could not be reached (``code`` 0 then)."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        subcode: int | None = None,
        status: int | None = None,
        fbtrace_id: str | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.status = status
        self.fbtrace_id = fbtrace_id
        self.user_message = user_message

    @property
    def unreachable(self) -> bool:
        """Meta is down or timed out (as opposed to refusing the request)."""
        return self.code == 0 or (
            self.status is not None and self.status >= 500 and self.code in (0, 1, 2)
        )

    @property
    def retryable(self) -> bool:
        return self.code == 0 or self.code in RETRYABLE_CODES

    def __str__(self) -> str:
        sub = f"/{self.subcode}" if self.subcode else ""
        return f"Graph error {self.code}{sub}: {self.message}"


@dataclasses.dataclass(frozen=True, slots=True)
class PhoneInfo:
    id: str
    display_phone_number: str | None
    verified_name: str | None
    status: str | None
    platform_type: str | None
    quality_rating: str | None
    code_verification_status: str | None
    raw: Mapping[str, Any]
    # Meta's word that the number is a WhatsApp Business app number (coexistence).
    is_on_biz_app: bool = False

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> PhoneInfo:
        def text(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value is not None else None

        return cls(
            id=str(data.get("id", "")),
            display_phone_number=text("display_phone_number"),
            verified_name=text("verified_name"),
            status=text("status"),
            platform_type=text("platform_type"),
            quality_rating=text("quality_rating"),
            code_verification_status=text("code_verification_status"),
            raw=dict(data),
            is_on_biz_app=data.get("is_on_biz_app") is True,
        )

    @property
    def on_cloud_api(self) -> bool:
        """Already usable: connected on the Cloud API, so registering again is not needed."""
        return self.status == "CONNECTED" and self.platform_type == "CLOUD_API"


def e164(display: str | None) -> str | None:
    """``"+1 555-078-3881"`` or ``"15550783881"`` → ``"+15550783881"``."""
    if not display:
        return None
    digits = "".join(ch for ch in display if "0" <= ch <= "9")
    return f"+{digits}" if 7 <= len(digits) <= 15 else None


Sleep = Callable[[float], Awaitable[None]]


def _answered(exc: GraphError) -> bool:
    """Meta answered with an error of its own: the call did not take effect."""
    return not exc.unreachable


class GraphClient:
    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        app_id: str,
        app_secret: str,
        transport: httpx.AsyncBaseTransport | None = None,
        attempts: int = 3,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.app_id = app_id
        self._app_secret = app_secret
        self._attempts = attempts
        self.sleep = sleep  # injectable: tests back off without waiting
        self._http = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/{version}/",
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "edge-onboard"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        retry: bool | Callable[[GraphError], bool] = True,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        """One Graph call; retryable errors are tried again (``retry``: False never, or a
        test of the error, on top of it being retryable). ``content``: raw bytes instead
        of ``json``, with ``headers`` of their own."""
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        sent.update(headers or {})
        attempts = self._attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(
                    method, path, headers=sent, params=params, json=json, content=content
                )
            except GraphError as exc:
                again = exc.retryable and (retry is True or (callable(retry) and retry(exc)))
                if attempt == attempts or not again:
                    raise
                # Full jitter over an exponential step: 0.5 s, 1 s, 2 s, ...
                delay = random.uniform(0, 0.5 * 2 ** (attempt - 1))
                log.warning(
                    "graph %s %s failed (%s); retry %d in %.2fs",
                    method,
                    path.split("?")[0],
                    exc,
                    attempt,
                    delay,
                )
                await self.sleep(delay)
        raise AssertionError("unreachable")

    async def _once(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        json: Mapping[str, Any] | None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        send_headers = dict(headers)
        if json is not None:
            send_headers["Content-Type"] = "application/json"
            content = orjson.dumps(json)
        try:
            response = await self._http.request(
                method, path, headers=send_headers, params=params, content=content
            )
        except httpx.TimeoutException as exc:
            raise GraphError(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise GraphError(f"unreachable ({type(exc).__name__})") from exc
        try:
            body = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise GraphError(
                f"unexpected {response.status_code} response",
                status=response.status_code,
                code=0 if response.status_code >= 500 else -1,
            )
        error = body.get("error")
        if response.is_error or isinstance(error, dict):
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            subcode = error.get("error_subcode")
            raise GraphError(
                str(error.get("message") or f"HTTP {response.status_code}"),
                code=code if isinstance(code, int) else (0 if response.status_code >= 500 else -1),
                subcode=subcode if isinstance(subcode, int) else None,
                status=response.status_code,
                fbtrace_id=error.get("fbtrace_id"),
                user_message=error.get("error_user_msg"),
            )
        return body

    # Embedded Signup

    async def exchange_code(self, code: str) -> str:
        """The business token for a signup code. Never retried: codes are single-use."""
        body = await self._call(
            "GET",
            "oauth/access_token",
            params={"client_id": self.app_id, "client_secret": self._app_secret, "code": code},
            retry=False,
        )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise GraphError("no access_token in the code exchange response", code=-1)
        return token

    async def granted_waba_ids(self, token: str) -> set[str]:
        """WABA ids the business token was granted (debug_token's granular scopes)."""
        body = await self._call(
            "GET",
            "debug_token",
            token=f"{self.app_id}|{self._app_secret}",
            params={"input_token": token},
        )
        data = body.get("data") or {}
        if data.get("is_valid") is False:
            raise GraphError("the business token is not valid", code=190)
        granted: set[str] = set()
        for scope in data.get("granular_scopes") or []:
            if str(scope.get("scope", "")).startswith("whatsapp_business_manage"):
                granted.update(str(t) for t in scope.get("target_ids") or [])
        return granted

    async def waba_phone_numbers(self, waba_id: str, token: str) -> list[PhoneInfo]:
        body = await self._call(
            "GET", f"{waba_id}/phone_numbers", token=token, params={"fields": PHONE_FIELDS}
        )
        return [PhoneInfo.from_graph(item) for item in body.get("data") or []]

    async def subscribe_app(self, waba_id: str, token: str, *, fields: Sequence[str] = ()) -> None:
        """Subscribe the app to the WABA's webhooks; ``fields`` asks for more than the
        app's default fields (coexistence: history, smb_app_state_sync, …)."""
        params = {"subscribed_fields": ",".join(fields)} if fields else None
        await self._call("POST", f"{waba_id}/subscribed_apps", token=token, params=params)

    async def subscribed_app_ids(self, waba_id: str, token: str) -> set[str]:
        body = await self._call("GET", f"{waba_id}/subscribed_apps", token=token)
        ids: set[str] = set()
        for item in body.get("data") or []:
            app = item.get("whatsapp_business_api_data") or item
            if app.get("id"):
                ids.add(str(app["id"]))
        return ids

    async def set_phone_webhook(
        self, phone_id: str, token: str, *, callback_url: str, verify_token: str
    ) -> None:
        await self._call(
            "POST",
            phone_id,
            token=token,
            json={
                "webhook_configuration": {
                    "override_callback_uri": callback_url,
                    "verify_token": verify_token,
                }
            },
        )

    async def register_phone(self, phone_id: str, token: str, pin: str) -> None:
        await self._call(
            "POST",
            f"{phone_id}/register",
            token=token,
            json={"messaging_product": "whatsapp", "pin": pin},
        )

    async def business_token(self, owner_business_id: str, system_user_token: str) -> str:
        """A business token for a customer's business, through the partner's system user
        (recovering a signup whose code never reached us). Meta's pages show the answer
        both as ``{"access_token"}`` and as ``{"data": [{"access_token"}]}``: either is read."""
        proof = hmac.new(
            self._app_secret.encode(), system_user_token.encode(), hashlib.sha256
        ).hexdigest()
        body = await self._call(
            "POST",
            f"{owner_business_id}/system_user_access_tokens",
            token=system_user_token,
            params={"fetch_only": "true", "appsecret_proof": proof},
        )
        token = body.get("access_token")
        if not isinstance(token, str):
            data = body.get("data")
            first = data[0] if isinstance(data, list) and data else None
            token = first.get("access_token") if isinstance(first, dict) else None
        if not isinstance(token, str) or not token:
            raise GraphError("no access token in Meta's answer", code=-1)
        return token

    async def request_code(self, phone_id: str, token: str, method: str, language: str) -> None:
        """Send a verification code to an unverified number. Not retried: each try sends
        an SMS or a call, and Meta limits them."""
        await self._call(
            "POST",
            f"{phone_id}/request_code",
            token=token,
            json={"code_method": method, "language": language},
            retry=False,
        )

    async def verify_code(self, phone_id: str, token: str, code: str) -> None:
        await self._call(
            "POST", f"{phone_id}/verify_code", token=token, json={"code": code}, retry=False
        )

    async def smb_app_data(self, phone_id: str, token: str, sync_type: str) -> None:
        """Start a one-shot WhatsApp Business app sync (coexistence). Tried again only
        when Meta answered that it did not happen; after a timeout it may have."""
        await self._call(
            "POST",
            f"{phone_id}/smb_app_data",
            token=token,
            json={"messaging_product": "whatsapp", "sync_type": sync_type},
            retry=_answered,
        )

    async def send_message(self, phone_id: str, token: str, payload: Mapping[str, Any]) -> str:
        """Send; the Meta message id. Never retried here: Meta may have sent it already,
        so the caller retries, with its idempotency key."""
        body = await self._call(
            "POST",
            f"{phone_id}/messages",
            token=token,
            json={"messaging_product": "whatsapp", "recipient_type": "individual", **payload},
            retry=False,
        )
        messages = body.get("messages") or []
        message_id = messages[0].get("id") if messages and isinstance(messages[0], dict) else None
        if not isinstance(message_id, str):
            raise GraphError("no message id in Meta's answer", code=-1)
        return message_id

    async def phone(self, phone_id: str, token: str, *, fields: str = PHONE_FIELDS) -> PhoneInfo:
        body = await self._call("GET", phone_id, token=token, params={"fields": fields})
        return PhoneInfo.from_graph(body)

    # Business profile

    async def business_profile(self, phone_id: str, token: str) -> dict[str, Any]:
        """The number's WhatsApp business profile (``data[0]`` of Meta's answer)."""
        body = await self._call(
            "GET",
            f"{phone_id}/whatsapp_business_profile",
            token=token,
            params={"fields": PROFILE_FIELDS},
        )
        data = body.get("data")
        first = data[0] if isinstance(data, list) and data else None
        return dict(first) if isinstance(first, dict) else {}

    async def set_business_profile(
        self, phone_id: str, token: str, fields: Mapping[str, Any]
    ) -> None:
        """Change the fields given (Meta leaves the others as they are)."""
        await self._call(
            "POST",
            f"{phone_id}/whatsapp_business_profile",
            token=token,
            json={"messaging_product": "whatsapp", **fields},
        )

    async def upload_handle(self, token: str, data: bytes, media_type: str, name: str) -> str:
        """Meta's resumable upload: a session on the app, then the bytes from offset 0;
        the answer's handle names the file in a later call (a profile photo)."""
        session = await self._call(
            "POST",
            f"{self.app_id}/uploads",
            token=token,
            params={"file_name": name, "file_length": str(len(data)), "file_type": media_type},
            retry=False,
        )
        upload_id = session.get("id")
        if not isinstance(upload_id, str) or not upload_id.startswith("upload:"):
            raise GraphError("no upload session in Meta's answer", code=-1)
        # The id's colon, escaped: unescaped, "upload:…" would read as a URL scheme.
        body = await self._call(
            "POST",
            quote(upload_id, safe=""),
            headers={"Authorization": f"OAuth {token}", "file_offset": "0"},
            content=data,
            retry=False,
        )
        handle = body.get("h")
        if not isinstance(handle, str) or not handle:
            raise GraphError("no file handle in Meta's answer", code=-1)
        return handle

    # Received media

    async def media(self, media_id: str, token: str) -> dict[str, Any]:
        """A received file: ``{url, mime_type, sha256, file_size, id}``. The url lives a few
        minutes and answers only with the business token."""
        return await self._call("GET", media_id, token=token)

    def same_origin(self, url: httpx.URL) -> bool:
        """``url`` is on the Graph host this client calls (where the sandbox serves media)."""
        base = self._http.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    async def open_download(self, url: httpx.URL, token: str) -> httpx.Response:
        """``GET url`` with the business token: the status and headers read, the body not
        (the caller streams it, then closes the response). Redirects come back unfollowed,
        for the caller to judge where they lead."""
        request = self._http.build_request(
            "GET", url, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        )
        try:
            return await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise GraphError(f"media download timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise GraphError(f"media download unreachable ({type(exc).__name__})") from exc
