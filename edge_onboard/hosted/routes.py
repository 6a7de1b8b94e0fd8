"""The end-user side: the hosted signup page, its callback, static assets and Meta's
webhook handshake for connected phones."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response

from edge_onboard.core import i18n, validation
from edge_onboard.core.admission import Busy
from edge_onboard.core.errors import ApiError
from edge_onboard.core.responses import JSONResponse
from edge_onboard.core.validation import UUID_RE
from edge_onboard.hosted import page
from edge_onboard.hosted.deps import HostedServices, get_services, limit_inbound, limit_public
from edge_onboard.onboarding.branding import brand_of
from edge_onboard.onboarding.lifecycle import announce
from edge_onboard.onboarding.returns import dead_end_url, redirect_url
from edge_onboard.storage import (
    InboxItem,
    LinkCondition,
    LinkStatus,
    OnboardingLink,
    Organization,
    StorageError,
)

log = logging.getLogger("edge_onboard.hosted.routes")
SANDBOX_SDK_PATH = "/_sandbox/sdk.js"
MEMO_PAGES = 16
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


@functools.lru_cache(maxsize=64)  # a few configured URLs: once each, not per request
def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# A browser's Accept-Language and a link's locale name its page's language: negotiated
# once per pair (a few per deployment), not once per page view. A header longer than
# negotiation reads is not kept (it means English anyway).
_negotiated = functools.lru_cache(maxsize=1024)(i18n.page_locale)


def _page_locale(link_locale: str | None, accept_language: str | None) -> str:
    if accept_language is not None and len(accept_language) > i18n.MAX_ACCEPT_LANGUAGE:
        return i18n.page_locale(link_locale, accept_language)
    return _negotiated(link_locale, accept_language)


def localised_sdk_url(sdk_url: str, locale: str | None) -> str:
    """Meta's SDK URL in the link's locale, so Meta's popup speaks it too. A configured
    URL without Meta's /en_US/ segment (a proxy, a test double) is used as it is."""
    marker = f"/{DEFAULT_SDK_LOCALE}/"
    if marker not in sdk_url:
        return sdk_url
    return sdk_url.replace(marker, f"/{sdk_locale(locale)}/", 1)


def _accepts(request: Request) -> tuple[str | None, str]:
    """The request's ``Accept-Language`` (None if absent) and ``Accept-Encoding`` (empty
    if absent), each its first occurrence, as ``request.headers`` gives them: in one pass
    over the headers, as the busiest page is asked for."""
    language: str | None = None
    encoding: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"accept-language" and language is None:
            language = value.decode("latin-1")
        elif name == b"accept-encoding" and encoding is None:
            encoding = value.decode("latin-1")
    return language, encoding or ""


async def signup_page(request: Request) -> Response:
    services = get_services(request)
    sandbox = services.settings.sandbox
    accept_language, accept_encoding = _accepts(request)
    try:
        await limit_public(request, services)
    except ApiError as exc:
        cat = i18n.catalog(i18n.negotiate(accept_language))
        wait = exc.headers.get("Retry-After", "1")
        message = cat.plural("ratelimit_body", int(wait) if validation.ascii_digits(wait) else 1)
        busy = page.status_page(
            cat, None, 429, "ratelimit_title", message, sandbox=sandbox, headers=exc.headers
        )
        return busy.response(request)
    link_id = request.path_params["link_id"]
    link, memo = await services.links.load_cached(None, link_id)
    if link is None:
        cat = i18n.catalog(i18n.negotiate(accept_language))
        missing = page.status_page(
            cat, None, 404, "notfound_title", cat.text("notfound_body"), sandbox=sandbox
        )
        return missing.response(request)
    locale = _page_locale(link.locale, accept_language)
    if link.status.is_terminal:
        return await _finished(request, services, link, locale)

    if link.opened_at is None:
        await _first_view(services, link)
    # Per link, not per server: a test link runs against the built-in fake Meta (with
    # the sandbox banner) on any deployment, a live one against the configured app.
    sandboxed = services.meta.sandboxed(link.livemode)
    # Rendered once per copy of the link in the hot layer, not once per request (the
    # settings that also shape it are the process's own).
    key = ("page", sandboxed, locale)
    rendered: page.Rendered | None = memo.get(key)
    if rendered is None:
        settings = services.settings
        if sandboxed:
            # The sandbox SDK is served by this app ('self' in the CSP), and its popup
            # posts from the page's own origin. The CSP names the public address, never
            # an origin taken from the request's Host header, which the client chooses.
            sdk_url = f"{SANDBOX_SDK_PATH}?locale={sdk_locale(locale)}"
            sdk_origin = _origin(settings.public_url)
        else:
            sdk_url = localised_sdk_url(settings.meta_sdk_url, locale)
            sdk_origin = _origin(sdk_url)
        org = await services.branding.for_page(link.org_id)
        rendered = _signup_page(services, link, org, locale, sdk_url, sdk_origin)
        if len(memo) < MEMO_PAGES:  # a few languages, test and live
            memo[key] = rendered
    return rendered.encoded(accept_encoding)


async def _finished(
    request: Request, services: HostedServices, link: OnboardingLink, locale: str
) -> Response:
    """A link that can no longer be used: the end-user goes on to the customer
    (refreshUrl or redirectUrl) when it gave one, else gets a page that says why."""
    if link.status is LinkStatus.COMPLETED:
        target = redirect_url(link, ok=True)
        status_code, title, body = 200, "completed_title", "completed_body"
    else:
        reason = "expired" if link.status is LinkStatus.EXPIRED else "deleted"
        target = dead_end_url(link, reason)
        status_code, title, body = 410, f"{reason}_title", "gone_body"
    if target is not None:
        return RedirectResponse(target, status_code=303, headers=page.page_headers(None))
    org = await services.branding.for_page(link.org_id)
    brand = brand_of(link, org)
    cat = i18n.catalog(locale)
    gone = page.status_page(
        cat,
        brand,
        status_code,
        title,
        cat.text(body, brand=brand.name),
        sandbox=services.meta.sandboxed(link.livemode),
    )
    return gone.response(request)


async def _first_view(services: HostedServices, link: OnboardingLink) -> None:
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
    services: HostedServices,
    link: OnboardingLink,
    org: Organization | None,
    locale: str,
    sdk_url: str,
    sdk_origin: str,
) -> page.Rendered:
    settings = services.settings
    meta = services.meta.app(link.livemode)
    sandboxed = services.meta.sandboxed(link.livemode)
    config = {
        "linkId": link.id,
        "callbackUrl": f"/signup/{link.id}/callback",
        "sessionUrl": f"/signup/{link.id}/session",
        "stateUrl": f"/signup/{link.id}/state",
        "verifyCodeUrl": f"/signup/{link.id}/verification/code",
        "verifyUrl": f"/signup/{link.id}/verification/verify",
        # An update link: the steps its number needs (edge_onboard/hosted/updates.py).
        "update": link.type == "update",
        "updateUrl": f"/signup/{link.id}/update",
        "updateFinishUrl": f"/signup/{link.id}/update/finish",
        "locale": locale,
        "businessApp": "business_app" in (link.connection_types or ()),
        "appId": meta.app_id if meta else None,
        "configId": meta.config_id if meta else None,
        "graphVersion": settings.meta_graph_version,
        "sdkOrigin": sdk_origin,
        "prefill": services.links.prefill_of(link),
        "sandbox": sandboxed,
        "metaConfigured": meta is not None,
    }
    return page.signup_page(
        i18n.catalog(locale),
        brand_of(link, org),
        config,
        sdk_url,
        sdk_origin,
        sandbox=sandboxed,
        vary_language=link.locale is None,
    )


async def signup_callback(request: Request) -> Response:
    services = get_services(request)
    if cross_origin(request):
        return page_error(403, "cross_origin", "Cross-origin callbacks are not accepted.")
    try:
        await limit_public(request, services)
        raw = await validation.read_body(request)
        body = validation.json_object(request, raw)
        async with services.signups.turn():
            outcome = await services.completion.handle(request.path_params["link_id"], body)
    except ApiError as exc:
        return page_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    except ClientDisconnect:
        raise  # nobody to answer: the app's handler notes it in one debug line
    except Busy:
        # Refused before any of it was done: the code is unspent, the page posts again.
        log.warning("callback: no turn within %.0f s; answered busy", services.signups.wait)
        return page_error(
            503,
            "service_busy",
            "We are busy right now; please try again in a moment.",
            {"Retry-After": "1"},
        )
    except StorageError as exc:
        log.error("callback: storage unavailable: %s", exc)
        return page_error(
            503,
            "storage_unavailable",
            "We could not save this right now; please try again.",
            {"Retry-After": "1"},
        )
    except Exception:
        # The page always gets its own shape, so it can offer the end-user a retry.
        log.exception("callback failed request_id=%s", _request_id(request))
        return page_error(500, "internal_error", "Something went wrong on our side.")
    return JSONResponse(
        outcome.body, status_code=outcome.status_code, headers={"Cache-Control": "no-store"}
    )


async def signup_session(request: Request) -> Response:
    """The page's early report of Meta's session message (before the code). It never
    completes anything: it records, on a pending link, what Meta said was connected, so
    a signup whose tab closed can be matched to Meta's account_update later."""
    services = get_services(request)
    if cross_origin(request):
        return page_error(403, "cross_origin", "Cross-origin reports are not accepted.")
    try:
        await limit_public(request, services)
        raw = await validation.read_body(request)
        body = validation.json_object(request, raw)
        await services.completion.record_session(request.path_params["link_id"], body)
    except ApiError as exc:
        return page_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    return JSONResponse(
        {"status": "recorded"}, status_code=202, headers={"Cache-Control": "no-store"}
    )


async def signup_state(request: Request) -> Response:
    """Whether the link is still pending, for a page left open while the signup finished
    elsewhere (another tab, or recovery from Meta's own notice): it reloads once the link
    is not. Cheap: the link through the hot layer, no body, the page's rate limit."""
    services = get_services(request)
    try:
        await limit_public(request, services)
    except ApiError as exc:
        return page_error(exc.status_code, exc.code, exc.message, exc.headers)
    link, _ = await services.links.load_cached(None, request.path_params["link_id"])
    if link is None:
        return page_error(404, "link_not_found", "No such link.")
    return JSONResponse({"status": link.status.value}, headers={"Cache-Control": "no-store"})


async def page_call(
    request: Request, work: Callable[[HostedServices], Awaitable[dict[str, Any]]], what: str
) -> Response:
    """One of the page's own steps after the signup (the verification code, an update
    link's steps): same origin only, the public budget per address, then ``work``;
    answered in the callback's shape, errors included."""
    services = get_services(request)
    if cross_origin(request):
        return page_error(403, "cross_origin", "Cross-origin requests are not accepted.")
    try:
        await limit_public(request, services)
        result = await work(services)
    except ApiError as exc:
        return page_error(exc.status_code, exc.code, exc.message, exc.headers, exc.param)
    except ClientDisconnect:
        raise
    except StorageError as exc:
        log.error("%s: storage unavailable: %s", what, exc)
        return page_error(
            503,
            "storage_unavailable",
            "We could not save this right now; please try again.",
            {"Retry-After": "1"},
        )
    except Exception:
        # As the callback: the page always gets its own shape, never the API's.
        log.exception("%s failed request_id=%s", what, _request_id(request))
        return page_error(500, "internal_error", "Something went wrong on our side.")
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


def _request_id(request: Request) -> Any:
    return request.scope.get("state", {}).get("request_id")


def cross_origin(request: Request) -> bool:
    """A browser request from another site's page (the page's own calls are same-origin)."""
    origin = request.headers.get("origin")
    return bool(origin) and urlsplit(origin or "").netloc != request.headers.get("host")


def page_error(
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
    signed = services.meta.signed(raw, request.headers.get("x-hub-signature-256"))
    if signed is None:
        # Logged without the body: it is not ours to keep if it is not Meta's.
        log.warning(
            "meta webhook for %s: bad or missing signature (%d bytes); refused", phone_id, len(raw)
        )
        return Response(b"Invalid signature", status_code=401, media_type="text/plain")
    # Recorded (one write), acknowledged, then processed: Meta is not kept waiting for a
    # big batch, and what a dead process acknowledged is processed by a sweeper.
    item = await services.inbound.accept(raw, livemode=signed.livemode)
    if item is None:  # a retry of a body recorded and not yet processed
        return Response(b"OK", media_type="text/plain")
    after = BackgroundTask(_process, services, item, phone_id)
    return Response(b"OK", media_type="text/plain", background=after)


async def _process(services: HostedServices, item: InboxItem, phone_id: str) -> None:
    result = await services.inbound.process(item)
    if result is not None:
        log.info(
            "meta webhook for %s: %d events, %d duplicates, %d skipped",
            phone_id,
            result.emitted,
            result.duplicates,
            result.skipped,
        )


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
