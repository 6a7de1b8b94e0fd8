"""A number's WhatsApp business profile (``GET``/``POST /{phone}/whatsapp_business_profile``)
and Meta's resumable upload that gives a profile photo its handle (``POST
/{app}/uploads``, then ``POST /upload:…`` with the bytes)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse
from edge_onboard.core.validation import ascii_digits
from edge_onboard.meta.sandbox._state import APP_ID, _note, graph_error
from edge_onboard.meta.sandbox.sharing import Shared

# Meta's limits on the profile (its Business Profiles reference).
TEXT_LIMITS = {"about": (1, 139), "description": (0, 512), "address": (0, 256), "email": (0, 128)}
VERTICALS = frozenset(
    "UNDEFINED OTHER AUTO BEAUTY APPAREL EDU ENTERTAIN EVENT_PLAN FINANCE GROCERY GOVT "
    "HOTEL HEALTH NONPROFIT PROF_SERVICES RETAIL TRAVEL RESTAURANT NOT_A_BIZ".split()
)
UPLOAD_TYPES = frozenset({"image/jpeg", "image/png"})
# Open upload sessions and handles kept (the oldest dropped): anyone may call the fake.
UPLOADS_KEPT = 256


def _bound(kept: dict[str, Any]) -> None:
    while len(kept) > UPLOADS_KEPT:
        kept.pop(next(iter(kept)))


def _invalid(what: str) -> Response:
    return graph_error(f"(#100) Invalid parameter: {what}", 100)


class Profile(Shared):
    """Each phone's profile lives in its record (``_profile``); every accepted POST is
    kept in ``profile_posts`` as (Meta phone id, fields), for tests to read. Upload
    sessions and handles (the SHA-256 of their bytes) live in the process that made them."""

    async def _business_profile(
        self, request: Request, phone: dict[str, Any], method: str
    ) -> Response:
        profile = phone.setdefault("_profile", {"about": "Hey there! I am using WhatsApp."})
        if method == "GET":
            data = {"messaging_product": "whatsapp", **profile}
            return JSONResponse({"data": [data]})
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return _invalid("body")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _invalid("messaging_product")
        fields = {k: v for k, v in body.items() if k != "messaging_product"}
        for name, value in fields.items():
            if name in TEXT_LIMITS:
                low, high = TEXT_LIMITS[name]
                if not isinstance(value, str) or not low <= len(value) <= high:
                    return _invalid(name)
            elif name == "vertical":
                if value not in VERTICALS and value != "":
                    return _invalid(name)
            elif name == "websites":
                if not isinstance(value, list) or len(value) > 2:
                    return _invalid(name)
                if not all(
                    isinstance(w, str) and w.startswith(("http://", "https://")) and len(w) <= 256
                    for w in value
                ):
                    return _invalid(name)
            elif name == "profile_picture_handle":
                if value not in self.handles:
                    return _invalid(name)
            else:
                return _invalid(name)
        for name, value in fields.items():
            if name == "profile_picture_handle":
                digest = secrets.token_hex(8)
                profile["profile_picture_url"] = f"https://pps.whatsapp.net/v/sandbox/{digest}.jpg"
            else:
                profile[name] = value
        self.profile_posts.append((phone["id"], fields))
        _note(wabas=[phone["_waba"]])
        return JSONResponse({"success": True})

    def _upload_session(self, request: Request, app_id: str, token: str) -> Response:
        query = request.query_params
        length = query.get("file_length", "")
        if app_id != APP_ID:
            return graph_error(f"(#100) Unknown app {app_id}", 100)
        if query.get("file_type") not in UPLOAD_TYPES:
            return _invalid("file_type")
        if not ascii_digits(length) or not 0 < int(length) <= 5 * 1024 * 1024:
            return _invalid("file_length")
        upload_id = "upload:" + base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()
        self.uploads[upload_id] = {"length": int(length), "token": token}
        _bound(self.uploads)
        return JSONResponse({"id": upload_id})

    async def _upload_data(self, request: Request, upload_id: str) -> Response:
        session = self.uploads.get(upload_id)
        header = request.headers.get("authorization", "")
        if session is None:
            return graph_error(f"(#100) No upload session {upload_id}", 100)
        if header != f"OAuth {session['token']}":
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if request.headers.get("file_offset") != "0":
            return _invalid("file_offset")
        data = await request.body()
        if len(data) != session["length"]:
            return _invalid("file_length")
        handle = "4::" + base64.b64encode(secrets.token_bytes(18)).decode()
        self.handles[handle] = hashlib.sha256(data).hexdigest()
        _bound(self.handles)
        del self.uploads[upload_id]
        return JSONResponse({"h": handle})
