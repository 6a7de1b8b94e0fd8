"""The ASGI application: routes, error handlers, middleware and lifespan."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from edge_onboard.api import events as events_api
from edge_onboard.api import media
from edge_onboard.api import organization as organization_api
from edge_onboard.api import routes as api
from edge_onboard.api.auth import FailedLogins
from edge_onboard.config import Settings
from edge_onboard.core.clock import Clock, system_clock
from edge_onboard.core.crypto import SecretBox, load_or_create_key_file
from edge_onboard.core.errors import ApiError, api_error_handler, http_exception_handler
from edge_onboard.core.hot import HotCache
from edge_onboard.core.middleware import ExceptionHandler, HotRoutes, RequestIdMiddleware
from edge_onboard.core.ratelimit import RateLimiter
from edge_onboard.hosted import assets as pages_assets
from edge_onboard.hosted import meta_webhook
from edge_onboard.hosted import routes as hosted
from edge_onboard.meta.graph import GraphClient
from edge_onboard.meta.inbound import InboundService
from edge_onboard.meta.modes import MetaModes
from edge_onboard.meta.sandbox import APP_ID as SANDBOX_APP_ID
from edge_onboard.meta.sandbox import CONFIG_ID as SANDBOX_CONFIG_ID
from edge_onboard.meta.sandbox import SYSTEM_USER_TOKEN as SANDBOX_SYSTEM_USER_TOKEN
from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.onboarding import branding
from edge_onboard.onboarding.completion import CompletionService
from edge_onboard.onboarding.links import LinkService
from edge_onboard.onboarding.messages import MessageService
from edge_onboard.onboarding.phones import PhoneService
from edge_onboard.onboarding.recovery import Recovery, reconcile_forever
from edge_onboard.onboarding.verification import PhoneVerification
from edge_onboard.onboarding.wabas import WabaService
from edge_onboard.services import MetaApp, Services, get_services, limit_public
from edge_onboard.storage import InvalidRecordError, Storage, StorageError, from_url
from edge_onboard.storage.sqlite import SQLiteStorage
from edge_onboard.webhooks.delivery import SCHEDULE, DeliveryEngine, Sender
from edge_onboard.webhooks.endpoints import WebhookService
from edge_onboard.webhooks.queue import DeliveryQueue
from edge_onboard.webhooks.queue import for_client as queue_for_client

log = logging.getLogger("edge_onboard")


async def _storage_error_handler(request: Request, exc: Exception) -> Response:
    log.error("storage unavailable: %s", exc)
    return ApiError(
        503,
        "storage_unavailable",
        "The service's storage is unavailable; retry shortly.",
        headers={"Retry-After": "1"},
    ).response()


async def _client_gone_handler(request: Request, exc: Exception) -> Response:
    # The client closed the connection mid-body: nobody reads an answer, and a
    # traceback per cut-off request would only flood the logs.
    log.debug("client left mid-request: %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _invalid_record_handler(request: Request, exc: Exception) -> Response:
    return ApiError(400, "parameter_invalid", "A value in the request cannot be stored.").response()


def secret_box_for(settings: Settings, storage: Storage) -> SecretBox:
    """The at-rest key: configured, else kept beside the SQLite file, else per process."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.reveal())
    if isinstance(storage, SQLiteStorage) and storage.path and str(storage.path) != ":memory:":
        return SecretBox(load_or_create_key_file(Path(f"{storage.path}.key")))
    return SecretBox(secrets.token_urlsafe(48))


async def _redis_client(url: str) -> Any:
    """One Redis, or the cluster client when the URL names a Redis Cluster."""
    from edge_onboard.webhooks.queue.redis import open_client

    return await open_client(url, max_connections=64)


def _sandbox_graph(settings: Settings, sandbox: SandboxMeta) -> GraphClient:
    """A Graph client on the built-in fake Meta, in process (no network)."""
    return GraphClient(
        base_url="http://sandbox.invalid/_sandbox/graph",
        version=settings.meta_graph_version,
        app_id=SANDBOX_APP_ID,
        app_secret=sandbox.app_secret,
        transport=httpx.ASGITransport(app=Starlette(routes=sandbox.routes())),
    )


def _meta(settings: Settings, sandbox: SandboxMeta) -> MetaModes:
    """Each mode's Meta app and Graph client: test mode always the fake; live mode the
    configured app, or none, or (EDGE_SANDBOX) the fake too."""
    fake_app = MetaApp(SANDBOX_APP_ID, SANDBOX_CONFIG_ID, sandbox.app_secret)
    fake_graph = _sandbox_graph(settings, sandbox)
    if settings.sandbox:
        return MetaModes(fake_app, fake_graph, fake_app, fake_graph, everything_sandboxed=True)
    if not settings.meta_configured:
        return MetaModes(None, None, fake_app, fake_graph)
    assert settings.meta_app_id and settings.meta_app_secret and settings.meta_config_id
    graph = GraphClient(
        base_url=settings.meta_graph_url,
        version=settings.meta_graph_version,
        app_id=settings.meta_app_id,
        app_secret=settings.meta_app_secret.reveal(),
    )
    app = MetaApp(settings.meta_app_id, settings.meta_config_id, settings.meta_app_secret.reveal())
    return MetaModes(app, graph, fake_app, fake_graph)


def _public_sandbox_routes(sandbox: SandboxMeta) -> list[Route]:
    """The fake's routes as the public reaches them. It runs on live deployments too (for
    test links), so each request that adds to its in-memory state (every one but a read)
    counts against the client address's budget of public requests (EDGE_RATE_LIMIT_PUBLIC),
    as the hosted pages do."""
    routes: list[Route] = []
    for route in sandbox.routes():

        async def limited(request: Request, endpoint: Endpoint = route.endpoint) -> Response:
            if request.method not in ("GET", "HEAD"):
                try:
                    await limit_public(request, get_services(request))
                except ApiError as exc:
                    return exc.response()
            return await endpoint(request)

        routes.append(Route(route.path, limited, methods=sorted(route.methods or ())))
    return routes


async def _pump_sandbox(sandbox: SandboxMeta, app: Starlette) -> None:
    """The fake Meta's webhooks (message statuses, inbound messages) reach the service
    through an in-process transport: the sandbox needs no network, even to itself."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.invalid") as client:
        while True:
            await sandbox.flush(client)
            await anyio.sleep(0.2)


async def run_in_scope(
    scope: anyio.CancelScope, func: Callable[..., Awaitable[None]], *args: Any
) -> None:
    """``func(*args)`` in ``scope``: a background loop stopped by cancelling its scope."""
    with scope:
        await func(*args)


Endpoint = Callable[[Request], Awaitable[Response]]


def _resource(path: str, **handlers: Endpoint) -> Route:
    """One route per path, so a 405's ``Allow`` header lists every method it has."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))


def create_app(
    settings: Settings | None = None,
    *,
    storage: Storage | None = None,
    clock: Clock | None = None,
    redis: Any = None,
    delivery_queue: DeliveryQueue | None = None,
    deliver: bool | None = None,
) -> Starlette:
    """Build the app. Anything not injected is made from ``settings`` at start-up.

    ``deliver`` runs webhook delivery inside the app (default: ``inprocess_delivery``);
    tests turn it off and drive the engine themselves.
    """
    settings = settings or Settings.from_env()
    # The built-in fake Meta runs on every deployment: test-mode links use it.
    sandbox = SandboxMeta()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = storage or from_url(settings.storage_url)
        await store.open()
        redis_client = redis
        if redis_client is None and settings.redis_url is not None:
            redis_client = await _redis_client(settings.redis_url.reveal())
        if redis_client is not None:
            sandbox.share(redis_client)  # every process of the deployment sees one fake Meta
        box = secret_box_for(settings, store)
        if not settings.sandbox:
            # Test objects are a customer's too: only this deployment may sign a Meta
            # webhook as its fake Meta. EDGE_SANDBOX (local use) keeps the fixed secret.
            sandbox.app_secret = box.token("sandbox:app-secret")
        now = clock or system_clock
        meta = _meta(settings, sandbox)
        links = LinkService(store, now, box, settings.public_url, HotCache(redis_client))
        # One Redis client (and pool) for the hot layer, rate limits and the queue.
        queue = delivery_queue if delivery_queue is not None else queue_for_client(redis_client)
        sender = Sender(allow_private=settings.webhook_allow_private)
        engine = DeliveryEngine(
            storage=store,
            queue=queue,
            clock=now,
            box=box,
            sender=sender,
            schedule=settings.delivery_schedule or SCHEDULE,
            lease=timedelta(seconds=settings.delivery_lease),
        )
        webhooks = WebhookService(
            store, now, box, engine, allow_private=settings.webhook_allow_private
        )
        phones = PhoneService(store, now, box, meta)
        completion = CompletionService(
            storage=store,
            clock=now,
            box=box,
            links=links,
            settings=settings,
            meta=meta,
            webhooks=webhooks,
        )
        limiter = RateLimiter(redis_client)
        system_token = settings.meta_system_user_token
        recovery = Recovery(
            storage=store,
            clock=now,
            settings=settings,
            completion=completion,
            links=links,
            webhooks=webhooks,
            meta=meta,
            system_user_token=(
                system_token.reveal()
                if system_token
                else SANDBOX_SYSTEM_USER_TOKEN
                if settings.sandbox
                else None
            ),
            test_system_user_token=SANDBOX_SYSTEM_USER_TOKEN,
        )
        app.state.services = Services(
            settings=settings,
            storage=store,
            clock=now,
            box=box,
            links=links,
            phones=phones,
            completion=completion,
            webhooks=webhooks,
            engine=engine,
            inbound=InboundService(store, webhooks),
            messages=MessageService(store, box, phones, meta),
            verification=PhoneVerification(store, now, box, phones, links, webhooks, meta),
            wabas=WabaService(store, now, box, settings, webhooks, meta, completion.verify_token),
            limiter=limiter,
            logins=FailedLogins(limiter),
            meta=meta,
            sandbox=sandbox,
            redis=redis_client,
            recovery=recovery,
        )
        try:
            async with anyio.create_task_group() as tg:
                loops: list[anyio.CancelScope] = []

                def loop(func: Callable[..., Awaitable[None]], *args: Any) -> None:
                    loops.append(anyio.CancelScope())
                    tg.start_soon(run_in_scope, loops[-1], func, *args)

                if deliver if deliver is not None else settings.inprocess_delivery:
                    tg.start_soon(engine.run)
                    loop(reconcile_forever, recovery, settings, redis_client)
                    loop(_pump_sandbox, sandbox, app)
                yield
                # Graceful: the fake Meta's loop and reconciliation have nothing to
                # finish; the deliveries in flight get up to 15 s, then stop.
                for scope in loops:
                    scope.cancel()
                engine.stop()
                tg.cancel_scope.deadline = anyio.current_time() + 15
        finally:
            await sender.aclose()
            await meta.test_graph.aclose()
            if meta.live_graph is not None and meta.live_graph is not meta.test_graph:
                await meta.live_graph.aclose()
            if redis_client is not None and redis is None:
                await redis_client.aclose()
            if storage is None:
                await store.close()

    # The router tries routes in order: the hot ones first (the hosted page, a link).
    routes = [
        Route("/signup/{link_id}", hosted.signup_page, methods=["GET"]),
        _resource("/v1/onboarding-links/{link_id}", GET=api.get_link, DELETE=api.delete_link),
        _resource("/v1/onboarding-links", GET=api.list_links, POST=api.create_link),
        Route("/signup/{link_id}/callback", hosted.signup_callback, methods=["POST"]),
        Route("/signup/{link_id}/session", hosted.signup_session, methods=["POST"]),
        Route("/", api.root, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/v1/event-types", api.list_event_types, methods=["GET"]),
        Route("/v1/phones", api.list_phones, methods=["GET"]),
        Route("/v1/phones/{phone_id}", api.get_phone, methods=["GET"]),
        Route("/v1/phones/{phone_id}/health", api.phone_health, methods=["GET"]),
        Route("/v1/phones/{phone_id}/media/{mediaId}", media.media_file, methods=["GET"]),
        Route(
            "/v1/phones/{phone_id}/verification-code",
            api.request_verification_code,
            methods=["POST"],
        ),
        Route("/v1/phones/{phone_id}/verify", api.verify_phone, methods=["POST"]),
        Route("/v1/wabas", api.list_wabas, methods=["GET"]),
        Route("/v1/wabas/{waba_id}", api.get_waba, methods=["GET"]),
        Route("/v1/wabas/{waba_id}/phones/sync", api.sync_waba_phones, methods=["POST"]),
        Route("/static/{name}", pages_assets.static_asset, methods=["GET"]),
        _resource("/webhook/meta", GET=meta_webhook.handshake, POST=meta_webhook.receive),
        Route("/v1/onboarding-links/{link_id}/recover", api.recover_link, methods=["POST"]),
        _resource(
            "/webhook/phone/{phone_id}",
            GET=hosted.phone_webhook_handshake,
            POST=hosted.phone_webhook,
        ),
        Route("/v1/phones/{phone_id}/messages", api.send_message, methods=["POST"]),
        _resource("/v1/outgoing-webhooks", GET=api.list_webhooks, POST=api.create_webhook),
        _resource(
            "/v1/outgoing-webhooks/{webhook_id}",
            GET=api.get_webhook,
            PATCH=api.update_webhook,
            DELETE=api.delete_webhook,
        ),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/deliveries", api.list_deliveries, methods=["GET"]
        ),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/rotate-secret",
            api.rotate_webhook_secret,
            methods=["POST"],
        ),
        Route("/v1/webhook-deliveries/{delivery_id}/retry", api.retry_delivery, methods=["POST"]),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/recover",
            events_api.recover_webhook,
            methods=["POST"],
        ),
        Route("/v1/events", events_api.list_events, methods=["GET"]),
        Route("/v1/events/{event_id}", events_api.get_event, methods=["GET"]),
        # The organisation's branding for the hosted page, and what the page links to.
        _resource(
            "/v1/organization",
            GET=organization_api.get_organization,
            PATCH=organization_api.update_organization,
        ),
        _resource(
            "/v1/organization/logo",
            PUT=organization_api.put_logo,
            DELETE=organization_api.delete_logo,
        ),
        Route("/brand/{org_id}/{digest}", branding.logo_file, methods=["GET"]),
        Route("/favicon.ico", pages_assets.favicon, methods=["GET"]),
    ]
    # Mounted on every deployment: a test link's popup is the fake's dialog.
    routes.extend(_public_sandbox_routes(sandbox))
    handlers: dict[type[Exception], ExceptionHandler] = {
        ApiError: api_error_handler,
        HTTPException: http_exception_handler,
        StorageError: _storage_error_handler,
        InvalidRecordError: _invalid_record_handler,
        ClientDisconnect: _client_gone_handler,
    }
    hot = {
        "/signup/": (hosted.signup_page, "link_id"),
        "/v1/onboarding-links/": (api.get_link, "link_id"),
    }
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(HotRoutes, routes=hot, handlers=handlers),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
