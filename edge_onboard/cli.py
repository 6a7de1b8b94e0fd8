"""The ``edge-onboard`` command: ``serve``, ``keys create``, ``keys revoke``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

import anyio

from edge_onboard.clock import system_clock
from edge_onboard.config import ConfigError, Settings
from edge_onboard.redis_keys import HOT_TTL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-onboard", description="Hosted WhatsApp onboarding service."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and hosted pages")
    serve.add_argument("--host", help="listen address (EDGE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (EDGE_PORT, default 8080)")
    serve.add_argument(
        "--sandbox", action="store_true", default=None, help="mount the offline Meta fake"
    )

    commands.add_parser("worker", help="deliver webhooks from the Redis queue")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create an API key (and its organisation)")
    create.add_argument("--org", required=True, help="organisation name")
    revoke = key_commands.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key", metavar="KEY_PREFIX_OR_ID", help="key id, prefix or full key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            settings = Settings.from_env(host=args.host, port=args.port, sandbox=args.sandbox)
            return _serve(settings)
        settings = Settings.from_env()
        if args.command == "worker":
            return anyio.run(_worker, settings)
        if args.keys_command == "create":
            return anyio.run(_keys_create, settings, args.org)
        return anyio.run(_keys_revoke, settings, args.key)
    except ConfigError as exc:
        print(f"edge-onboard: configuration error: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings) -> int:
    import asyncio

    from hypercorn.asyncio import serve

    from edge_onboard.app import create_app
    from edge_onboard.config.hypercorn import hypercorn_config

    config = hypercorn_config(settings)
    logging.getLogger("edge_onboard").info(
        "edge-onboard listening on %s (storage %s, %d worker%s)",
        settings.public_url,
        settings.storage_url.split("://", 1)[0],
        settings.workers,
        "s" if settings.workers > 1 else "",
    )
    if settings.workers > 1:
        import os

        from hypercorn.run import run as run_workers

        # Each worker process builds its app from the environment: pass the flags on.
        os.environ.update(EDGE_HOST=settings.host, EDGE_PORT=str(settings.port))
        return run_workers(config)
    app = create_app(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # hypercorn types its ASGI protocol with its own scope TypedDicts; Starlette's app
        # is a plain ASGI 3 callable that mypy cannot match to them.
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())
    return 0


async def _forget_key(settings: Settings, key_hash: str) -> bool:
    """Drop the key from the shared hot layer; servers' own copies lapse within a second.
    False if Redis could not be told (its copy then lapses within a few seconds)."""
    if settings.redis_url is None:
        return True
    from edge_onboard.hot import HotCache
    from edge_onboard.queue.redis import client_from_url

    client = client_from_url(settings.redis_url.reveal(), max_connections=2)
    try:
        return await HotCache(client).forget("apikey", key_hash)
    finally:
        await client.aclose()


async def _worker(settings: Settings) -> int:
    from edge_onboard.app import secret_box_for
    from edge_onboard.delivery import SCHEDULE, DeliveryEngine, Sender
    from edge_onboard.queue.redis import RedisQueue
    from edge_onboard.storage import from_url

    log = logging.getLogger("edge_onboard.worker")
    if settings.redis_url is None:
        print(
            "edge-onboard: configuration error: EDGE_REDIS_URL: the worker delivers from the "
            "Redis queue (without Redis, `serve` delivers webhooks in-process)",
            file=sys.stderr,
        )
        return 2
    storage = from_url(settings.storage_url)
    await storage.open()
    queue = RedisQueue.from_url(settings.redis_url.reveal())
    sender = Sender(allow_private=settings.webhook_allow_private)
    engine = DeliveryEngine(
        storage=storage,
        queue=queue,
        clock=system_clock,
        box=secret_box_for(settings, storage),
        sender=sender,
        schedule=settings.delivery_schedule or SCHEDULE,
        lease=timedelta(seconds=settings.delivery_lease),
    )

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("signal %s: finishing the deliveries in flight", signum)
                engine.stop()
                return

    log.info("worker delivering from Redis (storage %s)", settings.storage_url.split(":", 1)[0])
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal)
            await engine.run()
            tg.cancel_scope.cancel()
    finally:
        await sender.aclose()
        await queue.close()
        await storage.close()
    log.info("worker stopped")
    return 0


async def _keys_create(settings: Settings, org_name: str) -> int:
    from edge_onboard.auth import create_key
    from edge_onboard.storage import from_url

    name = org_name.strip()
    if not 1 <= len(name) <= 200:
        print("edge-onboard: --org must be 1-200 characters", file=sys.stderr)
        return 2
    storage = from_url(settings.storage_url)
    await storage.open()
    try:
        org, key, plaintext = await create_key(storage, name, system_clock())
    finally:
        await storage.close()
    print(f"organization: {org.name} ({org.id})")
    print(f"key id: {key.id} (prefix {key.prefix})")
    print("Store this key now: it is shown only once.")
    print(plaintext)
    return 0


async def _keys_revoke(settings: Settings, ident: str) -> int:
    from edge_onboard.auth import KEY_PREFIX, hash_key
    from edge_onboard.storage import from_url

    storage = from_url(settings.storage_url)
    await storage.open()
    try:
        if ident.startswith(KEY_PREFIX) and len(ident) > 40:
            found = await storage.get_api_key_by_hash(hash_key(ident))
            matches = [found] if found else []
        elif len(ident) < 10:
            print(
                "edge-onboard: give at least 10 characters of the key prefix, or its id",
                file=sys.stderr,
            )
            return 2
        else:
            matches = await storage.find_api_keys(ident)
        if not matches:
            print(f"edge-onboard: no API key matches {ident!r}", file=sys.stderr)
            return 1
        if len(matches) > 1:
            print(
                f"edge-onboard: {len(matches)} keys match {ident!r}; give more characters "
                "or the key id",
                file=sys.stderr,
            )
            return 1
        key = matches[0]
        if not await storage.revoke_api_key(key.id, system_clock()):
            print(f"key {key.id} ({key.prefix}) was already revoked")
            return 0
        if not await _forget_key(settings, key.key_hash):
            print(
                f"warning: Redis did not answer; servers may accept key {key.prefix} for "
                f"up to {HOT_TTL + 1} more seconds",
                file=sys.stderr,
            )
        print(f"revoked key {key.id} ({key.prefix})")
        return 0
    finally:
        await storage.close()
