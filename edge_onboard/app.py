"""The ASGI application: routes, error handlers, middleware and lifespan."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from edge_onboard.api import router as api_router
from edge_onboard.api.auth import FailedLogins
from edge_onboard.config import Settings
from edge_onboard.core.breaker import Breaker
from edge_onboard.core.clock import Clock, system_clock
from edge_onboard.core.crypto import SecretBox, load_or_create_key_file
from edge_onboard.core.errors import ApiError, api_error_handler, http_exception_handler
from edge_onboard.core.hot import HotCache
from edge_onboard.core.middleware import ExceptionHandler, HotStarlette, RequestIdMiddleware
from edge_onboard.core.ratelimit import RateLimiter
from edge_onboard.core.region_status import RegionStatus, beat_forever
from edge_onboard.core.regions import (
    REPLAY_SRC,
    RecentWriters,
    Region,
    RegionRouting,
    ReplicaStorage,
)
from edge_onboard.hosted import router as hosted_router
from edge_onboard.meta.assembly import close_modes, meta_modes, pump_sandbox
from edge_onboard.meta.inbound import InboundService
from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.onboarding import assembly as onboarding_assembly
from edge_onboard.onboarding.phones import phone_view
from edge_onboard.onboarding.recovery import reconcile_forever
from edge_onboard.services import Services
from edge_onboard.storage import InvalidRecordError, Storage, StorageError, from_url
from edge_onboard.storage.sqlite import SQLiteStorage
from edge_onboard.webhooks import assembly as webhooks_assembly
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


HANDLERS: dict[type[Exception], ExceptionHandler] = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    StorageError: _storage_error_handler,
    InvalidRecordError: _invalid_record_handler,
    ClientDisconnect: _client_gone_handler,
}


def _staleness(settings: Settings) -> int | None:
    """MongoDB's maxStalenessSeconds outside the primary region; None in it."""
    return None if settings.in_primary_region else settings.replica_max_staleness


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


async def run_in_scope(
    scope: anyio.CancelScope, func: Callable[..., Awaitable[None]], *args: Any
) -> None:
    """``func(*args)`` in ``scope``: a background loop stopped by cancelling its scope."""
    with scope:
        await func(*args)


def _assemble(
    settings: Settings,
    store: Storage,
    redis_client: Any,
    clock: Clock,
    queue: DeliveryQueue,
    sandbox: SandboxMeta,
    region: Region,
    replica: Any = None,
) -> Services:
    """Every area's services over the opened stores: the one place that knows them all.

    Outside the primary region (``core/regions.py``) a write to the store raises
    ReplayRequired before it runs, the hot layer reads the region's Redis replica (never
    writing it), and rate limits are kept in-process: a replica takes no writes."""
    if redis_client is not None:
        sandbox.share(redis_client)  # every process of the deployment sees one fake Meta
    box = secret_box_for(settings, store)
    opened = store
    if not region.is_primary:
        store = cast(Storage, ReplicaStorage(store))
    if not settings.sandbox:
        # Test objects are a customer's too: only this deployment may sign a Meta
        # webhook as its fake Meta. EDGE_SANDBOX (local use) keeps the fixed secret.
        sandbox.app_secret = box.token("sandbox:app-secret")
    meta = meta_modes(settings, sandbox)
    out = webhooks_assembly.assemble(settings, store, clock, box, queue)
    # One deadline and circuit breaker for every Redis call on the request path (a
    # replica region's Redis, read only by its hot layer, has a breaker of its own).
    breaker = out.engine.breaker = Breaker()
    if region.is_primary:
        hot = HotCache(redis_client, breaker=breaker)
    else:
        hot = HotCache(replica, writable=False)
    onboarding = onboarding_assembly.assemble(settings, store, clock, box, hot, meta, out.webhooks)
    limiter = RateLimiter(redis_client if region.is_primary else None, breaker=breaker)
    return Services(
        settings=settings,
        storage=store,
        clock=clock,
        box=box,
        links=onboarding.links,
        phones=onboarding.phones,
        completion=onboarding.completion,
        webhooks=out.webhooks,
        engine=out.engine,
        inbound=InboundService(store, out.webhooks, phone_view=phone_view),
        messages=onboarding.messages,
        verification=onboarding.verification,
        page_verification=onboarding.page_verification,
        profiles=onboarding.profiles,
        wabas=onboarding.wabas,
        branding=onboarding.branding,
        limiter=limiter,
        logins=FailedLogins(limiter),
        meta=meta,
        sandbox=sandbox,
        redis=redis_client,
        recovery=onboarding.recovery,
        updates=onboarding.updates,
        region=RegionStatus(
            region,
            replica=replica,
            store=opened,
            shared_limits=region.is_primary and redis_client is not None,
        ),
    )


@contextlib.asynccontextmanager
async def _background(
    app: Starlette, services: Services, deliver: bool, pump: bool
) -> AsyncIterator[None]:
    """This process's loops (delivery, reconciliation, the fake Meta's webhooks) while the
    app serves; on the way out the deliveries in flight get up to 15 s, then stop.

    The fake Meta's webhooks are queued in this process's memory by the requests it
    serves, so it posts them to itself (``pump``) whether or not it delivers: with
    EDGE_INPROCESS_DELIVERY=0 the events they make go to the worker's queue."""
    engine = services.engine
    async with anyio.create_task_group() as tg:
        loops: list[anyio.CancelScope] = []

        def loop(func: Callable[..., Awaitable[None]], *args: Any) -> None:
            loops.append(anyio.CancelScope())
            tg.start_soon(run_in_scope, loops[-1], func, *args)

        # Background work runs in the primary region only.
        primary = services.region is None or services.region.region.is_primary
        if primary:  # Meta's inbound bodies a process that died did not get to process
            loop(services.inbound.sweep_forever)
        if deliver and primary:
            tg.start_soon(engine.run)
            loop(reconcile_forever, services.recovery, services.settings, services.redis)
        if pump and primary:
            loop(pump_sandbox, services.sandbox, app)
        if primary and services.redis is not None and services.settings.region is not None:
            loop(beat_forever, services.redis)  # replicas measure their lag by it
        yield
        # The inbox sweeper, the fake Meta's loop and reconciliation have nothing to finish.
        for scope in loops:
            scope.cancel()
        engine.stop()
        tg.cancel_scope.deadline = anyio.current_time() + 15


def create_app(
    settings: Settings | None = None,
    *,
    storage: Storage | None = None,
    clock: Clock | None = None,
    redis: Any = None,
    delivery_queue: DeliveryQueue | None = None,
    deliver: bool | None = None,
    redis_replica: Any = None,
) -> Starlette:
    """Build the app. Anything not injected is made from ``settings`` at start-up.

    ``deliver`` runs webhook delivery inside the app (default: ``inprocess_delivery``);
    tests turn it off (False) and drive the engine and the fake Meta's outbox themselves.
    Outside the primary region reads come from replicas (``redis_replica``, else
    EDGE_REDIS_REPLICA_URL) and no background work runs.
    """
    settings = settings or Settings.from_env()
    region = Region(settings.region, settings.primary_region)
    # The built-in fake Meta runs on every deployment: test-mode links use it.
    sandbox = SandboxMeta()
    delivering = deliver if deliver is not None else settings.inprocess_delivery

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = storage or from_url(settings.storage_url, max_staleness=_staleness(settings))
        await store.open()
        redis_client = redis
        if redis_client is None and settings.redis_url is not None:
            redis_client = await _redis_client(settings.redis_url.reveal())
        replica = redis_replica
        if replica is None and settings.redis_replica_url is not None and not region.is_primary:
            replica = await _redis_client(settings.redis_replica_url.reveal())
        # One Redis client (and pool) for the hot layer, rate limits and the queue.
        queue = delivery_queue if delivery_queue is not None else queue_for_client(redis_client)
        services = _assemble(
            settings, store, redis_client, clock or system_clock, queue, sandbox, region, replica
        )
        app.state.services = services
        try:
            async with _background(app, services, delivering, pump=deliver is not False):
                yield
        finally:
            await services.engine.sender.aclose()
            await close_modes(services.meta)
            if redis_client is not None and redis is None:
                await redis_client.aclose()
            if replica is not None and redis_replica is None:
                await replica.aclose()
            if storage is None:
                await store.close()

    # The hottest reads are answered ahead of the middleware where region routing would
    # let them through untouched: in the primary region, unless Fly's proxy replayed
    # them here (a replica's reads go through RegionRouting and the router).
    hot = hosted_router.HOT | api_router.HOT if region.is_primary else {}
    return HotStarlette(
        hot=hot,
        not_hot=lambda scope: any(name == REPLAY_SRC for name, _ in scope["headers"]),
        routes=[*hosted_router.routes(sandbox), *api_router.routes()],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                RegionRouting,
                region=region,
                writers=RecentWriters(settings.replay_window),
                secure_cookie=settings.public_url.startswith("https:"),
            ),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
