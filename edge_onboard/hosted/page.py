"""The hosted pages rendered: the signup page and the status pages, in the end-user's
language and the organisation's branding, with their security headers, gzip-compressed
for browsers that take it."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import html
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core import i18n
from edge_onboard.core.templates import fill, script_json
from edge_onboard.hosted.assets import accepts_gzip, asset_url, gzip_accepted, template
from edge_onboard.onboarding.branding import Brand

FACEBOOK = "https://*.facebook.com"
FAVICON = "/favicon.ico"
# Error code (Meta's and ours) -> the catalog message the end-user reads.
ERROR_MESSAGES = {
    "signup_cancelled": "err_cancelled",
    "window_closed": "err_window_closed",
    "meta_signup_error": "err_meta",
    "missing_code": "err_unconfirmed",
    "missing_session_info": "err_unconfirmed",
    "code_exchange_failed": "err_unconfirmed",
    "token_check_failed": "err_unconfirmed",
    "phone_lookup_failed": "err_unconfirmed",
    "phone_not_in_waba": "err_unconfirmed",
    "waba_not_granted": "err_not_shared",
    "connection_type_not_allowed": "err_business_app",
    "meta_unavailable": "err_unavailable",
    "storage_unavailable": "err_unavailable",
    "service_busy": "err_unavailable",
    "internal_error": "err_unavailable",
    "rate_limited": "err_unavailable",
    "completion_in_progress": "err_busy",
    "meta_not_configured": "err_no_meta",
    "popup_blocked": "err_popup",
    "sdk_blocked": "err_sdk",
    "network": "err_network",
    "generic": "err_generic",
    # The verification step (edge_onboard/hosted/verification.py).
    "verification_code_incorrect": "err_code_wrong",
    "verification_code_expired": "err_code_expired",
    "meta_rate_limited": "err_code_limited",
    "verification_rate_limited": "err_code_limited",
    "verification_pass_invalid": "err_pass",
    "registration_failed": "err_register",
    "code_format": "err_code_format",
    # An update link's steps (edge_onboard/hosted/updates.py).
    "waba_mismatch": "err_waba_mismatch",
    "update_pass_invalid": "err_update_pass",
    "update_step_required": "err_update_step",
    "parameter_invalid": "err_profile_invalid",
    "parameter_missing": "err_profile_invalid",
    "meta_rejected": "err_meta_rejected",
    "phone_disconnected": "err_meta_rejected",
}
# What signup.js writes itself (the rest is in the HTML).
SCRIPT_MESSAGES = (
    "loading",
    "opening",
    "waiting",
    "redirecting",
    "success_number",
    "success_account",
    "details_session",
    "details_code",
    "details_step",
    "verify_intro",
    "verify_sent_sms",
    "verify_sent_voice",
    "verify_resend_in",
    "verify_sending",
    "verify_checking",
    "update_loading",
    "update_heading_reconnect",
    "update_intro_reconnect",
    "update_heading_add",
    "update_intro_add",
    "update_step_reconnect",
    "update_step_add_number",
    "update_step_verify",
    "update_step_profile",
    "update_done_title",
    "update_done_text",
    "profile_saving",
    "name_approved",
    "name_pending",
    "name_declined",
    "name_none",
)
_MIN_GZIP = 512
HTML = "text/html; charset=utf-8"


@functools.lru_cache(maxsize=64)
def page_headers(sdk_origin: str | None, style_hash: str | None = None) -> dict[str, str]:
    """The pages' security headers; ``style_hash`` allows the brand's one inline style."""
    sources = " ".join(s for s in ("'self'", sdk_origin) if s)
    frames = " ".join(s for s in (sdk_origin, FACEBOOK) if s)
    styles = "'self'" + (f" 'sha256-{style_hash}'" if style_hash else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src {sources}; connect-src {sources} {FACEBOOK}; "
            f"frame-src {frames}; img-src 'self' data: {FACEBOOK} https://*.fbcdn.net; "
            f"style-src {styles}; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        # Stricter values cut window.opener, and Meta's popup could not report back.
        "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


class Rendered:
    """One rendered page as a response, plain or gzip-compressed (compressed once, when
    first asked for). Starlette copies a response's headers and never changes them, so
    one response object serves every request for the page."""

    __slots__ = ("_gzip", "body", "plain")

    def __init__(self, body: str, status_code: int, headers: dict[str, str]) -> None:
        self.body = body.encode()
        self.plain = Response(self.body, status_code=status_code, media_type=HTML, headers=headers)
        self._gzip: Response | None = None

    def compressed(self) -> Response:
        if self._gzip is None:
            headers = {k: v for k, v in self.plain.headers.items() if k != "content-length"}
            self._gzip = Response(
                gzip.compress(self.body, 9, mtime=0),
                status_code=self.plain.status_code,
                media_type=HTML,
                headers={**headers, "content-encoding": "gzip"},
            )
        return self._gzip

    def response(self, request: Request) -> Response:
        if len(self.body) >= _MIN_GZIP and accepts_gzip(request):
            return self.compressed()
        return self.plain

    def encoded(self, accept_encoding: str) -> Response:
        """``response``, for a request's ``Accept-Encoding`` header (empty if none)."""
        if len(self.body) >= _MIN_GZIP and gzip_accepted(accept_encoding):
            return self.compressed()
        return self.plain


def _brand_style(brand: Brand) -> tuple[str, str | None]:
    """The brand's colours as one inline style element, and its CSP hash."""
    if not brand.color or not brand.on_color:
        return "", None
    css = f":root{{--brand:{brand.color};--on-brand:{brand.on_color}}}"
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return f"<style>{css}</style>", digest


def _chrome(cat: i18n.Catalog, brand: Brand | None, sandbox: bool) -> dict[str, str]:
    """What every page has: language, direction, brand header, footer, sandbox banner."""
    name = brand.name if brand else ""
    values = {key: html.escape(cat.text(key, brand=name)) for key in cat.messages if "." not in key}
    values |= {
        "lang": cat.lang,
        "dir": "rtl" if cat.rtl else "ltr",
        "signup_css": asset_url("signup.css"),
        "favicon": html.escape(brand.logo if brand and brand.logo else FAVICON),
        "sandbox_banner": (
            f'<header class="sandbox-banner"><p>{values["sandbox"]}</p></header>' if sandbox else ""
        ),
        "brand_header": "",
        "footer": "",
    }
    if brand is None:
        return values
    logo = (
        f'<img class="logo" src="{html.escape(brand.logo)}" alt="" width="40" height="40">'
        if brand.logo
        else ""
    )
    values["brand_header"] = (
        f'<div class="brand">{logo}<span class="brand-name"><bdi>{html.escape(name)}'
        "</bdi></span></div>"
    )
    targets = ((brand.support, "support"), (brand.privacy, "privacy"), (brand.terms, "terms"))
    links = [(href, values[key]) for href, key in targets if href]
    if links:
        items = "".join(f'<li><a href="{html.escape(h)}">{label}</a></li>' for h, label in links)
        values["footer"] = f'<footer class="legal"><ul>{items}</ul></footer>'
    return values


def status_page(
    cat: i18n.Catalog,
    brand: Brand | None,
    status_code: int,
    title_key: str,
    message: str,
    *,
    sandbox: bool,
    headers: dict[str, str] | None = None,
) -> Rendered:
    values = _chrome(cat, brand, sandbox)
    style, style_hash = _brand_style(brand) if brand else ("", None)
    values |= {
        "brand_style": style,
        "title": values[title_key],
        "message": html.escape(message),
    }
    body = fill(template("status.html"), values)
    return Rendered(body, status_code, {**page_headers(None, style_hash), **(headers or {})})


def signup_page(
    cat: i18n.Catalog,
    brand: Brand,
    config: dict[str, Any],
    sdk_url: str,
    sdk_origin: str,
    *,
    sandbox: bool,
    vary_language: bool,
) -> Rendered:
    values = _chrome(cat, brand, sandbox)
    style, style_hash = _brand_style(brand)
    name = f"<strong><bdi>{html.escape(brand.name)}</bdi></strong>"
    heading = html.escape(cat.messages.get("heading") or cat.text("heading"))
    config = {
        **config,
        "msg": {key: cat.text(key, brand=brand.name) for key in SCRIPT_MESSAGES},
        "errors": {code: cat.text(key, brand=brand.name) for code, key in ERROR_MESSAGES.items()},
    }
    # An update link's page starts on what its number needs (signup.js asks the server).
    update = bool(config.get("update"))
    values |= {
        "intro_class": ' class="hidden"' if update else "",
        "connect_class": " hidden" if update else "",
        "brand_style": style,
        "heading": i18n.fill(heading, {"brand": name}),
        "config": script_json(config),
        "sdk_url": html.escape(sdk_url),
        "signup_js": asset_url("signup.js"),
    }
    headers = page_headers(sdk_origin, style_hash)
    if vary_language:
        headers = {**headers, "Vary": "Accept-Language, Accept-Encoding"}
    else:
        headers = {**headers, "Vary": "Accept-Encoding"}
    return Rendered(fill(template("signup.html"), values), 200, headers)
