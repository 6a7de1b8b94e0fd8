"""The fake's browser side: its SDK, the popup's page and assets."""

from __future__ import annotations

from importlib import resources

from starlette.responses import Response

_STATIC = {
    "sdk.js": "application/javascript",
    "dialog.js": "application/javascript",
    "dialog.css": "text/css",
}


_DIALOG_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"


def _page(name: str, media_type: str) -> Response:
    content = resources.files("edge_onboard.pages").joinpath("sandbox", name).read_bytes()
    return _respond(content, media_type)


def _respond(content: bytes, media_type: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": _DIALOG_CSP,
            "Cross-Origin-Opener-Policy": "unsafe-none",
        },
    )
