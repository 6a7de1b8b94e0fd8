"""Test mode in the storage contract: every backend keeps ``livemode`` and no list mixes
test and live objects; records written before test mode read as live."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from edge_onboard.storage import (
    ApiKey,
    Completion,
    Delivery,
    DeliveryStatus,
    Event,
    LinkCondition,
    LinkFilter,
    LinkStatus,
    OnboardingLink,
    Storage,
)
from edge_onboard.storage.codec import dump_doc
from edge_onboard.storage.mongo import MongoStorage
from edge_onboard.storage.paging import Window
from edge_onboard.storage.sqlite import SQLiteStorage
from edge_onboard.storage.sqlite.schema import MIGRATIONS
from tests.conftest import FakeClock
from tests.storage.test_contract import _webhook, make_completion, make_link

pytestmark = pytest.mark.anyio
WINDOW = Window(limit=50)


def _test_mode(completion: Completion) -> Completion:
    # The fake Meta's ids are its own random numbers: never a real WABA's.
    assert completion.phone is not None
    return dataclasses.replace(
        completion,
        waba=dataclasses.replace(completion.waba, livemode=False, meta_waba_id="999000111"),
        phone=dataclasses.replace(completion.phone, livemode=False, meta_waba_id="999000111"),
    )


async def test_api_keys_keep_their_mode(storage: Storage, clock: FakeClock) -> None:
    await storage.insert_api_key(
        ApiKey("k1", "o1", "h1", "sk_test_abcdefgh", clock(), livemode=False)
    )
    await storage.insert_api_key(ApiKey("k2", "o1", "h2", "sk_live_abcdefgh", clock()))
    test_key, live_key = (
        await storage.get_api_key_by_hash("h1"),
        await storage.get_api_key_by_hash("h2"),
    )
    assert test_key is not None and test_key.livemode is False
    assert live_key is not None and live_key.livemode is True


async def test_link_lists_never_mix_modes(storage: Storage, clock: FakeClock) -> None:
    live, test = [], []
    for _ in range(3):
        live.append(make_link(clock, external_id="same"))
        clock.advance(seconds=1)
        test.append(make_link(clock, external_id="same", livemode=False))
        clock.advance(seconds=1)
    for link in live + test:
        await storage.insert_link(link)
    got = await storage.get_link(test[0].id)
    assert got is not None and got.livemode is False
    for mode, mine in ((True, live), (False, test)):
        ids = [link.id for link in reversed(mine)]
        cases = [
            LinkFilter(livemode=mode),
            LinkFilter(livemode=mode, external_id="same"),
            LinkFilter(livemode=mode, status=LinkStatus.PENDING),
            LinkFilter(livemode=mode, status=LinkStatus.PENDING, as_of=clock()),
        ]
        for flt in cases:
            page = await storage.list_links("org-1", flt, WINDOW)
            assert [x.id for x in page.items] == ids, flt
            assert page.total == 3 and all(x.livemode is mode for x in page.items)
    # Past due but not swept yet: the expired list of each mode has only its own.
    clock.advance(days=8)
    for mode, mine in ((True, live), (False, test)):
        flt = LinkFilter(livemode=mode, status=LinkStatus.EXPIRED, as_of=clock())
        page = await storage.list_links("org-1", flt, WINDOW)
        assert {x.id for x in page.items} == {link.id for link in mine}
    # An update keeps the mode (SQLite rewrites the row).
    updated = await storage.update_link(
        "org-1", test[1].id, LinkCondition(statuses={LinkStatus.PENDING}), {"name": "renamed"}
    )
    assert updated is not None and updated.livemode is False
    page = await storage.list_links("org-1", LinkFilter(livemode=False), WINDOW)
    assert test[1].id in {x.id for x in page.items}


async def test_completed_test_signup_is_test_everywhere(storage: Storage, clock: FakeClock) -> None:
    live_link = make_link(clock, claim_id="c1", claimed_until=clock() + timedelta(seconds=60))
    test_link = make_link(
        clock, claim_id="c2", claimed_until=clock() + timedelta(seconds=60), livemode=False
    )
    await storage.insert_link(live_link)
    await storage.insert_link(test_link)
    live_hook = _webhook(clock)
    test_hook = _webhook(clock, livemode=False)
    await storage.insert_webhook(live_hook)
    await storage.insert_webhook(test_hook)
    event = Event("evt_t1", "org-1", "phone_number.connected", {}, clock(), livemode=False)
    delivery = Delivery(
        id=str(uuid.uuid4()),
        org_id="org-1",
        event_id=event.id,
        webhook_id=test_hook.id,
        event_type=event.type,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=clock(),
        created_at=clock(),
        updated_at=clock(),
        livemode=False,
    )
    completion = dataclasses.replace(
        _test_mode(make_completion(clock, test_link, "c2", meta_phone="111")),
        events=[event],
        deliveries=[delivery],
    )
    assert await storage.complete_link(completion) is not None
    assert await storage.complete_link(make_completion(clock, live_link, "c1")) is not None

    test_phones = (await storage.list_phones("org-1", WINDOW, livemode=False)).items
    live_phones = (await storage.list_phones("org-1", WINDOW, livemode=True)).items
    assert [p.meta_phone_number_id for p in test_phones] == ["111"]
    assert [p.meta_phone_number_id for p in live_phones] == ["106540352242922"]
    assert test_phones[0].livemode is False and live_phones[0].livemode is True
    test_wabas = (await storage.list_wabas("org-1", WINDOW, livemode=False)).items
    live_wabas = (await storage.list_wabas("org-1", WINDOW, livemode=True)).items
    assert len(test_wabas) == len(live_wabas) == 1
    assert test_wabas[0].livemode is False and live_wabas[0].livemode is True
    assert test_wabas[0].id != live_wabas[0].id

    stored = await storage.get_event("evt_t1")
    assert stored is not None and stored.livemode is False
    got = await storage.get_delivery(delivery.id)
    assert got is not None and got.livemode is False

    assert [w.id for w in await storage.active_webhooks("org-1", livemode=False)] == [test_hook.id]
    assert [w.id for w in await storage.active_webhooks("org-1", livemode=True)] == [live_hook.id]
    listed = (await storage.list_webhooks("org-1", WINDOW, livemode=False)).items
    assert [w.id for w in listed] == [test_hook.id]
    # A rewrite (update) keeps the mode.
    changed = await storage.update_webhook("org-1", test_hook.id, {"url": "https://e.com/2"})
    assert changed is not None and changed.livemode is False
    listed = (await storage.list_webhooks("org-1", WINDOW, livemode=True)).items
    assert [w.id for w in listed] == [live_hook.id]
    phone = test_phones[0]
    moved = await storage.update_phone(phone.id, {"verified_name": "Acme"})
    assert moved is not None and moved.livemode is False
    assert len((await storage.list_phones("org-1", WINDOW, livemode=False)).items) == 1


async def test_sqlite_rows_from_before_test_mode_are_live(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:-1]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    old = make_link(clock)
    doc = old.to_doc()
    del doc["livemode"]  # written by a release that did not know test mode
    conn.execute(
        "INSERT INTO links (id, org_id, status, external_id, created_at, expires_at, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (old.id, old.org_id, "pending", None, 0, 2**40, dump_doc(doc)),
    )
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    await store.open()
    try:
        got = await store.get_link(old.id)
        assert got is not None and got.livemode is True
        live = await store.list_links("org-1", LinkFilter(livemode=True), WINDOW)
        assert [x.id for x in live.items] == [old.id]
        test = await store.list_links("org-1", LinkFilter(livemode=False), WINDOW)
        assert test.items == []
    finally:
        await store.close()


async def test_mongo_records_from_before_test_mode_are_live(
    mongodb_url: str, clock: FakeClock
) -> None:
    store = MongoStorage(mongodb_url, database=f"edge_test_{uuid.uuid4().hex[:12]}")
    try:
        old: OnboardingLink = make_link(clock)
        doc = old.to_doc()
        del doc["livemode"]
        doc["_id"] = doc.pop("id")
        await store.links.insert_one(doc)  # written by a release that did not know test mode
        await store.open()
        live = await store.list_links("org-1", LinkFilter(livemode=True), WINDOW)
        assert [x.id for x in live.items] == [old.id]
        assert (await store.list_links("org-1", LinkFilter(livemode=False), WINDOW)).items == []
        # The backfill runs once: a marker says it was done.
        assert await store.db["schema_changes"].find_one({"_id": "livemode"}) is not None
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
