"""Received media: Graph's ``GET /{media-id}``, then its short-lived URL (a CDN at Meta)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from edge_onboard.core.responses import JSONResponse
from edge_onboard.meta.sandbox._state import _digits
from edge_onboard.meta.sandbox.sharing import Shared


class Media(Shared):
    def add_media(self, phone_id: str, content: bytes, **quirks: Any) -> str:
        """A file a customer sent to ``phone_id``; its media id. ``quirks`` bend the fake:
        ``mime_type``, ``file_size`` (what Graph claims), ``url`` (where Graph points),
        ``location`` (the CDN redirects there), ``length`` (the CDN's Content-Length; None
        sends none)."""
        media_id = _digits(16)
        record = {"content": content, "mime_type": "image/jpeg", "length": len(content)}
        self.phones[phone_id].setdefault("_media", {})[media_id] = {**record, **quirks}
        return media_id

    def _media(self, media_id: str, granted: set[str]) -> dict[str, Any] | None:
        for phone in self.phones.values():
            if media_id in phone.get("_media", {}) and phone["_waba"] in granted:
                media: dict[str, Any] = phone["_media"][media_id]
                return media
        return None

    def _media_info(self, request: Request, media_id: str, granted: set[str]) -> Response:
        media = self._media(media_id, granted) or {}
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": media.get("url", f"{base}/_sandbox/media/{media_id}?ext=1"),
                "mime_type": media["mime_type"],
                "sha256": hashlib.sha256(media["content"]).hexdigest(),
                "file_size": media.get("file_size", len(media["content"])),
                "id": media_id,
            }
        )

    async def media_download(self, request: Request) -> Response:
        token = self._token(request)
        media = self._media(request.path_params["media_id"], self.tokens.get(token or "", set()))
        if media is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        if media.get("location"):
            return Response(status_code=302, headers={"Location": media["location"]})
        content: bytes = media["content"]
        if media["length"] is None:

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(content), 1024):
                    yield content[start : start + 1024]

            return StreamingResponse(chunks(), media_type=media["mime_type"])
        return Response(
            content, media_type=media["mime_type"], headers={"Content-Length": str(media["length"])}
        )
