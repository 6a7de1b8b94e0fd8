"""``edge-onboard worker``: webhook delivery from the Redis queue, apart from ``serve``.

With ``--health-port`` it also answers ``GET /healthz`` (the delivery loop is running)
and ``GET /readyz`` (storage and Redis answer) on that port, for a platform's checks
(fly.toml's worker check uses it). It stops on SIGINT/SIGTERM after the deliveries in
flight.
"""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_onboard.app import create_app, run_in_scope, secret_box_for
from edge_onboard.config import ConfigError, Settings
from edge_onboard.core.clock import system_clock
from edge_onboard.onboarding.recovery import reconcile_forever
from edge_onboard.startup import describe_url, open_redis, open_storage
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import SCHEDULE, DeliveryEngine, Sender
from edge_onboard.webhooks.queue.redis import RedisQueue

log = logging.getLogger("edge_onboard.worker")
# Seconds a readiness probe waits for storage and Redis.
READY_TIMEOUT = 2.0


def _health_app(
    engine_running: anyio.Event, storage: Storage, redis: Any, engine: DeliveryEngine
) -> Starlette:
    async def healthz(request: Request) -> Response:
        alive = engine_running.is_set()
        return JSONResponse({"status": "ok" if alive else "starting"}, 200 if alive else 503)

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, probe in (("storage", storage.ping), ("redis", redis.ping)):
            try:
                with anyio.fail_after(READY_TIMEOUT):
                    await probe()
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready; the name says which
                checks[name] = f"error: {type(exc).__name__}"
        if engine.loop_error is not None:  # the delivery loop itself cannot use Redis
            checks["delivery"] = f"error: {type(engine.loop_error).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
    )


async def _idle(settings: Settings, health_port: int | None) -> int:
    """A worker outside the primary region: deliveries and reconciliation leave from the
    primary region only, so it waits for its stop (answering its health checks)."""
    log.info(
        "worker in region %s: background work runs in the primary region (%s) only; idle",
        settings.region,
        settings.primary_region,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "idle", "region": settings.region})

    stopped = anyio.Event()
    async with anyio.create_task_group() as tg:
        if health_port:
            app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", healthz)])
            tg.start_soon(_serve_health, app, settings, health_port, stopped)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        stopped.set()
    log.info("worker stopped")
    return 0


async def _serve_health(app: Starlette, settings: Settings, port: int, stop: anyio.Event) -> None:
    from hypercorn.config import Config

    from edge_onboard.config.hypercorn import serve_asgi

    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1
    await serve_asgi(app, config, stop.wait)


async def run_worker(settings: Settings, *, health_port: int | None = None) -> int:
    if settings.redis_url is None:
        raise ConfigError(
            "EDGE_REDIS_URL: the worker delivers from the Redis queue "
            "(without Redis, `serve` delivers webhooks in-process)"
        )
    if not settings.in_primary_region:
        return await _idle(settings, health_port)
    storage = await open_storage(settings)
    try:
        redis = await open_redis(settings, max_connections=32)
    except BaseException:
        await storage.close()
        raise
    sender = Sender(allow_private=settings.webhook_allow_private)
    engine = DeliveryEngine(
        storage=storage,
        queue=RedisQueue(redis),
        clock=system_clock,
        box=secret_box_for(settings, storage),
        sender=sender,
        schedule=settings.delivery_schedule or SCHEDULE,
        lease=timedelta(seconds=settings.delivery_lease),
    )
    running, stopped = anyio.Event(), anyio.Event()

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("signal %s: finishing the deliveries in flight", signum)
                engine.stop()
                return

    health = f"; health checks on port {health_port}" if health_port else ""
    log.info(
        "worker delivering from Redis at %s (storage %s%s)",
        describe_url(settings.redis_url.reveal()),
        describe_url(settings.storage_url),
        health,
    )
    # The app's services (not its server) for the reconciliation pass it runs too.
    app = create_app(settings, storage=storage, redis=redis, deliver=False)
    try:
        async with app.router.lifespan_context(app), anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal)
            reconciling = anyio.CancelScope()
            tg.start_soon(
                run_in_scope,
                reconciling,
                reconcile_forever,
                app.state.services.recovery,
                settings,
                redis,
            )
            if health_port:
                app = _health_app(running, storage, redis, engine)
                tg.start_soon(_serve_health, app, settings, health_port, stopped)
            running.set()
            await engine.run()
            reconciling.cancel()
            stopped.set()
            tg.cancel_scope.deadline = anyio.current_time() + 2  # the health server's close
    finally:
        await sender.aclose()
        await redis.aclose()
        await storage.close()
    log.info("worker stopped")
    return 0
