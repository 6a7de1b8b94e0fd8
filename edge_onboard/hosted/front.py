"""The front door (``GET /``: what this is, and where the API is described) and the
organisation's logo as the hosted page links to it (``GET /brand/{org_id}/{digest}``)."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse
from edge_onboard.hosted.assets import asset_url
from edge_onboard.hosted.deps import get_services
from edge_onboard.hosted.page import page_headers

SERVICE_NAME = "edge-onboard"
_ROOT_JSON = {"name": SERVICE_NAME, "openapi": "/openapi.json"}


@functools.cache
def _root_page() -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{SERVICE_NAME}</title>
<link rel="stylesheet" href="{asset_url("signup.css")}">
</head>
<body>
<main class="card">
<h1 class="title">{SERVICE_NAME}</h1>
<p>Hosted onboarding for the WhatsApp Business Platform: links, Embedded Signup, signed
webhooks. The API is described in <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
</main>
</body>
</html>
"""


def _quality(accept: str, media: str) -> float:
    """The q-value ``accept`` gives ``media``: from its most specific matching range."""
    kind = media.split("/", 1)[0]
    rank, quality = -1, 0.0
    for entry in accept.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        name = name.lower()
        specificity = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(name, -1)
        if specificity <= rank:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        rank, quality = specificity, q
    return quality


async def root(request: Request) -> Response:
    """HTML for a browser; JSON for a client that prefers it (``Accept: application/json``)."""
    accept = request.headers.get("accept") or "*/*"
    if _quality(accept, "application/json") > _quality(accept, "text/html"):
        return JSONResponse(_ROOT_JSON, headers={"Vary": "Accept"})
    return Response(
        _root_page(),
        media_type="text/html; charset=utf-8",
        # The status pages' headers: a strict CSP, no framing, no referrer, no caching.
        headers={**page_headers(None), "Vary": "Accept"},
    )


async def logo_file(request: Request) -> Response:
    """``GET /brand/{org_id}/{digest}``: an organisation's logo, from our origin."""
    found = await get_services(request).branding.logo(
        request.path_params["org_id"], request.path_params["digest"]
    )
    if found is None:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    data, media_type = found
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
