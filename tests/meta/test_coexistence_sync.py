"""A WhatsApp Business app number (coexistence): recognised from Meta's ``is_on_biz_app`` as
well as from the page's event; the results of its one-shot syncs are kept as events,
readable through GET /v1/events; the phone shows how each sync went.

History chunks arrive concurrently and out of order, and Meta retries them: the phone's
state only moves forward. The chunk bodies follow Meta's ``history`` reference
(../shared/meta-payloads/2026-12/meta_doc__history_approved.json is its first example).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

from edge_onboard.storage import Storage
from tests.meta.test_meta_fields_payloads import NEW, Everything, everything, rewritten

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(storage: Storage) -> AsyncIterator[Everything]:
    async with everything(storage) as world:
        yield world


async def coexistence_phone(world: Everything, *, page_event: str) -> dict[str, Any]:
    """A business app number connected; the page reports ``page_event``."""
    created = await world.client.post(
        "/v1/onboarding-links",
        headers=world.auth,
        json={
            "name": "Acme",
            "connectionTypes": ["cloud_api", "business_app"],
            "webhookUrl": "http://127.0.0.1:9/events",
            "webhookEvents": world.events,
        },
    )
    link = created.json()["data"]
    session = world.sandbox.finish("business_app")
    waba_id = session["data"]["waba_id"]
    meta_phone = world.sandbox.waba_phones[waba_id][0]
    body = {"code": session["code"], "wabaId": waba_id, "event": page_event}
    if page_event == "FINISH":  # a page that reports a plain signup, naming the number
        body["phoneNumberId"] = meta_phone
    done = await world.client.post(f"/signup/{link['id']}/callback", json=body)
    assert done.status_code == 200, done.text
    view = (
        await world.client.get(f"/v1/onboarding-links/{link['id']}", headers=world.auth)
    ).json()["data"]
    return {**view, "metaPhoneNumberId": meta_phone, "metaWabaId": waba_id}


async def phone_of(world: Everything, phone: dict[str, Any]) -> dict[str, Any]:
    answer = await world.client.get(f"/v1/phones/{phone['phoneNumberId']}", headers=world.auth)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def test_is_on_biz_app_makes_a_coexistence_number(world: Everything) -> None:
    """The page said FINISH, Meta says is_on_biz_app: a business app number, never
    registered, both syncs started."""
    phone = await coexistence_phone(world, page_event="FINISH")
    view = await phone_of(world, phone)
    assert view["platform"] == "business_app"
    assert view["coexistence"] == {"stateSync": "requested", "historySync": "requested"}


def chunk(progress: int, order: int, phase: int = 1) -> dict[str, Any]:
    body = orjson.loads((NEW / "meta_doc__history_approved.json").read_bytes())
    item = body["entry"][0]["changes"][0]["value"]["history"][0]
    item["metadata"] = {"phase": phase, "chunk_order": order, "progress": progress}
    for thread in item["threads"]:
        for message in thread["messages"]:
            message["id"] = f"{message['id']}.{progress}"
    return dict(body)


async def test_history_chunks_are_kept_and_the_phone_shows_progress(world: Everything) -> None:
    phone = await coexistence_phone(world, page_event="FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING")
    await world.delivered()
    world.receiver.requests.clear()
    chunks = [rewritten(chunk(p, i), phone) for i, p in enumerate((10, 55, 30, 80))]
    contacts = orjson.loads((NEW / "meta_doc__smb_app_state_sync.json").read_bytes())
    bodies = [orjson.dumps(b) for b in [*chunks, rewritten(contacts, phone)]]

    async def post(raw: bytes) -> None:
        answer = await world.meta_post(phone["phoneNumberId"], raw)
        assert answer.status_code == 200

    # All at once, each twice (Meta retries), out of order.
    async with anyio.create_task_group() as group:
        for raw in bodies + bodies[::-1]:
            group.start_soon(post, raw)
    view = await phone_of(world, phone)
    assert view["coexistence"] == {
        "stateSync": "done",
        "historySync": "in_progress",
        "historyProgress": 80,
    }
    events = await world.delivered()
    assert sorted(e["event"] for e in events) == ["contact.synced"] + ["history.received"] * 4

    last = rewritten(chunk(100, 9, phase=2), phone)
    await post(orjson.dumps(last))
    view = await phone_of(world, phone)
    assert view["coexistence"]["historySync"] == "done"
    assert view["coexistence"]["historyProgress"] == 100

    # Kept for the retention period: readable by type through the events API.
    listed = await world.client.get(
        "/v1/events", params={"type": "history.received", "limit": 100}, headers=world.auth
    )
    assert listed.status_code == 200, listed.text
    kept = listed.json()["data"]
    assert sorted(e["data"]["progress"] for e in kept) == [10, 30, 55, 80, 100]
    thread = next(e for e in kept if e["data"]["progress"] == 55)["data"]["threads"][0]
    assert thread["messages"][0]["text"].startswith("Here's the info you requested!")
    assert thread["messages"][0]["historyContext"] == {"status": "READ"}
    synced = await world.client.get(
        "/v1/events", params={"type": "contact.synced"}, headers=world.auth
    )
    (contact,) = synced.json()["data"]
    assert contact["data"]["contact"]["fullName"] == "Pablo Morales"
    assert contact["data"]["action"] == "add"


async def test_a_declined_history_shows_on_the_phone(world: Everything) -> None:
    phone = await coexistence_phone(world, page_event="FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING")
    declined = copy.deepcopy(chunk(0, 0))
    # Meta's "business declined to share" history item (its code 2593109).
    declined["entry"][0]["changes"][0]["value"]["history"] = [
        {
            "errors": [
                {
                    "code": 2593109,
                    "title": "History sync is turned off by the business from the WhatsApp "
                    "Business App",
                    "message": "History sync is turned off by the business from the WhatsApp "
                    "Business App",
                    "error_data": {"details": "History sharing is turned off"},
                }
            ]
        }
    ]
    raw = orjson.dumps(rewritten(declined, phone))
    await world.delivered()
    world.receiver.requests.clear()
    for _ in range(2):
        assert (await world.meta_post(phone["phoneNumberId"], raw)).status_code == 200
    events = await world.delivered()
    assert [e["event"] for e in events] == ["history.declined"]
    assert events[0]["data"]["errors"][0]["code"] == 2593109
    view = await phone_of(world, phone)
    assert view["coexistence"]["historySync"] == "declined"
