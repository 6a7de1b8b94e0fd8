"""The hosted pages' own files (``pages/``): templates, and the script, stylesheet and
favicon served under content-versioned URLs, gzip-compressed once per process for the
browsers that take it (text only; the favicon is a compressed PNG already)."""

from __future__ import annotations

import functools
import gzip
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

STATIC_TYPES = {
    "signup.js": "application/javascript; charset=utf-8",
    "signup.css": "text/css; charset=utf-8",
    "favicon.ico": "image/x-icon",
}
COMPRESSIBLE = frozenset({"signup.js", "signup.css"})


@functools.cache
def asset(name: str) -> bytes:
    return resources.files("edge_onboard.pages").joinpath(name).read_bytes()


@functools.cache
def template(name: str) -> str:
    return asset(name).decode()


@functools.cache
def etag(name: str) -> str:
    return '"' + hashlib.sha256(asset(name)).hexdigest()[:20] + '"'


@functools.cache
def gzipped(name: str) -> bytes:
    """The asset compressed, at the highest level (once per process)."""
    return gzip.compress(asset(name), 9, mtime=0)


def accepts_gzip(request: Request) -> bool:
    return gzip_accepted(request.headers.get("accept-encoding", ""))


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip."""
    return "gzip" in accept_encoding and "gzip;q=0" not in accept_encoding.replace(" ", "")


def asset_url(name: str) -> str:
    """A versioned URL: it changes with the content, so browsers may keep it for a year."""
    return f"/static/{name}?v={etag(name).strip(chr(34))}"


def _serve(request: Request, name: str, *, versioned: bool) -> Response:
    media_type = STATIC_TYPES[name]
    tag = etag(name)
    headers = {
        "ETag": tag,
        # The page asks for ?v=<content hash>: that URL never changes meaning.
        "Cache-Control": "public, max-age=31536000, immutable"
        if versioned
        else "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if name in COMPRESSIBLE:
        headers["Vary"] = "Accept-Encoding"
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    if name in COMPRESSIBLE and accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(gzipped(name), media_type=media_type, headers=headers)
    return Response(asset(name), media_type=media_type, headers=headers)


async def static_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    return _serve(request, name, versioned=request.query_params.get("v") == etag(name)[1:-1])


async def favicon(request: Request) -> Response:
    """``/favicon.ico``, which browsers ask for on their own: ours, never a 404."""
    return _serve(request, "favicon.ico", versioned=False)
