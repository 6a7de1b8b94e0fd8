"""Every real Meta webhook body (../shared/meta-payloads/ and its 2026-12/ folder, written by
others: pywa's fixtures and Meta's reference pages, see their SOURCES.tsv and .source.txt)
becomes the events the table says, with every field of Meta's object in typed fields.

Each body is rewritten for a connected number (its ``phone_number_id``, the WABA's id, unique
message and call ids), signed, and posted where Meta posts it: a change naming the number to
the number's endpoint, the others to ``/webhook/meta``. Then, per Meta object (message, echo,
status, error, call, history chunk, synced contact, preference, group change, account or
template change), its event is found by ``raw`` (Meta's object, untouched), validated against
its published schema, and every leaf of Meta's object must be equal at its camelCased place in
the typed fields (times as ISO 8601); the customer's name, ids and username from
``value.contacts`` must be on it too. Meta's retry of the body, to either endpoint, adds
nothing.

The path rules are this test's own, written from Meta's webhook reference (Meta's keys,
camelCased, in place, but for the moves ``ours`` lists), not taken from the code under test.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jsonschema_rs
import orjson
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.api.openapi.event_schemas import event_schema
from edge_onboard.meta.inbound import sign_body
from edge_onboard.meta.sandbox import APP_SECRET
from edge_onboard.storage import Storage
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.delivery import Sender
from tests.conftest import FakeClock, make_settings, open_storage, running_app
from tests.meta.test_inbound import World
from tests.meta.test_meta_payloads import (
    MESSAGE_EVENTS,
    at,
    camel,
    camel_path,
    expected_value,
    leaves,
)
from tests.meta.test_meta_payloads import ours as message_path
from tests.webhooks.test_delivery import Receiver

pytestmark = pytest.mark.anyio

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "meta-payloads"
NEW = PAYLOADS / "2026-12"
FILES = sorted(PAYLOADS.glob("*.json")) + sorted(NEW.glob("*.json"))
FILES = FILES or [PAYLOADS / "(no payload files)"]
Path_ = tuple[str | int, ...]

_ACCOUNT = "waba.updated"
# The events each file must give (sorted). The rules of ``expected_events`` must agree.
EXPECTED: dict[str, list[str]] = {
    "meta_doc__business_capability_update.json": [_ACCOUNT],
    "meta_doc__history_approved.json": ["history.received"],
    "meta_doc__smb_app_state_sync.json": ["contact.synced"],
    **{
        f"pywa__account_update__{name}.json": [_ACCOUNT]
        for name in (
            "account_deleted",
            "account_disabled",
            "account_offboarded",
            "account_reconnected",
            "account_restriction",
            "account_violation",
            "ad_account_linked",
            "authentication_international_eligibility",
            "mm_api_for_wa_terms_of_service",
            "partner_added",
            "partner_app_installed",
            "partner_app_uninstalled",
            "partner_led_business_verification_status",
            "pricing_tiering_update",
            "primary_business_location_set",
        )
    },
    "pywa__account_update__partner_removed.json": ["phone_number.updated", "waba.disconnected"],
    "pywa__account_update__partner_removed_wa_app_disconnection.json": [
        "phone_number.updated",
        "waba.disconnected",
    ],
    "pywa__call_connect__business_initiated.json": ["call.connected"],
    "pywa__call_connect__user_initiated.json": ["call.connected"],
    "pywa__call_permission_update__accept.json": ["message.received"],
    "pywa__call_permission_update__reject.json": ["message.received"],
    "pywa__call_status__call_status.json": ["call.updated"],
    "pywa__call_terminate__call_terminate.json": ["call.ended"],
    "pywa__deleted_message__revoke.json": ["message.deleted"],
    "pywa__edited_message__image.json": ["message.edited"],
    "pywa__message__reaction.json": ["message.reaction"],
    "pywa__message__unreaction_empty.json": ["message.reaction"],
    "pywa__message__unreaction_no_emoji.json": ["message.reaction"],
    "pywa__message__interactive_message_with_err.json": ["message.received", "phone_number.error"],
    **{
        f"pywa__message_status__{state}.json": [f"message.{state}"]
        for state in ("delivered", "failed", "played", "read", "sent")
    },
    "pywa__message_status__group.json": ["message.read"],
    "pywa__message_status__with_tracker.json": ["message.sent"],
    "pywa__outgoing_message__delete.json": ["message.echo"],
    "pywa__outgoing_message__edit.json": ["message.echo"],
    "pywa__outgoing_message__text.json": ["message.echo"],
    "pywa__system__identity_change.json": ["contact.changed"],
    "pywa__system__phone_number_change.json": ["contact.changed"],
    "pywa__template_category_update__marketing.json": ["template.updated"],
    "pywa__template_components_update__element.json": ["template.updated"],
    "pywa__template_quality_update__yellow.json": ["template.updated"],
    "pywa__template_status_update__approved.json": ["template.updated"],
    "pywa__template_status_update__rejected.json": ["template.updated"],
    "pywa__user_marketing_preferences__resume.json": ["contact.preferences_changed"],
    "pywa__user_marketing_preferences__signup.json": ["contact.preferences_changed"],
}
# Meta's times that are not named *timestamp (Unix seconds, given as ISO 8601).
TIME_KEYS = {"expiration", "start_time", "end_time", "tier_update_time"}
TEMPLATE_FIELDS = {
    "message_template_status_update",
    "message_template_quality_update",
    "message_template_components_update",
    "template_category_update",
}
VALIDATORS = {
    name: jsonschema_rs.validator_for(event_schema(name), validate_formats=True)
    for name in EVENT_TYPES
}


def changes(body: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for entry in body["entry"]:
        for change in entry["changes"]:
            yield change.get("field", "messages"), change["value"]


def numbered(value: dict[str, Any]) -> bool:
    return "phone_number_id" in value.get("metadata", {})


def meta_objects(body: Any) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """(event type, Meta's object, its field, the ``value`` it came in), from Meta's
    reference: what each field's objects are and which event each one is."""
    for field, value in changes(body):
        if not numbered(value):
            if field in TEMPLATE_FIELDS:
                yield "template.updated", value, field, value
            elif value.get("event") == "PARTNER_REMOVED":
                yield "waba.disconnected", value, field, value
            else:
                yield "waba.updated", value, field, value
            continue
        if field == "history":
            for item in value.get("history", []):
                kind = "history.declined" if item.get("errors") else "history.received"
                yield kind, item, field, value
            for message in value.get("messages", []):
                yield "history.received", message, field, value
            continue
        if field == "calls":
            for call in value.get("calls", []):
                ended = {"connect": "call.connected", "terminate": "call.ended"}
                yield ended.get(call["event"], "call.updated"), call, field, value
            for status in value.get("statuses", []):
                yield "call.updated", status, field, value
            continue
        for key, kind in (
            ("state_sync", "contact.synced"),
            ("user_preferences", "contact.preferences_changed"),
            ("groups", "group.participants_changed"),
        ):
            for item in value.get(key, []):
                yield kind, item, field, value
        for message in value.get("messages", []):
            kind = MESSAGE_EVENTS.get(message.get("type"), "message.received")
            yield kind, message, field, value
        for echo in value.get("message_echoes", []):
            yield "message.echo", echo, field, value
        for status in value.get("statuses", []):
            yield f"message.{status['status']}", status, field, value
        for error in value.get("errors", []):
            yield "phone_number.error", error, field, value


def expected_events(body: Any) -> list[str]:
    found = [kind for kind, _, _, _ in meta_objects(body)]
    if "waba.disconnected" in found:  # the number goes with its WABA
        found.append("phone_number.updated")
    return sorted(found)


def ours(event_type: str, path: Path_, meta: dict[str, Any]) -> Path_ | None:
    """Where the field at ``path`` of Meta's object is in its event's data."""
    first, rest = path[0], path[1:]
    if event_type in ("waba.updated", "waba.disconnected", "phone_number.updated"):
        return ("change", *camel_path(path))
    if event_type.startswith("call."):
        return ("metaCallId",) if path == ("id",) else _errors(path)
    if event_type == "contact.synced" and path == ("metadata", "timestamp"):
        return ("timestamp",)
    if event_type.startswith("history."):
        if "threads" not in meta and "history" not in meta and "metadata" not in meta:
            # A media message of the history: a thread of its own.
            return ("threads", 0, "messages", 0, *_message(path, meta))
        if first == "metadata":
            return (camel(str(rest[0])),)
        if first == "threads" and rest[1:2] == ("messages",) and len(rest) > 3:
            thread, index = rest[0], rest[2]
            message = meta["threads"][thread]["messages"][index]
            return ("threads", thread, "messages", index, *_message(rest[3:], message))
        return _errors(path)
    if event_type.startswith(("message.", "contact.changed")) or event_type == "phone_number.error":
        return _message(path, meta, event_type)
    return _errors(path)


def _errors(path: Path_) -> Path_:
    if path[-2:] == ("error_data", "details"):
        return (*camel_path(path[:-2]), "details")
    return camel_path(path)


def _message(path: Path_, meta: dict[str, Any], event_type: str = "") -> Path_:
    message_type = None if event_type == "phone_number.error" else meta.get("type")
    edit = meta.get("edit") if message_type == "edit" else None
    new_type = edit.get("message", {}).get("type") if isinstance(edit, dict) else None
    if message_type == "revoke" and path[0] == "revoke":
        return ("originalMessageId",)
    if path == ("history_context", "status"):
        return ("historyContext", "status")
    target = message_path(path, message_type, new_type)
    assert target is not None or path == ("type",)
    return target if target is not None else ("raw", "type")


def value_of(path: Path_, value: Any) -> Any:
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    if name in TIME_KEYS and isinstance(value, int | str) and str(value).isdigit():
        return expected_value(("timestamp",), value)
    return expected_value(path, value)


def checked_fields(event_type: str, meta: dict[str, Any], data: dict[str, Any]) -> int:
    compared = 0
    for path, leaf in leaves(meta):
        target = ours(event_type, path, meta)
        if target is None:
            continue
        found = at(data, target)
        assert found == value_of(path, leaf), f"{path} -> {target}: {found!r} != {leaf!r}"
        compared += 1
    return compared


def contact_of(value: dict[str, Any], *keys: Any) -> dict[str, Any]:
    for key in keys:
        for contact in value.get("contacts", []):
            if key is not None and key in (contact.get("wa_id"), contact.get("user_id")):
                return dict(contact)
    return {}


def checked_person(event_type: str, meta: dict[str, Any], value: Any, data: Any) -> int:
    """The customer as ``value.contacts`` names them: name, ids and username."""
    if event_type == "message.echo":
        contact = contact_of(value, meta.get("to"), meta.get("to_user_id"))
        names = {"contactName": "name", "toUsername": "username", "toUserId": "user_id"}
    elif event_type.startswith("message.") and "status" in meta:
        group = meta.get("recipient_type") == "group"
        prefix = "recipientParticipant" if group else "recipient"
        keys = ("recipient_participant_id", "recipient_participant_user_id")
        keys = keys if group else ("recipient_id", "recipient_user_id")
        contact = contact_of(value, *(meta.get(k) for k in keys))
        names = {
            "recipientName": "name",
            "recipientUsername": "username",
            f"{prefix}UserId": "user_id",
            f"{prefix}ParentUserId": "parent_user_id",
        }
        if group:
            assert data["groupId"] == meta["recipient_id"]
    elif event_type.startswith(("message.", "contact.")) and "from" in meta:
        contact = contact_of(value, meta.get("from"), meta.get("from_user_id"))
        names = {"contactName": "name", "username": "username", "userId": "user_id"}
        names["parentUserId"] = "parent_user_id"
    elif event_type == "contact.preferences_changed":
        contact = contact_of(value, meta.get("wa_id"), meta.get("user_id"))
        names = {"contactName": "name", "username": "username", "userId": "user_id"}
    elif event_type.startswith("call."):
        user = meta.get("from") if meta.get("direction") == "USER_INITIATED" else meta.get("to")
        contact = contact_of(value, user, meta.get("recipient_id"))
        names = {"contactName": "name", "userId": "user_id", "parentUserId": "parent_user_id"}
    else:
        return 0
    profile = contact.get("profile", {})
    compared = 0
    for ours_key, meta_key in names.items():
        theirs = (
            profile.get(meta_key) if meta_key in ("name", "username") else contact.get(meta_key)
        )
        if theirs is not None:
            assert data[ours_key] == theirs, (ours_key, data[ours_key], theirs)
            compared += 1
    return compared


class Everything(World):
    """The world of test_inbound, its webhook subscribed to every event type."""

    events: ClassVar[list[str]] = list(EVENT_TYPES)

    async def app_post(self, raw: bytes) -> httpx.Response:
        headers = {"X-Hub-Signature-256": sign_body(APP_SECRET, raw)}
        return await self.client.post("/webhook/meta", content=raw, headers=headers)


@contextlib.asynccontextmanager
async def everything(storage: Storage) -> AsyncIterator[Everything]:
    """The app on ``storage`` (sandboxed), an organisation's key, a receiver for events."""
    clock = FakeClock()
    receiver = Receiver()
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        client.services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        world = Everything(client, client.services, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        yield world


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Everything]:
    async with open_storage("sqlite", tmp_path, request) as storage, everything(storage) as world:
        yield world


def rewritten(body: Any, phone: dict[str, Any]) -> Any:
    """The body for the connected ``phone`` and its WABA, each Meta id made unique."""
    body = copy.deepcopy(body)
    new_ids: dict[str, str] = {}
    for entry in body["entry"]:
        entry["id"] = phone["metaWabaId"]
        for change in entry["changes"]:
            value = change["value"]
            if "metadata" in value:
                value["metadata"]["phone_number_id"] = phone["metaPhoneNumberId"]
            if isinstance(value.get("waba_info"), dict):
                value["waba_info"]["waba_id"] = phone["metaWabaId"]
            for key in ("messages", "message_echoes", "statuses", "calls"):
                for item in value.get(key, []):
                    old = item["id"]
                    item["id"] = new_ids.setdefault(old, f"{old}.{uuid.uuid4().hex[:12]}")
    return body


def test_the_table_and_the_rules_agree() -> None:
    """Every file has a row or plain messages, and the rules give each row."""
    assert NEW.is_dir(), f"Meta's payloads are missing: {NEW}"
    for path in sorted(NEW.glob("*.json")):
        events = expected_events(orjson.loads(path.read_bytes()))
        assert EXPECTED.get(path.name, ["message.received"]) == events, path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_every_meta_payload_becomes_typed_events(world: Everything, path: Path) -> None:
    assert path.is_file(), f"no Meta payloads in {PAYLOADS} (CI has shared/ beside the repo)"
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    body = rewritten(orjson.loads(path.read_bytes()), phone)
    raw = orjson.dumps(body)
    to_number = all(numbered(value) for _, value in changes(body))

    if to_number:
        response = await world.meta_post(phone["phoneNumberId"], raw)
    else:
        response = await world.app_post(raw)
    assert response.status_code == 200
    events = await world.delivered()
    assert sorted(e["event"] for e in events) == EXPECTED.get(path.name, expected_events(body))

    compared = 0
    for event_type, meta, field, value in meta_objects(body):
        matches = [e for e in events if e["event"] == event_type and e["data"]["raw"] == meta]
        assert matches, f"no {event_type} with Meta's object as raw"
        event = matches[0]
        events.remove(event)
        VALIDATORS[event_type].validate(event)
        data = event["data"]
        assert data["wabaId"] == phone["wabaId"]
        if event_type in ("waba.updated", "waba.disconnected", "template.updated"):
            assert data["metaField"] == field
        if field == "account_update":
            assert data["metaEvent"] == value["event"]
        if event_type.startswith(("message.", "contact.", "call.", "history.", "group.")):
            assert data["phoneNumberId"] == phone["phoneNumberId"]
        compared += checked_fields(event_type, meta, data)
        compared += checked_person(event_type, meta, value, data)
    assert compared >= len(list(meta_objects(body)))

    # Meta's retry of the same body, to either endpoint, adds nothing.
    world.receiver.requests.clear()
    if to_number:
        assert (await world.meta_post(phone["phoneNumberId"], raw)).status_code == 200
    assert (await world.app_post(raw)).status_code == 200
    assert await world.delivered() == []


async def test_messages_at_the_app_endpoint_are_handled_like_the_numbers(
    world: Everything,
) -> None:
    """A number whose override is missing: Meta posts its messages to /webhook/meta."""
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    body = rewritten(orjson.loads((NEW / "pywa__message__text.json").read_bytes()), phone)
    raw = orjson.dumps(body)
    assert (await world.app_post(raw)).status_code == 200
    events = await world.delivered()
    assert [e["event"] for e in events] == ["message.received"]
    assert events[0]["data"]["text"] == "Body Text"
    assert events[0]["data"]["userId"] == "US.13491208655302741918"
    world.receiver.requests.clear()
    assert (await world.meta_post(phone["phoneNumberId"], raw)).status_code == 200
    assert await world.delivered() == []


@pytest.mark.parametrize("numbered_change", [True, False], ids=["number", "waba"])
async def test_a_field_not_typed_yet_is_sent_on_with_its_value(
    world: Everything, numbered_change: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A field Meta adds tomorrow reaches customers today: the closest event, metaField,
    metaEvent and Meta's value under raw; logged once, however often it comes."""
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    value: dict[str, Any] = {"event": "SOMETHING_NEW", "detail": {"n": 1}}
    if numbered_change:
        value["metadata"] = {"display_phone_number": "1555", "phone_number_id": ""}
    body = rewritten(
        {"object": "whatsapp_business_account", "entry": [{"id": "", "changes": []}]}, phone
    )
    field = f"brand_new_field_{uuid.uuid4().hex[:6]}"
    body["entry"][0]["changes"] = [{"field": field, "value": value}]
    body = rewritten(body, phone)
    raw = orjson.dumps(body)
    with caplog.at_level(logging.INFO, logger="edge_onboard.meta.inbound"):
        for _ in range(2):
            if numbered_change:
                assert (await world.meta_post(phone["phoneNumberId"], raw)).status_code == 200
            assert (await world.app_post(raw)).status_code == 200
    events = await world.delivered()
    expected = "phone_number.updated" if numbered_change else "waba.updated"
    assert [e["event"] for e in events] == [expected]
    data = events[0]["data"]
    VALIDATORS[expected].validate(events[0])
    sent = body["entry"][0]["changes"][0]["value"]
    assert (data["metaField"], data["metaEvent"], data["raw"]) == (field, "SOMETHING_NEW", sent)
    assert data["change"] is None
    told = [r for r in caplog.records if field in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in told]
