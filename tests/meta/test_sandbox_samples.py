"""The fake Meta can post every kind of webhook for a test-mode number, signed like Meta,
to where Meta posts it: each becomes its event, once, like Meta's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge_onboard.api.openapi.event_schemas import event_schema
from edge_onboard.meta.sandbox.platform_samples import SAMPLES
from edge_onboard.storage import Storage
from tests.meta.test_meta_fields_payloads import VALIDATORS, Everything, everything

pytestmark = pytest.mark.anyio

# What each sample must become (from the events' catalog, not from the code under test).
BECOMES = {
    "history": "history.received",
    "history_declined": "history.declined",
    "contact_synced": "contact.synced",
    "preferences_changed": "contact.preferences_changed",
    "call_connected": "call.connected",
    "call_ended": "call.ended",
    "call_updated": "call.updated",
    "group_participants_changed": "group.participants_changed",
    "user_id_update": "contact.changed",
    "template_status": "template.updated",
    "template_quality": "template.updated",
    "template_category": "template.updated",
    "template_components": "template.updated",
    "account_review": "waba.updated",
    "capabilities": "waba.updated",
    "account_restricted": "waba.updated",
    "account_offboarded": "waba.updated",
    "account_reconnected": "waba.updated",
    "verified_account": "waba.updated",
    "username": "phone_number.updated",
}


@pytest.fixture
async def world(storage: Storage) -> AsyncIterator[Everything]:
    async with everything(storage) as world:
        yield world


async def test_every_sample_becomes_its_event(world: Everything) -> None:
    assert set(BECOMES) == set(SAMPLES)
    phone = await world.connect()
    await world.delivered()
    for kind, event_type in BECOMES.items():
        world.receiver.requests.clear()
        assert world.sandbox.emit_sample(phone["metaPhoneNumberId"], kind)
        assert await world.sandbox.flush(world.client) == 1
        events = await world.delivered()
        assert [e["event"] for e in events] == [event_type], kind
        VALIDATORS[event_type].validate(events[0])
        assert set(events[0]["data"]) == set(
            event_schema(event_type)["properties"]["data"]["properties"]
        )
    assert not world.sandbox.emit_sample(phone["metaPhoneNumberId"], "no_such_kind")
    assert not world.sandbox.emit_sample("000", "history")


async def test_a_number_without_its_own_callback_is_reached_through_the_app(
    world: Everything,
) -> None:
    phone = await world.connect()
    await world.delivered()
    world.receiver.requests.clear()
    world.sandbox.phones[phone["metaPhoneNumberId"]].pop("_webhook", None)
    assert world.sandbox.emit_sample(phone["metaPhoneNumberId"], "call_connected")
    (url, _) = world.sandbox.outbox[0]
    assert url.endswith("/webhook/meta")
    await world.sandbox.flush(world.client)
    assert [e["event"] for e in await world.delivered()] == ["call.connected"]
