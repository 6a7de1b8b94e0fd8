"""The ``edge-onboard`` command: ``serve``, ``worker``, ``keys create``, ``keys revoke``."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

import anyio

from edge_onboard.config import ConfigError, Settings
from edge_onboard.core import logs
from edge_onboard.core.clock import system_clock
from edge_onboard.core.redis_keys import HOT_TTL
from edge_onboard.startup import StartupError, open_redis, open_storage

EPILOG = """\
configuration:
  Read from the environment, EDGE_* variables: EDGE_STORAGE_URL (default
  sqlite:///./edge_onboard.db), EDGE_REDIS_URL, EDGE_SECRET_KEY, EDGE_PUBLIC_URL,
  EDGE_META_APP_ID / EDGE_META_APP_SECRET / EDGE_META_CONFIG_ID and more: the README's
  "Configuration" table lists every one with its default.

exit status:
  0 done; 1 could not start (storage or Redis unreachable, port in use);
  2 bad configuration or usage.
"""

KEYS_USAGE = (
    "edge-onboard keys: say what to do with keys:\n"
    "  edge-onboard keys create --org NAME [--test]  create an API key (--test: test mode)\n"
    "  edge-onboard keys revoke KEY_PREFIX     revoke one (by key id, prefix or full key)"
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edge-onboard")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-onboard",
        description="Hosted onboarding for the WhatsApp Business Platform: the API, the "
        "hosted signup page and webhook delivery.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-onboard {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the API and hosted pages",
        description="Run the API, the hosted signup pages and (unless "
        "EDGE_INPROCESS_DELIVERY=0) webhook delivery. Stops on Ctrl+C or SIGTERM after "
        "finishing the requests in flight.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="listen address (EDGE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (EDGE_PORT, default 8080)")
    serve.add_argument(
        "--sandbox",
        action="store_true",
        default=None,
        help="mount the offline Meta fake (EDGE_SANDBOX=1)",
    )
    serve.add_argument(
        "--server",
        choices=("hypercorn", "granian"),
        help="the HTTP server (EDGE_SERVER, default hypercorn)",
    )

    worker = commands.add_parser(
        "worker",
        help="deliver webhooks from the Redis queue",
        description="Deliver webhooks from the Redis queue (needs EDGE_REDIS_URL), for "
        "deployments that run delivery apart from `serve` (EDGE_INPROCESS_DELIVERY=0). "
        "On SIGTERM it finishes the deliveries in flight, then exits.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="also answer GET /healthz and /readyz on this port (on EDGE_HOST)",
    )

    commands.add_parser(
        "reconcile",
        help="run one reconciliation pass (recoveries, expiry events)",
        description="One pass of what serve and worker run every EDGE_RECONCILE_INTERVAL "
        "seconds: links past their expiry are expired (onboarding_link.expired), and signups "
        "Meta reported finished are recovered once their grace period is over. Prints what "
        "it did as JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser(
        "meta-webhook",
        help="print the app webhook's callback URL and verify token for Meta's dashboard",
        description="Print the callback URL and verify token to enter in the Meta app's "
        "WhatsApp webhook settings (the app-level webhook: account updates, recovery). "
        "The token is EDGE_META_VERIFY_TOKEN, or one derived from EDGE_SECRET_KEY.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    keys = commands.add_parser(
        "keys",
        help="create or revoke API keys",
        description="Create or revoke API keys, in the storage EDGE_STORAGE_URL names "
        "(default: ./edge_onboard.db in the current folder).",
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = key_commands.add_parser(
        "create",
        help="create an API key (and its organisation)",
        description="Create an API key for an organisation, creating the organisation if "
        "needed. The key is printed once, as the last line; only its SHA-256 is stored.",
    )
    create.add_argument("--org", required=True, help="organisation name")
    create.add_argument(
        "--test",
        action="store_true",
        help="a test-mode key (sk_test_...): it sees only test objects, and its links run "
        "against the built-in fake Meta",
    )
    revoke = key_commands.add_parser(
        "revoke",
        help="revoke an API key",
        description="Revoke an API key by its id, by at least 10 characters of its prefix "
        "(as `keys create` printed it), or by the full key. Servers stop accepting it "
        "within a second.",
    )
    revoke.add_argument("key", metavar="KEY_PREFIX_OR_ID", help="key id, prefix or full key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "keys" and args.keys_command is None:
        print(KEYS_USAGE, file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            settings = Settings.from_env(
                host=args.host, port=args.port, sandbox=args.sandbox, server=args.server
            )
        elif args.command in ("worker", "reconcile", "meta-webhook"):
            settings = Settings.from_env()
        else:
            settings = Settings.for_keys()
        logs.configure(settings.log_level, settings.log_format)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "worker":
            from edge_onboard.worker import run_worker

            return anyio.run(functools.partial(run_worker, settings, health_port=args.health_port))
        if args.command == "reconcile" and not settings.in_primary_region:
            print(
                f"edge-onboard: reconcile writes, so it runs in the primary region "
                f"({settings.primary_region}), not in {settings.region}",
                file=sys.stderr,
            )
            return 2
        if args.command in ("reconcile", "meta-webhook"):
            return anyio.run(_with_services, settings, args.command)
        if args.keys_command == "create":
            return anyio.run(_keys_create, settings, args.org, not args.test)
        return anyio.run(_keys_revoke, settings, args.key)
    except ConfigError as exc:
        print(f"edge-onboard: configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        return _cannot_start(exc)


def _serve(settings: Settings) -> int:
    from edge_onboard import serving

    if settings.server != "granian":
        return serving.serve(settings)
    try:
        code = serving.serve(settings)
    except StartupError as exc:
        code = _cannot_start(exc)
    serving.exit_after_granian(code)
    return code  # not reached


def _cannot_start(exc: StartupError) -> int:
    print(f"edge-onboard: cannot start: {exc}", file=sys.stderr)
    return 1


async def _forget_key(settings: Settings, key_hash: str) -> bool:
    """Drop the key from the shared hot layer; servers' own copies lapse within a second.
    False if Redis could not be told (its copy then lapses within a few seconds)."""
    if settings.redis_url is None:
        return True
    from edge_onboard.core.hot import HotCache
    from edge_onboard.webhooks.queue.redis import open_client

    client = await open_client(settings.redis_url.reveal(), max_connections=2)
    try:
        return await HotCache(client).forget("apikey", key_hash)
    finally:
        await client.aclose()


async def _with_services(settings: Settings, command: str) -> int:
    """``reconcile`` and ``meta-webhook``: the app's services, without serving."""
    import orjson

    from edge_onboard.app import create_app
    from edge_onboard.hosted.meta_webhook import verify_token
    from edge_onboard.onboarding.recovery import reconcile_once

    store = await open_storage(settings)
    try:
        redis = await open_redis(settings, max_connections=2)
        try:
            app = create_app(settings, storage=store, redis=redis, deliver=False)
            async with app.router.lifespan_context(app):
                services = app.state.services
                if command == "meta-webhook":
                    print(f"callback URL: {settings.public_url}/webhook/meta")
                    print(f"verify token: {verify_token(services)}")
                    return 0
                done = await reconcile_once(services.recovery, redis)
                print(orjson.dumps(done or {"skipped": "another process holds the lock"}).decode())
        finally:
            if redis is not None:
                await redis.aclose()
    finally:
        await store.close()
    return 0


async def _keys_create(settings: Settings, org_name: str, livemode: bool) -> int:
    from edge_onboard.api.auth import create_key

    name = org_name.strip()
    if not 1 <= len(name) <= 200:
        print("edge-onboard: --org must be 1-200 characters", file=sys.stderr)
        return 2
    storage = await open_storage(settings)
    try:
        org, key, plaintext = await create_key(storage, name, system_clock(), livemode=livemode)
    finally:
        await storage.close()
    print(f"organization: {org.name} ({org.id})")
    print(f"key id: {key.id} (prefix {key.prefix}, {'live' if livemode else 'test'} mode)")
    print("Store this key now: it is shown only once.")
    print(plaintext)
    return 0


async def _keys_revoke(settings: Settings, ident: str) -> int:
    from edge_onboard.api.auth import KEY_PREFIXES, hash_key

    storage = await open_storage(settings)
    try:
        if ident.startswith(KEY_PREFIXES) and len(ident) > 40:
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
