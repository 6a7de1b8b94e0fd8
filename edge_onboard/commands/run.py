"""``trigger`` and ``listen`` from their parsed arguments: exit 0 done, 1 the deployment
refused or could not be reached, 2 bad usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from edge_onboard.commands.remote import Remote, RemoteError


def _say(line: str) -> None:
    print(line, flush=True)


def _value(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--value is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--value must be a JSON object (Meta's change value)")
    return value


def run_remote(args: argparse.Namespace) -> int:
    try:
        if args.command == "trigger":
            value = _value(args.value)
            if (args.event is None) == (args.field is None) or (args.field is None) != (
                value is None
            ):
                raise ValueError("give an EVENT, or --field with --value")
    except ValueError as exc:
        print(f"edge-onboard: {exc}", file=sys.stderr)
        return 2
    try:
        remote = Remote(args.api_url, args.key)
    except RemoteError as exc:
        print(f"edge-onboard: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "trigger":
            return _trigger(remote, args.event, args.field, value)
        return _listen(remote, args)
    except RemoteError as exc:
        print(f"edge-onboard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        remote.close()


def _trigger(remote: Remote, event: str | None, field: str | None, value: Any) -> int:
    from edge_onboard.commands.trigger import trigger

    made = trigger(remote, event, _say, field_name=field, value=value)
    if made is not None:
        _say(f"Triggered {event}: {made}")
    return 0


def _listen(remote: Remote, args: argparse.Namespace) -> int:
    from edge_onboard.commands.listen import Listener, default_state_path

    key = str(remote.client.headers["authorization"]).removeprefix("Bearer ")
    state = Path(args.state) if args.state else default_state_path(remote.api_url, key)
    listener = Listener(
        remote, args.forward_to, state, types=args.events, interval=args.interval, say=_say
    )
    try:
        listener.run()
    finally:
        listener.close()
    return 0
