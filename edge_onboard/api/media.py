"""``GET /v1/phones/{id}/media/{mediaId}``: a file a customer sent, streamed from Meta.

Meta gives a received file's URL only to the business token, which customers never see,
and the URL lives a few minutes: Graph's ``GET /{media-id}`` names it, then we fetch it
and relay the bytes as they come. Nothing is held whole in memory, and nothing past
MAX_MEDIA_BYTES is relayed: a larger size announced by Graph or by the download's
Content-Length is refused (413), and a download that runs past it is cut off.

The token goes to Meta's hosts only: the URL must be https on one of them (or on the
Graph host itself, which is where the sandbox serves media), and so must every redirect,
which is followed by hand for that reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from edge_onboard.api.deps import authorized
from edge_onboard.core.errors import ApiError, not_found
from edge_onboard.meta.graph import GraphClient, GraphError
from edge_onboard.onboarding.phones import business_token

log = logging.getLogger("edge_onboard.api.media")

MAX_MEDIA_BYTES = 100 * 1024 * 1024  # Meta's largest media: a document
MAX_REDIRECTS = 3
# Meta's media ids are decimal; anything else never reaches Graph as a path.
_MEDIA_ID = re.compile(r"[0-9]{1,32}")
# Where Meta serves media (lookaside.fbsbx.com today), each with its subdomains.
META_MEDIA_DOMAINS = ("fbsbx.com", "fbcdn.net", "facebook.com", "whatsapp.net", "whatsapp.com")
# A media type as a header value can carry it: type/subtype and printable parameters.
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+( *;[ -~]*)?", re.ASCII)
# Upstream headers passed on as they are.
_RELAYED = ("content-length", "content-encoding")


class MediaTooLarge(Exception):
    """The download ran past MAX_MEDIA_BYTES after its headers were sent: cut off."""


def _meta_host(url: httpx.URL) -> bool:
    host = url.host.lower()
    return url.scheme == "https" and any(
        host == domain or host.endswith("." + domain) for domain in META_MEDIA_DOMAINS
    )


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        "media_too_large",
        f"The file is {size} bytes; files over {MAX_MEDIA_BYTES} bytes are not relayed.",
    )


def _refused(reason: str) -> ApiError:
    return ApiError(502, "meta_error", f"Meta's media download failed: {reason}.")


async def _graph_media(graph: GraphClient, media_id: str, token: str) -> dict[str, Any]:
    try:
        return await graph.media(media_id, token)
    except GraphError as exc:
        if exc.unreachable:
            raise ApiError(
                502, "meta_unavailable", "Meta could not be reached; try again shortly."
            ) from exc
        if exc.code == 100:  # no such object, or not this business's
            raise not_found("media", media_id, param="mediaId") from exc
        raise ApiError(
            502, "meta_error", f"Meta refused the media request (Graph error {exc.code})."
        ) from exc


async def _download(graph: GraphClient, url: httpx.URL, token: str) -> httpx.Response:
    """The open download of ``url``, after redirects that stay on Meta's hosts."""
    for _ in range(MAX_REDIRECTS + 1):
        if not (_meta_host(url) or graph.same_origin(url)) or url.userinfo:
            log.warning("media: refused a download from %s", url.host or "an unnamed host")
            raise _refused("it points outside Meta")
        try:
            response = await graph.open_download(url, token)
        except GraphError as exc:
            raise ApiError(
                502, "meta_unavailable", "Meta could not be reached; try again shortly."
            ) from exc
        if not response.is_redirect:
            return response
        await response.aclose()
        url = url.join(response.headers.get("location", ""))
    raise _refused("too many redirects")


async def _chunks(upstream: httpx.Response, limit: int) -> AsyncGenerator[bytes, None]:
    """The body as it arrives, cut off past ``limit`` bytes (a Content-Length can lie, or
    be absent)."""
    relayed = 0
    async for chunk in upstream.aiter_raw():
        relayed += len(chunk)
        if relayed > limit:
            log.warning("media: download passed %d bytes; cut off", limit)
            raise MediaTooLarge(f"past {limit} bytes")
        yield chunk


class _Relay(StreamingResponse):
    """Streams the download, and closes it however the response ends (sent, cut off, or
    the client gone before the first byte)."""

    def __init__(self, upstream: httpx.Response, headers: dict[str, str], media_type: str) -> None:
        super().__init__(_chunks(upstream, MAX_MEDIA_BYTES), headers=headers, media_type=media_type)
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.upstream.aclose()


def _size(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return None


async def media_file(request: Request) -> Response:
    services, principal = await authorized(request)
    media_id = request.path_params["mediaId"]
    phone = await services.phones.get(
        principal.org_id, request.path_params["phone_id"], livemode=principal.livemode
    )
    if not _MEDIA_ID.fullmatch(media_id):
        raise not_found("media", media_id, param="mediaId")
    graph = services.meta.graph(phone.livemode)
    if graph is None:
        raise ApiError(503, "meta_not_configured", "No Meta app is configured to fetch media from.")
    waba = await services.storage.get_waba(phone.waba_id)
    if waba is None:
        raise not_found("phone number", phone.id, param="id")
    token = business_token(services.box, waba)
    info = await _graph_media(graph, media_id, token)
    announced = _size(info.get("file_size"))
    if announced is not None and announced > MAX_MEDIA_BYTES:
        raise _too_large(announced)
    url = info.get("url")
    if not isinstance(url, str) or not url:
        raise _refused("Graph named no URL")
    mime_type = info.get("mime_type")
    if not (isinstance(mime_type, str) and _MIME.fullmatch(mime_type)):
        mime_type = "application/octet-stream"
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{media_id}"',
        "X-Content-Type-Options": "nosniff",
    }
    if request.method == "HEAD":  # what Graph says of the file; nothing downloaded
        if announced is not None:
            headers["Content-Length"] = str(announced)
        return Response(headers=headers, media_type=mime_type)
    try:
        upstream = await _download(graph, httpx.URL(url), token)
    except httpx.InvalidURL as exc:
        raise _refused("Graph named no usable URL") from exc
    try:
        if upstream.status_code in (404, 410):  # the URL outlived, or the file gone
            raise not_found("media", media_id, param="mediaId")
        if upstream.status_code != 200:
            raise _refused(f"HTTP {upstream.status_code}")
        length = _size(upstream.headers.get("content-length"))
        if length is not None and length > MAX_MEDIA_BYTES:
            raise _too_large(length)
    except BaseException:
        await upstream.aclose()
        raise
    for name in _RELAYED:
        if name in upstream.headers:
            headers[name] = upstream.headers[name]
    return _Relay(upstream, headers, mime_type)
