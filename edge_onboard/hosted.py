"""The end-user side: the hosted signup page, its callback, static assets and Meta's
webhook handshake for connected phones."""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import logging
import re
from importlib import resources
from urllib.parse import urlsplit

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from edge_onboard import validation
from edge_onboard.errors import ApiError
from edge_onboard.inbound import signature_ok
from edge_onboard.lifecycle import announce
from edge_onboard.links import UUID_RE
from edge_onboard.responses import JSONResponse
from edge_onboard.services import Services, get_services, limit_inbound, limit_public
from edge_onboard.storage import LinkCondition, LinkStatus, OnboardingLink, StorageError

log = logging.getLogger("edge_onboard.hosted")
SANDBOX_SDK_PATH = "/_sandbox/sdk.js"
SANDBOX_BANNER = (
    '<div class="sandbox-banner" role="note">Sandbox — no real WhatsApp account is connected</div>'
)
STATIC_TYPES = {
    "signup.js": "application/javascript; charset=utf-8",
    "signup.css": "text/css; charset=utf-8",
}
FACEBOOK = "https://*.facebook.com"
MEMO_PAGES = 8
# Locales Meta's JS SDK is published in (connect.facebook.net/{locale}/sdk.js) for
# WhatsApp's main markets; a link's locale outside them falls back by language, then to
# en_US, so the popup never fails to load.
SDK_LOCALES = frozenset(
    "ar_AR bn_IN cs_CZ da_DK de_DE el_GR en_GB en_US es_ES es_LA fa_IR fi_FI fr_FR he_IL "
    "hi_IN hu_HU id_ID it_IT ja_JP ko_KR ms_MY nb_NO nl_NL pl_PL pt_BR pt_PT ro_RO ru_RU "
    "sv_SE th_TH tl_PH tr_TR uk_UA ur_PK vi_VN zh_CN zh_TW".split()
)
_SDK_LANGUAGE = {"es": "es_LA", "pt": "pt_BR", "ar": "ar_AR", "en": "en_US", "zh": "zh_CN"}
DEFAULT_SDK_LOCALE = "en_US"


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("edge_onboard.pages").joinpath(name).read_bytes()


@functools.cache
def _template(name: str) -> str:
    return _asset(name).decode()


@functools.cache
def _etag(name: str) -> str:
    return '"' + hashlib.sha256(_asset(name)).hexdigest()[:20] + '"'


def sdk_locale(locale: str | None) -> str:
    """The SDK locale for a link's locale: itself, its language's, or en_US."""
    if not locale:
        return DEFAULT_SDK_LOCALE
    if locale in SDK_LOCALES:
        return locale
    language = locale.split("_", 1)[0]
    fallback = _SDK_LANGUAGE.get(language) or next(
        (known for known in sorted(SDK_LOCALES) if known.startswith(language + "_")), None
    )
    return fallback or DEFAULT_SDK_LOCALE


def localised_sdk_url(sdk_url: str, locale: str | None) -> str:
    """Meta's SDK URL in the link's locale, so Meta's popup speaks it too. A configured
    URL without Meta's /en_US/ segment (a proxy, a test double) is used as it is."""
    marker = f"/{DEFAULT_SDK_LOCALE}/"
    if marker not in sdk_url:
        return sdk_url
    return sdk_url.replace(marker, f"/{sdk_locale(locale)}/", 1)


def asset_url(name: str) -> str:
    """A versioned URL: it changes with the content, so browsers may keep it for a year."""
    return f"/static/{name}?v={_etag(name).strip(chr(34))}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.cache  # one per SDK origin; Starlette copies headers, never changes them
def _page_headers(sdk_origin: str | None) -> dict[str, str]:
    sources = " ".join(s for s in ("'self'", sdk_origin) if s)
    frames = " ".join(s for s in (sdk_origin, FACEBOOK) if s)
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src {sources}; connect-src {sources} {FACEBOOK}; "
            f"frame-src {frames}; img-src 'self' data: {FACEBOOK} https://*.fbcdn.net; "
            "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        # Stricter values cut window.opener, and Meta's popup could not report back.
        "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _lang(link: OnboardingLink | None) -> str:
    if link is None or not link.locale:
        return "en"
    return link.locale.replace("_", "-")


_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass, so a value that looks like a placeholder (a link named "{{config}}") stays text.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _status_page(
    services: Services,
    status_code: int,
    title: str,
    message: str,
    link: OnboardingLink | None,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    body = _fill(
        _template("status.html"),
        {
            "lang": _lang(link),
            "title": html.escape(title),
            "message": html.escape(message),
            "sandbox_banner": SANDBOX_BANNER if services.settings.sandbox else "",
            "signup_css": asset_url("signup.css"),
        },
    )
    return Response(
        body,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers={**_page_headers(None), **(headers or {})},
    )


async def signup_page(request: Request) -> Response:
    services = get_services(request)
    try:
        await limit_public(request, services)
    except ApiError as exc:
        return _status_page(
            services, 429, "Too many requests", exc.message, None, headers=exc.headers
        )
    link_id = request.path_params["link_id"]
    link, memo = await services.links.load_cached(None, link_id)
    if link is None:
        return _status_page(
            services,
            404,
            "Link not found",
            "This onboarding link does not exist. Check the address, or ask "
            "the company that sent it for a new one.",
            None,
        )
    if link.status in (LinkStatus.DELETED, LinkStatus.EXPIRED):
        word = "expired" if link.status is LinkStatus.EXPIRED else "is no longer valid"
        return _status_page(
            services,
            410,
            "Link no longer valid",
            f"This onboarding link {'has ' + word if word == 'expired' else word}"
            ". Ask the company that sent it for a new one.",
            link,
        )
    if link.status is LinkStatus.COMPLETED:
        return _status_page(
            services,
            200,
            "Already connected",
            "A WhatsApp number is already connected with this link. "
            "There is nothing more to do here.",
            link,
        )

    if link.opened_at is None:
        await _first_view(services, link)
    settings = services.settings
    if settings.sandbox:
        # The sandbox SDK is served by this app ('self' in the CSP), and its popup posts
        # from the page's own origin. The CSP names the public address, never an origin
        # taken from the request's Host header, which the client chooses.
        sdk_url = SANDBOX_SDK_PATH
        sdk_origin = _origin(settings.public_url)
    else:
        sdk_url = localised_sdk_url(settings.meta_sdk_url, link.locale)
        sdk_origin = _origin(sdk_url)
    # Rendered once per copy of the link in the hot layer, not once per request.
    page: Response | None = memo.get(("page", sdk_origin))
    if page is None:
        page = _signup_page(services, link, sdk_url, sdk_origin)
        if len(memo) < MEMO_PAGES:  # one origin in production; a few in the sandbox
            memo[("page", sdk_origin)] = page
    return page


async def _first_view(services: Services, link: OnboardingLink) -> None:
    """onboarding_link.opened, once: the first view of a pending link marks it."""
    now = services.clock()
    opened = await services.links.update(
        link.org_id,
        link.id,
        LinkCondition(statuses={LinkStatus.PENDING}, unopened=True),
        {"opened_at": now},
    )
    if opened is not None:
        await announce(services.webhooks, opened, "opened")


def _signup_page(
    services: Services, link: OnboardingLink, sdk_url: str, sdk_origin: str
) -> Response:
    settings = services.settings
    meta = services.meta_app
    config = {
        "linkId": link.id,
        "callbackUrl": f"/signup/{link.id}/callback",
        "sessionUrl": f"/signup/{link.id}/session",
        "businessApp": "business_app" in (link.connection_types or ()),
        "appId": meta.app_id if meta else None,
        "configId": meta.config_id if meta else None,
        "graphVersion": settings.meta_graph_version,
        "sdkOrigin": sdk_origin,
        "prefill": services.links.prefill_of(link),
        "sandbox": settings.sandbox,
        "metaConfigured": meta is not None,
    }
    # JSON inside <script>: no "<", ">" or "&" may appear raw.
    config_json = (
        orjson.dumps(config)
        .replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace(b"&", b"\\u0026")
        .decode()
    )
    body = _fill(
        _template("signup.html"),
        {
            "lang": _lang(link),
            "name": html.escape(link.name),
            "config": config_json,
            "sandbox_banner": SANDBOX_BANNER if settings.sandbox else "",
            "sdk_url": html.escape(sdk_url),
            "signup_css": asset_url("signup.css"),
            "signup_js": asset_url("signup.js"),
        },
    )
    return Response(body, media_type="text/html; charset=utf-8", headers=_page_headers(sdk_origin))


async def signup_callback(request: Request) -> Response:
    services = get_services(request)
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return _callback_error(403, "cross_origin", "Cross-origin callbacks are not accepted.")
    try:
        await limit_public(request, services)
        raw = await validation.read_body(request)
        body = validation.json_object(request, raw)
        outcome = await services.completion.handle(request.path_params["link_id"], body)
    except ApiError as exc:
        return _callback_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    except ClientDisconnect:
        raise  # nobody to answer: the app's handler notes it in one debug line
    except StorageError as exc:
        log.error("callback: storage unavailable: %s", exc)
        return _callback_error(
            503,
            "storage_unavailable",
            "We could not save this right now; please try again.",
            {"Retry-After": "1"},
        )
    except Exception:
        # The page always gets its own shape, so it can offer the end-user a retry.
        log.exception(
            "callback failed request_id=%s", request.scope.get("state", {}).get("request_id")
        )
        return _callback_error(500, "internal_error", "Something went wrong on our side.")
    return JSONResponse(
        outcome.body, status_code=outcome.status_code, headers={"Cache-Control": "no-store"}
    )


async def signup_session(request: Request) -> Response:
    """The page's early report of Meta's session message (before the code). It never
    completes anything: it records, on a pending link, what Meta said was connected, so
    a signup whose tab closed can be matched to Meta's account_update later."""
    services = get_services(request)
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return _callback_error(403, "cross_origin", "Cross-origin reports are not accepted.")
    try:
        await limit_public(request, services)
        raw = await validation.read_body(request)
        body = validation.json_object(request, raw)
        await services.completion.record_session(request.path_params["link_id"], body)
    except ApiError as exc:
        return _callback_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    return JSONResponse(
        {"status": "recorded"}, status_code=202, headers={"Cache-Control": "no-store"}
    )


def _callback_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> Response:
    error = {"code": code, "message": message} | ({"param": param} if param else {})
    return JSONResponse(
        {"status": "error", "redirectUrl": None, "error": error},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


async def static_asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = STATIC_TYPES.get(name)
    if media_type is None:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    etag = _etag(name)
    versioned = request.query_params.get("v") == etag.strip('"')
    headers = {
        "ETag": etag,
        # The page asks for ?v=<content hash>: that URL never changes meaning.
        "Cache-Control": "public, max-age=31536000, immutable"
        if versioned
        else "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(_asset(name), media_type=media_type, headers=headers)


async def phone_webhook(request: Request) -> Response:
    """Meta's deliveries (messages, statuses): verified, recorded once, answered fast."""
    services = get_services(request)
    phone_id = request.path_params["phone_id"]
    if not UUID_RE.match(phone_id):
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    try:
        await limit_inbound(request, services)
        raw = await validation.read_body(request)
    except ApiError as exc:
        return Response(
            exc.message.encode(),
            status_code=exc.status_code,
            media_type="text/plain",
            headers=exc.headers,
        )
    meta = services.meta_app
    header = request.headers.get("x-hub-signature-256")
    if meta is None or not signature_ok(meta.secret, raw, header):
        # Logged without the body: it is not ours to keep if it is not Meta's.
        log.warning(
            "meta webhook for %s: bad or missing signature (%d bytes); refused", phone_id, len(raw)
        )
        return Response(b"Invalid signature", status_code=401, media_type="text/plain")
    result = await services.inbound.handle(raw)
    log.info(
        "meta webhook for %s: %d events, %d duplicates, %d skipped",
        phone_id,
        result.emitted,
        result.duplicates,
        result.skipped,
    )
    return Response(b"OK", media_type="text/plain")


async def phone_webhook_handshake(request: Request) -> Response:
    """Meta's ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``."""
    services = get_services(request)
    phone_id = request.path_params["phone_id"]
    if not UUID_RE.match(phone_id):
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    query = request.query_params
    expected = services.completion.verify_token(phone_id)
    given = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    if (
        query.get("hub.mode") == "subscribe"
        and hmac.compare_digest(given.encode(), expected.encode())
        and 0 < len(challenge) <= 256
    ):
        return Response(challenge.encode(), media_type="text/plain")
    return Response(b"Forbidden", status_code=403, media_type="text/plain")
