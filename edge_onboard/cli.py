"""The ``edge-onboard`` command: ``serve``, ``worker``, ``reconcile``, ``meta-webhook``,
``keys create|list|revoke`` (edge_onboard/commands/keys.py), and for local work against
any deployment, ``trigger`` and ``listen`` (edge_onboard/commands/)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from edge_onboard.config import ConfigError, Settings
from edge_onboard.core import logs
from edge_onboard.startup import StartupError, open_redis, open_storage

EPILOG = """\
configuration:
  Read from the environment, EDGE_* variables: EDGE_STORAGE_URL (default
  sqlite:///./edge_onboard.db), EDGE_REDIS_URL, EDGE_SECRET_KEY, EDGE_PUBLIC_URL,
  EDGE_META_APP_ID / EDGE_META_APP_SECRET / EDGE_META_CONFIG_ID and more: the docs'
  configuration reference (docs/reference/configuration.md; the README says where the
  docs are) lists every one with its default.

exit status:
  0 done; 1 could not start (storage or Redis unreachable, port in use);
  2 bad configuration or usage.
"""

KEYS_USAGE = (
    "edge-onboard keys: say what to do with keys:\n"
    "  edge-onboard keys create --org NAME [--test]  create an API key (--test: test mode)\n"
    "  edge-onboard keys list [--all]          list the keys (never the keys themselves)\n"
    "  edge-onboard keys revoke KEY_PREFIX     revoke one (by key id, prefix or full key)\n"
    "  each takes --json: one JSON object on stdout"
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
    listing = key_commands.add_parser(
        "list",
        help="list the API keys",
        description="List the API keys: id, prefix, mode, organisation, when created (and "
        "revoked). Only prefixes are stored, so the keys themselves cannot be shown.",
    )
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    for action in (create, revoke, listing):
        action.add_argument("--json", action="store_true", help="print one JSON object")
    _local_commands(commands)
    return parser


def _remote_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--api-url",
        metavar="URL",
        help="the deployment's base URL (EDGE_API_URL, default http://127.0.0.1:8080)",
    )
    command.add_argument("--key", metavar="KEY", help="an API key for it (EDGE_API_KEY)")


def _local_commands(commands: Any) -> None:
    """``trigger`` and ``listen``: local work against any deployment, through its API."""
    trigger = commands.add_parser(
        "trigger",
        help="cause an event with a test key (creates what it needs)",
        description="Cause one event on a deployment, with a test key: it creates what "
        "the event needs (a test link completed through the built-in fake of Meta, hence "
        "a test phone), causes the event through the test helpers (POST "
        "/v1/test-helpers/...), waits until GET /v1/events shows it and prints its id. "
        "With --field and --value, it sends any Meta webhook change about the test phone "
        "instead.",
        epilog="events: " + ", ".join(_trigger_events()),
    )
    trigger.add_argument("event", nargs="?", metavar="EVENT", help="an event type")
    trigger.add_argument("--field", help="a Meta webhook field, e.g. history (with --value)")
    trigger.add_argument("--value", metavar="JSON", help="Meta's change value, a JSON object")
    _remote_options(trigger)
    listen = commands.add_parser(
        "listen",
        help="forward a deployment's events to a local URL, signed",
        description="Read the events of a deployment through GET /v1/events (no tunnel) "
        "and POST each, signed per Standard Webhooks with a secret printed at start, to "
        "--forward-to. A failed POST is reported and retried until it succeeds; the "
        "cursor is kept in a state file, so a restarted listen resumes without losing one.",
    )
    listen.add_argument("--forward-to", required=True, metavar="URL", help="the local URL")
    listen.add_argument(
        "--events", metavar="TYPES", help="comma-separated event types, * allowed (message.*)"
    )
    listen.add_argument(
        "--state",
        metavar="FILE",
        help="the cursor and secret file (default: one per URL and key in ~/.cache/edge-onboard)",
    )
    listen.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="poll every (default 1)"
    )
    _remote_options(listen)


def _trigger_events() -> list[str]:
    from edge_onboard.commands.trigger import RECIPES

    return list(RECIPES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "keys" and args.keys_command is None:
        print(KEYS_USAGE, file=sys.stderr)
        return 2
    if args.command in ("trigger", "listen"):
        from edge_onboard.commands.run import run_remote

        return run_remote(args)
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
        from edge_onboard.commands import keys

        if args.keys_command == "create":
            return anyio.run(keys.create, settings, args.org, not args.test, args.json)
        if args.keys_command == "list":
            return anyio.run(keys.list_keys, settings, args.all, args.json)
        return anyio.run(keys.revoke, settings, args.key, args.json)
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
