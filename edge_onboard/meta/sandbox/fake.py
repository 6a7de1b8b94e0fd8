"""The fake Meta itself: the dialog's endings and the Graph calls Embedded Signup makes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_onboard.core.responses import JSONResponse
from edge_onboard.core.validation import ascii_digits
from edge_onboard.meta.sandbox import dialog as sandbox_dialog
from edge_onboard.meta.sandbox._state import (
    APP_ID,
    CALL_PATH,
    CODE_TTL,
    SCENARIOS,
    SYSTEM_USER_TOKEN,
    VERIFY_CODE,
    VERIFY_CODE_TTL,
    _Code,
    _digits,
    _Failure,
    _no_object,
    _note,
    graph_error,
)
from edge_onboard.meta.sandbox.media import Media
from edge_onboard.meta.sandbox.messaging import Messaging
from edge_onboard.meta.sandbox.pages import _STATIC, _page, _respond
from edge_onboard.meta.sandbox.profile import Profile


class SandboxMeta(Media, Messaging, Profile):
    """The fake Meta: state (``State``), shared between processes (``Shared``), media,
    what it sends, business profiles, and here the dialog and Graph."""

    def fail(
        self,
        method: str,
        path_suffix: str,
        *,
        status: int = 500,
        code: int | None = None,
        subcode: int | None = None,
        message: str = "Sandbox failure",
        times: int = 1,
    ) -> None:
        """Make the next ``times`` matching Graph calls fail (``code`` None: a bare 5xx)."""
        body = None
        if code is not None:
            body = {"error": {"message": message, "type": "OAuthException", "code": code}}
            if subcode is not None:
                body["error"]["error_subcode"] = subcode
        self._failures.append(_Failure(method.upper(), path_suffix, status, body, times))

    def _injected(self, method: str, path: str) -> Response | None:
        for failure in self._failures:
            if (
                failure.times > 0
                and failure.method == method
                and path.endswith(failure.path_suffix)
            ):
                failure.times -= 1
                if failure.times == 0:
                    self._failures.remove(failure)
                if failure.body is None:
                    return Response(
                        b"<html>Service Unavailable</html>",
                        status_code=failure.status,
                        media_type="text/html",
                    )
                return JSONResponse(failure.body, status_code=failure.status)
        return None

    def finish(self, scenario: str) -> dict[str, Any]:
        """What the popup reports for ``scenario``: the session message and a fresh code.

        Embedded Signup v4 endings: ``ok``/``registered``/``register_fails``/``foreign_waba``
        (FINISH with a verified number), ``unverified`` (FINISH, the number still needs its
        code: request_code, then verify_code with VERIFY_CODE), ``only_waba``
        (FINISH_ONLY_WABA) and ``no_number`` (FINISH, a WABA with no number),
        ``business_app`` (FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING: a WhatsApp Business app
        number, coexistence; ``data`` holds only the WABA), ``obo_migration`` and
        ``grant_only`` (FINISH_OBO_MIGRATION, FINISH_GRANT_ONLY_API_ACCESS), and
        ``meta_error`` (Meta's ERROR, with its code and session id)."""
        if scenario == "meta_error":
            return {
                "code": None,
                "event": "ERROR",
                "data": {
                    "error_message": "Sandbox: Meta could not finish the signup.",
                    "error_code": "524126",
                    "session_id": secrets.token_hex(8),
                    "timestamp": str(int(time.time())),
                },
            }
        waba_id, business_id = _digits(15), _digits(16)
        self.waba_phones[waba_id] = []
        return self._finish(scenario, waba_id, business_id)

    def finish_existing(
        self, scenario: str, waba_id: str, business_id: str
    ) -> dict[str, Any] | None:
        """The same business signs up again and picks its account ``waba_id`` (an update
        link: access lost, or a number to add). It proves who it is by naming the account's
        business portfolio too, as a Meta login would; None when they do not match. The
        account's first number is reported again; an account without one gets a new
        number as ``scenario`` says (none for the no-number endings)."""
        if self.businesses.get(business_id) != waba_id or waba_id not in self.waba_phones:
            return None
        if scenario == "meta_error":
            return self.finish(scenario)
        return self._finish(scenario, waba_id, business_id, existing=True)

    def _finish(
        self, scenario: str, waba_id: str, business_id: str, *, existing: bool = False
    ) -> dict[str, Any]:
        known = self.waba_phones[waba_id]
        if existing and known and scenario not in {"only_waba", "no_number", "grant_only"}:
            phone_id = known[0]
        elif scenario not in {"only_waba", "no_number", "grant_only"}:
            phone_id = self.add_number(waba_id, scenario)
        granted = {_digits(15)} if scenario == "foreign_waba" else {waba_id}
        token = self._new_token(granted)
        code = self._new_code(token)
        _note(wabas=[waba_id])
        data: dict[str, Any] = {"waba_id": waba_id, "business_id": business_id}
        data["session_id"] = secrets.token_hex(8)
        self.businesses[business_id] = waba_id
        if scenario == "close_tab":
            # The session message reaches the page, the code never does (the tab closed);
            # Meta tells the app itself, by its app-level webhook.
            self.account_update(business_id, "PARTNER_ADDED", waba_id, business_id)
            data["phone_number_id"] = phone_id
            return {"code": None, "event": "FINISH", "data": data}
        event = {
            "only_waba": "FINISH_ONLY_WABA",
            "business_app": "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
            "obo_migration": "FINISH_OBO_MIGRATION",
            "grant_only": "FINISH_GRANT_ONLY_API_ACCESS",
        }.get(scenario, "FINISH")
        if scenario == "business_app":
            data = {"waba_id": waba_id}  # Meta may send nothing more for coexistence
        elif event == "FINISH" and scenario != "no_number":
            data["phone_number_id"] = phone_id
        elif scenario == "obo_migration":
            data["phone_number_id"] = phone_id
            data["waba_ids"] = [waba_id]
        return {"code": code, "event": event, "data": data}

    def add_number(self, waba_id: str, scenario: str = "ok") -> str:
        """A number in ``waba_id`` (a test adds one later, for a WABA-only signup)."""
        phone_id = _digits(15)
        number = f"1555{_digits(7)}"
        on_cloud = scenario in {"registered", "business_app"}
        self.phones[phone_id] = {
            "id": phone_id,
            "display_phone_number": f"+1 {number[1:4]}-{number[4:7]}-{number[7:]}",
            "verified_name": "Sandbox Business",
            "code_verification_status": "NOT_VERIFIED" if scenario == "unverified" else "VERIFIED",
            "quality_rating": "GREEN" if on_cloud else "UNKNOWN",
            "platform_type": "CLOUD_API" if on_cloud else "NOT_APPLICABLE",
            "status": "CONNECTED" if on_cloud else "PENDING",
            "throughput": {"level": "STANDARD"},
            "name_status": "APPROVED",
            "_register_error": scenario == "register_fails",
            "_waba": waba_id,
        }
        if scenario == "business_app":
            self.phones[phone_id]["is_on_biz_app"] = True
            self.phones[phone_id]["_syncs"] = []
        self.waba_phones.setdefault(waba_id, []).append(phone_id)
        _note(wabas=[waba_id])
        return phone_id

    def remove_access(self, waba_id: str) -> bool:
        """The business removes the app's access: PARTNER_REMOVED follows."""
        owner = next((b for b, w in self.businesses.items() if w == waba_id), None)
        if owner is None:
            return False
        for token, granted in self.tokens.items():
            if waba_id in granted:
                self.tokens[token] = granted - {waba_id}
                _note(tokens=[token])
        # The app is no longer installed on the account: its webhook subscription goes too
        # (a signup that restores the grant subscribes it again).
        self.subscriptions.pop(waba_id, None)
        _note(wabas=[waba_id])
        self.account_update(owner, "PARTNER_REMOVED", waba_id, owner)
        return True

    async def revoke(self, waba_id: str) -> bool:
        """``remove_access`` on the state every process shares (a test control: the
        caller has checked that the WABA is the caller's)."""
        async with self._synced(ids=[waba_id]):
            removed = self.remove_access(waba_id)
            if removed and self.shared is not None:
                # Every token that grants it, as far as any process knows (by digest).
                await self.shared.ungrant(self._waba_tokens.get(waba_id, ()), waba_id)
            return removed

    def _system_user_token(self, request: Request, business_id: str) -> Response:
        if self._token(request) != SYSTEM_USER_TOKEN:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        proof = hmac.new(self.app_secret.encode(), SYSTEM_USER_TOKEN.encode(), hashlib.sha256)
        query = request.query_params
        if query.get("appsecret_proof") != proof.hexdigest() or query.get("fetch_only") != "true":
            return graph_error("Invalid appsecret_proof provided in the API argument", 100)
        waba_id = self.businesses.get(business_id)
        if waba_id is None:
            return _no_object(business_id)
        return JSONResponse({"access_token": self._new_token({waba_id})})

    def new_code(self, waba_id: str) -> str:
        """A fresh code granting an existing WABA: the same number signed up again."""
        return self._new_code(self._new_token({waba_id}))

    def _new_token(self, granted: set[str]) -> str:
        token = "EAASandbox" + secrets.token_urlsafe(24)
        self.tokens[token] = granted
        _note(tokens=[token], wabas=granted)
        return token

    def _new_code(self, token: str) -> str:
        code = "sandbox-code-" + secrets.token_urlsafe(16)
        self.codes[code] = _Code(token=token, expires_at=self.clock() + CODE_TTL)
        _note(codes=[code])
        return code

    async def graph(self, request: Request) -> Response:
        parts = request.path_params["path"].strip("/").split("/")
        query = request.query_params
        async with self._synced(
            code=query.get("code"),
            tokens=[self._token(request) or "", query.get("input_token", "")],
            ids=[parts[0]] if ascii_digits(parts[0]) else [],
            business=parts[0] if parts[1:] == ["system_user_access_tokens"] else None,
        ):
            return await self._graph(request)

    async def _graph(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        method = request.method
        self.calls.append((method, path[:CALL_PATH]))
        if self.on_call is not None:
            await self.on_call(method, path)
        injected = self._injected(method, path)
        if injected is not None:
            return injected
        parts = path.split("/")
        if path == "oauth/access_token" and method == "GET":
            return self._exchange(request)
        if path == "debug_token" and method == "GET":
            return self._debug_token(request)
        if len(parts) == 2 and parts[1] == "system_user_access_tokens" and method == "POST":
            return self._system_user_token(request, parts[0])
        if len(parts) == 1 and parts[0].startswith("upload:") and method == "POST":
            return await self._upload_data(request, parts[0])  # "OAuth" auth, not Bearer
        token = self._token(request)
        if token is None or token not in self.tokens:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        granted = self.tokens[token]
        if len(parts) == 2 and parts[1] == "uploads" and method == "POST":
            return self._upload_session(request, parts[0], token)
        if len(parts) == 2 and parts[1] in {"phone_numbers", "subscribed_apps"}:
            waba_id = parts[0]
            if waba_id not in granted or waba_id not in self.waba_phones:
                return _no_object(waba_id)
            if parts[1] == "phone_numbers":
                return JSONResponse(
                    {"data": [self._public(self.phones[p]) for p in self.waba_phones[waba_id]]}
                )
            apps = self.subscriptions.setdefault(waba_id, set())
            if method == "POST":
                apps.add(APP_ID)
                fields = request.query_params.get("subscribed_fields")
                if fields:
                    self.subscribed_fields[waba_id] = fields.split(",")
                return JSONResponse({"success": True})
            return JSONResponse(
                {
                    "data": [
                        {"whatsapp_business_api_data": {"id": app, "name": "Sandbox app"}}
                        for app in sorted(apps)
                    ]
                }
            )
        if len(parts) == 1 and method == "GET" and self._media(parts[0], granted) is not None:
            return self._media_info(request, parts[0], granted)
        phone = self.phones.get(parts[0])
        if phone is None or phone["_waba"] not in granted:
            return _no_object(parts[0])
        if len(parts) == 2 and parts[1] == "register" and method == "POST":
            return await self._register(request, phone)
        if len(parts) == 2 and parts[1] in {"request_code", "verify_code"} and method == "POST":
            return await self._verification(request, phone, parts[1])
        if (
            len(parts) == 2
            and parts[1] == "whatsapp_business_profile"
            and method in {"GET", "POST"}
        ):
            return await self._business_profile(request, phone, method)
        if len(parts) == 2 and parts[1] == "smb_app_data" and method == "POST":
            return await self._smb_app_data(request, phone)
        if len(parts) == 2 and parts[1] == "messages" and method == "POST":
            return await self._send(request, phone)
        if len(parts) == 1 and method == "POST":
            body = orjson.loads(await request.body() or b"{}")
            config = body.get("webhook_configuration") or {}
            if not str(config.get("override_callback_uri", "")).startswith(("http://", "https://")):
                return graph_error("(#100) Invalid parameter", 100)
            phone["_webhook"] = config["override_callback_uri"]
            return JSONResponse({"success": True})
        if len(parts) == 1 and method == "GET":
            return JSONResponse(self._public(phone, with_health=True))
        return graph_error(f"Unsupported {method.lower()} request.", 100, 33)

    def _exchange(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != APP_ID or query.get("client_secret") != self.app_secret:
            return graph_error("Error validating client secret.", 1, 463)
        grant = self.codes.get(query.get("code", ""))
        if grant is None:
            return graph_error("Invalid verification code format.", 100, 36009)
        if grant.used:
            return graph_error("This authorization code has been used.", 100, 36009)
        if self.clock() > grant.expires_at:
            return graph_error("This authorization code has expired.", 100, 36007)
        grant.used = True
        return JSONResponse({"access_token": grant.token, "token_type": "bearer"})

    def _debug_token(self, request: Request) -> Response:
        if self._token(request) != f"{APP_ID}|{self.app_secret}":
            return graph_error("Invalid OAuth access token signature.", 190)
        token = request.query_params.get("input_token", "")
        granted = self.tokens.get(token)
        if granted is None:
            return JSONResponse({"data": {"is_valid": False, "app_id": APP_ID}})
        targets = sorted(granted)
        return JSONResponse(
            {
                "data": {
                    "app_id": APP_ID,
                    "type": "SYSTEM_USER",
                    "is_valid": True,
                    "expires_at": 0,
                    "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                    "granular_scopes": [
                        {"scope": "whatsapp_business_management", "target_ids": targets},
                        {"scope": "whatsapp_business_messaging", "target_ids": targets},
                    ],
                }
            }
        )

    async def _verification(self, request: Request, phone: dict[str, Any], step: str) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        if phone["code_verification_status"] == "VERIFIED":
            return graph_error("(#136024) The phone number is already verified.", 136024)
        if step == "request_code":
            if body.get("code_method") not in {"SMS", "VOICE"} or not body.get("language"):
                return graph_error("(#100) Invalid parameter", 100)
            phone["_code_requested"] = True
            phone["_code_method"], phone["_code_language"] = body["code_method"], body["language"]
            phone["_code_expires_at"] = self.clock() + VERIFY_CODE_TTL
            phone["code_verification_status"] = "NOT_VERIFIED"
            return JSONResponse({"success": True})
        if not phone.get("_code_requested"):
            return graph_error("(#136025) Request a verification code first.", 136025)
        if self.clock() > phone.get("_code_expires_at", float("inf")):
            # Meta's answer is the wrong code's; the number's status says it expired.
            phone["code_verification_status"] = "EXPIRED"
            return graph_error("(#136025) Verify code error.", 136025)
        if str(body.get("code", "")) != VERIFY_CODE:
            return graph_error("(#136025) Verify code error: the code is wrong.", 136025)
        phone["code_verification_status"] = "VERIFIED"
        return JSONResponse({"success": True})

    async def _smb_app_data(self, request: Request, phone: dict[str, Any]) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        kind = body.get("sync_type")
        if not phone.get("is_on_biz_app") or body.get("messaging_product") != "whatsapp":
            return graph_error("(#100) Invalid parameter", 100)
        if kind not in {"smb_app_state_sync", "history"}:
            return graph_error("(#100) Invalid parameter", 100)
        if kind in phone["_syncs"]:  # one-shot: Meta refuses a second request
            return graph_error("(#100) The sync was already requested.", 100)
        phone["_syncs"].append(kind)
        return JSONResponse({"success": True, "request_id": "sandbox-" + secrets.token_hex(6)})

    async def _register(self, request: Request, phone: dict[str, Any]) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        pin = str(body.get("pin", ""))
        if body.get("messaging_product") != "whatsapp" or not (ascii_digits(pin) and len(pin) == 6):
            return graph_error("(#100) Invalid parameter", 100)
        if phone["code_verification_status"] != "VERIFIED":
            return graph_error("(#136025) The phone number is not verified.", 136025)
        if phone["_register_error"]:
            return graph_error("Two step verification PIN Mismatch", 133005, status=400)
        phone.update(status="CONNECTED", platform_type="CLOUD_API", quality_rating="GREEN")
        phone["_pin"] = pin
        return JSONResponse({"success": True})

    def _public(self, phone: dict[str, Any], *, with_health: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in phone.items() if not k.startswith("_")}
        if with_health:
            connected = phone["status"] == "CONNECTED" and phone["platform_type"] == "CLOUD_API"
            errors = (
                []
                if connected
                else [
                    {
                        "error_code": 141006,
                        "error_description": "The phone number is not registered on the Cloud API.",
                        "possible_solution": "Register the phone number.",
                    }
                ]
            )
            data["health_status"] = {
                "can_send_message": "AVAILABLE" if connected else "BLOCKED",
                "entities": [
                    {
                        "entity_type": "PHONE_NUMBER",
                        "id": phone["id"],
                        "can_send_message": "AVAILABLE" if connected else "BLOCKED",
                        "errors": errors,
                    },
                    {"entity_type": "WABA", "id": phone["_waba"], "can_send_message": "AVAILABLE"},
                ],
            }
            if phone.get("_webhook"):
                data["webhook_configuration"] = {"phone_number": phone["_webhook"]}
        return data

    async def dialog_finish(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        scenario = body.get("scenario") if isinstance(body, dict) else None
        if scenario not in SCENARIOS:
            return JSONResponse(
                {"error": f"scenario must be one of {', '.join(SCENARIOS)}"}, status_code=400
            )
        assert isinstance(body, dict)
        waba_id, business_id = body.get("waba_id") or "", body.get("business_id") or ""
        if waba_id or business_id:
            # An existing account: both of its ids, as its business would know them.
            if not (
                isinstance(waba_id, str)
                and isinstance(business_id, str)
                and ascii_digits(waba_id)
                and ascii_digits(business_id)
                and len(waba_id) <= 32
                and len(business_id) <= 32
            ):
                return JSONResponse({"error": "unknown account"}, status_code=404)
            async with self._synced(ids=[waba_id], business=business_id):
                again = self.finish_existing(scenario, waba_id, business_id)
            if again is None:
                return JSONResponse({"error": "unknown account"}, status_code=404)
            return JSONResponse(again)
        async with self._synced():
            finished = self.finish(scenario)
        return JSONResponse(finished)

    async def dialog(self, request: Request) -> Response:
        locale = sandbox_dialog.locale_of(request.query_params.get("locale"))
        content = sandbox_dialog.render(locale, VERIFY_CODE)
        return _respond(content, "text/html; charset=utf-8")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        return _page(name, _STATIC[name])

    def routes(self) -> list[Route]:
        return [
            Route(
                "/_sandbox/graph/{version}/{path:path}",
                self.graph,
                methods=["GET", "POST", "DELETE"],
            ),
            Route("/_sandbox/media/{media_id}", self.media_download, methods=["GET"]),
            Route("/_sandbox/dialog", self.dialog, methods=["GET"]),
            Route("/_sandbox/dialog/finish", self.dialog_finish, methods=["POST"]),
            Route("/_sandbox/{name}", self.static, methods=["GET"]),
        ]
