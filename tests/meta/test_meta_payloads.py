"""Real Meta webhook bodies (../shared/meta-payloads/) become the right events, with every
content field of Meta's object in the event's typed fields.

Each file is posted for a connected number (``metadata.phone_number_id`` rewritten, ids
made unique, signed), then each Meta object (message, echo, status, error) is matched to
its event: the event type is the table's, the event matches its published schema, ``raw``
is Meta's object, and every leaf of Meta's object is found, equal, at its camelCase path in
the typed fields. The path rules below are this test's own, written from Meta's reference,
not taken from the code under test: where they disagree, one of them is wrong.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs  # schemathesis's validator
import orjson
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.api.openapi.event_schemas import event_schema
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.delivery import Sender
from tests.conftest import FakeClock, make_settings, running_app
from tests.meta.test_inbound import World
from tests.webhooks.test_delivery import Receiver

pytestmark = pytest.mark.anyio

# CI checks the repo out with shared/ beside it.
PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "meta-payloads"
# A missing folder must fail, not leave an empty (skipped) parametrisation.
FILES = sorted(PAYLOADS.glob("*.json")) or [PAYLOADS / "(no payload files)"]

# The events each known file must give, in order. A file not listed here is held to the
# rules of ``expected_events``, which must agree with this table for every listed file.
EXPECTED = {
    "01-text.json": ["message.received"],
    "02-image.json": ["message.received"],
    "03-video.json": ["message.received"],
    "04-audio.json": ["message.received"],
    "05-voice.json": ["message.received"],
    "06-document.json": ["message.received"],
    "07-sticker.json": ["message.received"],
    "08-location-pin.json": ["message.received"],
    "10-contacts.json": ["message.received"],
    "11-interactive-button_reply.json": ["message.received"],
    "12-button-quick_reply.json": ["message.received"],
    "14-reaction.json": ["message.reaction"],
    "16-order.json": ["message.received"],
    "17-system-user_changed_number.json": ["contact.changed"],
    "19-unsupported.json": ["message.received"],
    "20-interactive-with-value-errors.json": ["message.received", "phone_number.error"],
    "21-text-from-ad-referral.json": ["message.received"],
    "23-edit.json": ["message.edited"],
    "25-status-sent.json": ["message.sent"],
    "26-status-delivered.json": ["message.delivered"],
    "27-status-read.json": ["message.read"],
    "28-status-failed.json": ["message.failed"],
    "30-message_echoes.json": ["message.echo"],
    "32-meta-docs-text.json": ["message.received"],
}
MESSAGE_EVENTS = {
    "reaction": "message.reaction",
    "edit": "message.edited",
    "revoke": "message.deleted",
    "system": "contact.changed",
}
MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}
VALIDATORS = {
    name: jsonschema_rs.validator_for(event_schema(name), validate_formats=True)
    for name in EVENT_TYPES
}

Path_ = tuple[str | int, ...]


def values(body: Any) -> Iterator[dict[str, Any]]:
    for entry in body["entry"]:
        for change in entry["changes"]:
            yield change["value"]


def meta_objects(body: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(event type, Meta's object, the ``value`` it came in), in the order of the body."""
    for value in values(body):
        for message in value.get("messages", []):
            yield MESSAGE_EVENTS.get(message.get("type"), "message.received"), message, value
        for echo in value.get("message_echoes", []):
            yield "message.echo", echo, value
        for status in value.get("statuses", []):
            yield f"message.{status['status']}", status, value
        for error in value.get("errors", []):
            yield "phone_number.error", error, value


def expected_events(body: Any) -> list[str]:
    return [event_type for event_type, _, _ in meta_objects(body)]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_path(path: Path_) -> Path_:
    return tuple(camel(p) if isinstance(p, str) else p for p in path)


def ours(path: Path_, message_type: str | None, new_type: str | None = None) -> Path_ | None:
    """Where the field at ``path`` of a Meta object is in its event's data (None: not a
    typed field). Everything is camelCased in place but for these documented moves."""
    first, rest = path[0], path[1:]
    if path == ("id",):
        return ("metaMessageId",)
    if path == ("from_user_id",):
        return ("userId",)
    if path == ("from_parent_user_id",):
        return ("parentUserId",)
    if first == "text" and message_type == "text" and rest == ("body",):
        return ("text",)
    if first in MEDIA_TYPES and first == message_type:
        return ("media", *camel_path(rest))
    if first == "context" and rest == ("id",):
        return ("context", "messageId")
    if path[-2:] == ("error_data", "details"):
        return (*camel_path(path[:-2]), "details")
    if first in {"edit", "revoke"} and rest == ("original_message_id",):
        return ("originalMessageId",)
    if first == "edit" and rest[:1] == ("message",) and rest[1:]:
        # The new content, flattened as in message.received.
        return ours(rest[1:], new_type)
    if path == ("type",) and message_type == "edit":
        return None  # the event's type says it; data.type is the new content's
    return camel_path(path)


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path, node


def at(data: Any, path: Path_) -> Any:
    node = data
    for step in path:
        if isinstance(step, int):
            assert isinstance(node, list) and step < len(node), f"no item {path}"
        else:
            assert isinstance(node, dict) and step in node, f"no typed field {path}"
        node = node[step]
    return node


def expected_value(path: Path_, value: Any) -> Any:
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    if name == "timestamp" or name.endswith("_timestamp"):
        moment = datetime.fromtimestamp(int(value), tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return value


def checked_fields(event_type: str, meta: dict[str, Any], data: dict[str, Any]) -> int:
    """Every leaf of ``meta`` equal at its place in ``data``; how many were compared."""
    message_type = None if event_type == "phone_number.error" else meta.get("type")
    edit = meta.get("edit") if message_type == "edit" else None
    new_type = edit.get("message", {}).get("type") if isinstance(edit, dict) else None
    compared = 0
    for path, value in leaves(meta):
        target = ours(path, message_type, new_type)
        if target is None:
            continue
        found = at(data, target)
        assert found == expected_value(path, value), f"{path} -> {target}: {found!r} != {value!r}"
        compared += 1
    return compared


def checked_sender(event_type: str, meta: dict[str, Any], value: Any, data: Any) -> int:
    """For a message or an echo: the customer's name and ids, from ``value.contacts``."""
    if event_type == "message.echo":
        keys = (meta.get("to"), meta.get("to_user_id"))
    elif "status" in meta or event_type == "phone_number.error":
        return 0
    else:
        keys = (meta.get("from"), meta.get("from_user_id"))
    contact: dict[str, Any] = next(
        (
            c
            for key in keys
            for c in value.get("contacts", [])
            if key is not None and key in (c.get("wa_id"), c.get("user_id"))
        ),
        {},
    )
    assert data["contactName"] == contact.get("profile", {}).get("name")
    if event_type == "message.echo":
        return 1
    assert data["userId"] == (meta.get("from_user_id") or contact.get("user_id"))
    parent = meta.get("from_parent_user_id") or contact.get("parent_user_id")
    assert data["parentUserId"] == parent
    return 3


def rewritten(body: Any, meta_phone: str) -> Any:
    """The body for ``meta_phone``, each Meta id made unique (one new id per old one, so
    statuses of one message still share theirs)."""
    body = copy.deepcopy(body)
    new_ids: dict[str, str] = {}
    for value in values(body):
        value.setdefault("metadata", {})["phone_number_id"] = meta_phone
        for key in ("messages", "message_echoes", "statuses"):
            for item in value.get(key, []):
                old = item["id"]
                item["id"] = new_ids.setdefault(old, f"{old}.{uuid.uuid4().hex[:12]}")
    return body


@pytest.fixture
async def world(storage: Any) -> AsyncIterator[World]:
    clock = FakeClock(datetime.now(UTC))
    receiver = Receiver()
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        client.services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        world = World(client, client.services, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        yield world


def test_the_table_and_the_rules_agree() -> None:
    """Files the table names exist, and what the rules expect of them is the table."""
    assert PAYLOADS.is_dir(), f"Meta's payloads are missing: {PAYLOADS}"
    for name, events in EXPECTED.items():
        assert expected_events(orjson.loads((PAYLOADS / name).read_bytes())) == events, name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_every_meta_payload_keeps_its_content(world: World, path: Path) -> None:
    assert path.is_file(), f"no Meta payloads in {PAYLOADS} (CI has shared/ beside the repo)"
    phone = await world.connect()
    await world.delivered()  # the phone_number.connected event, out of the way
    world.receiver.requests.clear()
    body = rewritten(orjson.loads(path.read_bytes()), phone["metaPhoneNumberId"])
    raw = orjson.dumps(body)

    response = await world.meta_post(phone["phoneNumberId"], raw)
    assert response.status_code == 200
    events = await world.delivered()
    expected = EXPECTED.get(path.name, expected_events(body))
    assert sorted(e["event"] for e in events) == sorted(expected)

    by_key: dict[tuple[str, str | None], list[Any]] = {}
    for event in events:
        by_key.setdefault((event["event"], event["data"].get("metaMessageId")), []).append(event)
    compared = 0
    for event_type, meta, value in meta_objects(body):
        key = (event_type, None if event_type == "phone_number.error" else meta["id"])
        event = by_key[key].pop(0)
        VALIDATORS[event_type].validate(event)
        data = event["data"]
        assert set(data) == set(event_schema(event_type)["properties"]["data"]["properties"])
        assert (data["phoneNumberId"], data["wabaId"]) == (phone["phoneNumberId"], phone["wabaId"])
        assert data["raw"] == meta  # Meta's object, untouched
        compared += checked_fields(event_type, meta, data)
        compared += checked_sender(event_type, meta, value, data)
    assert compared >= len(events)

    # Meta's retry of the same body adds nothing.
    world.receiver.requests.clear()
    assert (await world.meta_post(phone["phoneNumberId"], raw)).status_code == 200
    assert await world.delivered() == []
