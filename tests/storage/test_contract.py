"""One contract for every storage backend: memory, SQLite and a real MongoDB."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import pytest

from edge_onboard.storage import (
    ApiKey,
    Completed,
    Completion,
    Delivery,
    DeliveryStatus,
    DuplicateError,
    Event,
    IdempotencyRecord,
    LinkCondition,
    LinkFilter,
    LinkStatus,
    OnboardingLink,
    Organization,
    OutgoingWebhook,
    PartnerGrant,
    Phone,
    PhoneStatus,
    Storage,
    Waba,
    WebhookStatus,
)
from edge_onboard.storage.mongo import MongoStorage
from edge_onboard.storage.paging import Page, Window
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
T = TypeVar("T")


def pair(page: Page[T]) -> tuple[list[T], int]:
    return page.items, page.total


def make_link(clock: FakeClock, org_id: str = "org-1", **fields: Any) -> OnboardingLink:
    now = clock()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "org_id": org_id,
        "name": "Acme",
        "status": LinkStatus.PENDING,
        "created_at": now,
        "expires_at": now + timedelta(days=7),
    }
    values.update(fields)
    return OnboardingLink(**values)


async def test_ping(storage: Storage) -> None:
    await storage.ping()


async def test_orgs_are_unique_by_name(storage: Storage, clock: FakeClock) -> None:
    first = await storage.get_or_create_org(Organization("o1", "acme", clock()))
    again = await storage.get_or_create_org(Organization("o2", "acme", clock()))
    assert again.id == first.id == "o1"
    assert await storage.get_org("o1") == first
    assert await storage.get_org("o2") is None


async def test_org_branding_updates(storage: Storage, clock: FakeClock) -> None:
    await storage.get_or_create_org(Organization("o1", "acme", clock()))
    logo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    changes = {"display_name": "Acme", "brand_color": "#0a7cff", "logo": logo}
    updated = await storage.update_org("o1", {**changes, "updated_at": clock()})
    assert updated is not None and updated.display_name == "Acme"
    stored = await storage.get_org("o1")
    assert stored == updated and stored.logo == logo and stored.name == "acme"
    cleared = await storage.update_org("o1", {"logo": None, "brand_color": None})
    assert cleared is not None and cleared.logo is None and cleared.display_name == "Acme"
    assert await storage.get_org("o1") == cleared
    assert await storage.update_org("nobody", {"display_name": "x"}) is None


async def test_concurrent_org_creation_makes_one(storage: Storage, clock: FakeClock) -> None:
    results: list[Organization] = []

    async def create(i: int) -> None:
        results.append(await storage.get_or_create_org(Organization(f"o{i}", "racing", clock())))

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(create, i)
    assert len({org.id for org in results}) == 1


async def test_api_keys(storage: Storage, clock: FakeClock) -> None:
    key = ApiKey("k1", "o1", "hash-1", "sk_org_abcdefgh", clock())
    await storage.insert_api_key(key)
    with pytest.raises(DuplicateError):
        await storage.insert_api_key(ApiKey("k2", "o1", "hash-1", "sk_org_zzzzzzzz", clock()))
    assert await storage.get_api_key_by_hash("hash-1") == key
    assert await storage.get_api_key_by_hash("nope") is None
    assert [k.id for k in await storage.find_api_keys("sk_org_abc")] == ["k1"]
    assert [k.id for k in await storage.find_api_keys("k1")] == ["k1"]
    # LIKE/regex metacharacters are literal.
    assert await storage.find_api_keys("sk_org_.*") == []
    assert await storage.find_api_keys("sk%") == []
    assert await storage.revoke_api_key("k1", clock()) is True
    assert await storage.revoke_api_key("k1", clock()) is False
    assert await storage.revoke_api_key("missing", clock()) is False
    revoked = await storage.get_api_key_by_hash("hash-1")
    assert revoked is not None and revoked.revoked_at == clock() and not revoked.active


async def test_link_round_trip_keeps_every_field(storage: Storage, clock: FakeClock) -> None:
    link = make_link(
        clock,
        external_id="ext-1",
        redirect_url="https://example.com/done",
        webhook_url="https://example.com/hook",
        webhook_secret_enc="v1.abc.def",
        webhook_events=["phone_number.connected"],
        metadata={"plan": "pro", "ünïcode": "✓"},
        prefill={"business": {"name": "Acme", "phone": {"code": 1, "number": "5550100"}}},
        locale="en_US",
        last_error={"code": "x", "message": "y", "at": clock()},
        updated_at=clock(),
    )
    await storage.insert_link(link)
    assert await storage.get_link(link.id) == link
    with pytest.raises(DuplicateError):
        await storage.insert_link(link)
    assert await storage.get_link(str(uuid.uuid4())) is None


async def test_list_is_newest_first_filtered_and_paged(storage: Storage, clock: FakeClock) -> None:
    links = []
    for i in range(7):
        link = make_link(clock, external_id=f"ext-{i % 2}")
        links.append(link)
        await storage.insert_link(link)
        clock.advance(milliseconds=1)
    # Same created_at: ordered by id, descending, so pages never overlap.
    twins = [make_link(clock, id=f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2)]
    for twin in twins:
        await storage.insert_link(twin)
    await storage.insert_link(make_link(clock, org_id="other-org"))
    deleted = make_link(clock, status=LinkStatus.DELETED)
    await storage.insert_link(deleted)

    expected = [twins[1].id, twins[0].id] + [link.id for link in reversed(links)]
    first, total = pair(await storage.list_links("org-1", LinkFilter(), Window(4)))
    second, _ = pair(await storage.list_links("org-1", LinkFilter(), Window(4, offset=4)))
    third, _ = pair(await storage.list_links("org-1", LinkFilter(), Window(4, offset=8)))
    assert total == 9
    assert [link.id for link in first + second + third] == expected

    by_ext, total = pair(
        await storage.list_links("org-1", LinkFilter(external_id="ext-1"), Window(10))
    )
    assert total == 3 and {link.external_id for link in by_ext} == {"ext-1"}
    none, total = pair(
        await storage.list_links("org-1", LinkFilter(status=LinkStatus.COMPLETED), Window(10))
    )
    assert (none, total) == ([], 0)


async def test_windows_walk_the_same_order_every_way(storage: Storage, clock: FakeClock) -> None:
    """Cursors forwards and backwards and offsets agree, twins (same instant) included;
    the count stops at its cap and says so."""
    links = []
    for i in range(11):
        link = make_link(clock, id=f"00000000-0000-4000-8000-0000000000{i:02d}")
        links.append(link)
        await storage.insert_link(link)
        if i % 3 == 2:
            clock.advance(milliseconds=1)  # the others share their instant with a twin
    expected = [link.id for link in sorted(links, key=lambda x: (x.created_at, x.id))][::-1]
    everything = LinkFilter()

    def key(link: OnboardingLink) -> tuple[Any, str]:
        return (link.created_at, link.id)

    forward: list[str] = []
    page = await storage.list_links("org-1", everything, Window(4))
    while True:
        forward += [x.id for x in page.items]
        if not page.has_more:
            break
        page = await storage.list_links("org-1", everything, Window(4, after=key(page.items[-1])))
    assert forward == expected

    backward: list[str] = []
    oldest = next(x for x in links if x.id == expected[-1])
    page = await storage.list_links("org-1", everything, Window(4, before=key(oldest)))
    while True:
        backward = [x.id for x in page.items] + backward
        if not page.has_more:
            break
        page = await storage.list_links("org-1", everything, Window(4, before=key(page.items[0])))
    assert backward == expected[:-1]

    by_offset = [
        x.id
        for offset in (0, 4, 8)
        for x in (await storage.list_links("org-1", everything, Window(4, offset=offset))).items
    ]
    assert by_offset == expected
    beyond = await storage.list_links("org-1", everything, Window(4, offset=11))
    assert (beyond.items, beyond.has_more, beyond.total) == ([], False, 11)
    capped = await storage.list_links("org-1", everything, Window(2, count_cap=5))
    assert (capped.total, capped.total_is_estimate, capped.has_more) == (5, True, True)
    exact = await storage.list_links("org-1", everything, Window(20, count_cap=11))
    assert (exact.total, exact.total_is_estimate, exact.has_more) == (11, False, False)


async def test_conditional_update(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    pending = LinkCondition(statuses={LinkStatus.PENDING})
    assert await storage.update_link("other-org", link.id, pending, {"name": "x"}) is None
    updated = await storage.update_link(
        "org-1", link.id, pending, {"status": LinkStatus.COMPLETED, "completed_at": clock()}
    )
    assert updated is not None and updated.status is LinkStatus.COMPLETED
    assert updated.completed_at == clock()
    assert await storage.update_link("org-1", link.id, pending, {"name": "late"}) is None
    stored = await storage.get_link(link.id)
    assert stored == updated


async def test_update_refuses_expired_when_asked(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock, expires_at=clock() + timedelta(seconds=10))
    await storage.insert_link(link)
    clock.advance(seconds=10)
    condition = LinkCondition(statuses={LinkStatus.PENDING}, unexpired_at=clock())
    assert await storage.update_link("org-1", link.id, condition, {"name": "x"}) is None
    clock.advance(seconds=-1)
    condition = LinkCondition(statuses={LinkStatus.PENDING}, unexpired_at=clock())
    assert await storage.update_link("org-1", link.id, condition, {"name": "x"}) is not None


async def test_expire_due_links_and_lists_as_of(storage: Storage, clock: FakeClock) -> None:
    soon = make_link(clock, expires_at=clock() + timedelta(minutes=5))
    clock.advance(milliseconds=1)
    later = make_link(clock, expires_at=clock() + timedelta(days=1))
    clock.advance(milliseconds=1)
    foreign = make_link(clock, org_id="other", expires_at=clock() + timedelta(minutes=5))
    clock.advance(milliseconds=1)
    gone = make_link(clock, expires_at=clock() + timedelta(minutes=1))
    for link in (soon, later, foreign, gone):
        await storage.insert_link(link)
    clock.advance(minutes=5)
    assert [x.id for x in await storage.expire_due_links(clock(), 1)] == [gone.id]
    # Not stored as expired yet, but a read as of now counts it as expired.
    expired = LinkFilter(status=LinkStatus.EXPIRED, as_of=clock())
    pending = LinkFilter(status=LinkStatus.PENDING, as_of=clock())
    assert [x.id for x in (await storage.list_links("org-1", expired, Window(10))).items] == [
        gone.id,
        soon.id,
    ]
    assert [x.id for x in (await storage.list_links("org-1", pending, Window(10))).items] == [
        later.id
    ]
    # Both parts (stored expired, pending past due) page as one list.
    walked = [
        (await storage.list_links("org-1", expired, window)).items
        for window in (
            Window(1, offset=1),
            Window(1, after=(gone.created_at, gone.id)),
            Window(1, before=(soon.created_at, soon.id)),
        )
    ]
    assert [[x.id for x in items] for items in walked] == [[soon.id], [soon.id], [gone.id]]
    first = await storage.list_links("org-1", expired, Window(1))
    assert (first.has_more, first.total) == (True, 2)
    stored = LinkFilter(status=LinkStatus.EXPIRED)
    assert pair(await storage.list_links("org-1", stored, Window(10)))[1] == 1
    assert {x.id for x in await storage.expire_due_links(clock(), 10)} == {soon.id, foreign.id}
    assert await storage.expire_due_links(clock(), 10) == []
    got = await storage.get_link(soon.id)
    assert got is not None and got.status is LinkStatus.EXPIRED
    assert [x.id for x in (await storage.list_links("org-1", stored, Window(10))).items] == [
        gone.id,
        soon.id,
    ]


async def test_fifty_concurrent_creates_all_land(storage: Storage, clock: FakeClock) -> None:
    links = [make_link(clock, name=f"link {i}") for i in range(50)]
    async with anyio.create_task_group() as tg:
        for link in links:
            tg.start_soon(storage.insert_link, link)
    stored, total = pair(await storage.list_links("org-1", LinkFilter(), Window(100)))
    assert total == 50
    assert {link.id for link in stored} == {link.id for link in links}


async def test_a_duplicate_among_concurrent_creates_fails_alone(
    storage: Storage, clock: FakeClock
) -> None:
    """Concurrent creates may reach the store as one batch: each keeps its own outcome."""
    existing = make_link(clock, name="existing")
    await storage.insert_link(existing)
    fresh = [make_link(clock, name=f"link {i}") for i in range(10)]
    outcomes: dict[str, str] = {}

    async def insert(link: OnboardingLink, label: str) -> None:
        try:
            await storage.insert_link(link)
        except DuplicateError:
            outcomes[label] = "duplicate"
        else:
            outcomes[label] = "ok"

    async with anyio.create_task_group() as tg:
        for i, link in enumerate(fresh[:5]):
            tg.start_soon(insert, link, f"fresh {i}")
        tg.start_soon(insert, dataclasses.replace(existing, name="again"), "twin")
        for i, link in enumerate(fresh[5:], start=5):
            tg.start_soon(insert, link, f"fresh {i}")
    assert outcomes.pop("twin") == "duplicate"
    assert set(outcomes.values()) == {"ok"} and len(outcomes) == 10
    _, total = pair(await storage.list_links("org-1", LinkFilter(), Window(100)))
    assert total == 11
    kept = await storage.get_link(existing.id)
    assert kept is not None and kept.name == "existing"


@pytest.mark.parametrize("rounds", [20])
async def test_delete_racing_completion_has_one_winner(
    storage: Storage, clock: FakeClock, rounds: int
) -> None:
    pending = LinkCondition(statuses={LinkStatus.PENDING})
    for _ in range(rounds):
        link = make_link(clock)
        await storage.insert_link(link)
        winners: list[str] = []

        async def change(
            status: LinkStatus, link_id: str = link.id, winners: list[str] = winners
        ) -> None:
            if await storage.update_link("org-1", link_id, pending, {"status": status}):
                winners.append(status.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(change, LinkStatus.DELETED)
            tg.start_soon(change, LinkStatus.COMPLETED)
            tg.start_soon(change, LinkStatus.COMPLETED)
        assert len(winners) == 1
        stored = await storage.get_link(link.id)
        assert stored is not None and stored.status.value == winners[0]


async def test_idempotency_claims(storage: Storage, clock: FakeClock) -> None:
    def record(fingerprint: str = "f1") -> IdempotencyRecord:
        return IdempotencyRecord(
            org_id="o1",
            key="k",
            fingerprint=fingerprint,
            created_at=clock(),
            expires_at=clock() + timedelta(hours=24),
        )

    assert await storage.claim_idempotency(record()) is None
    held = await storage.claim_idempotency(record("f2"))
    assert held is not None and held.fingerprint == "f1" and held.status_code is None
    await storage.complete_idempotency("o1", "k", 201, b'{"data":1}')
    done = await storage.claim_idempotency(record())
    assert done is not None and (done.status_code, done.body) == (201, b'{"data":1}')
    # Another organisation's identical key is independent.
    other = record()
    other.org_id = "o2"
    assert await storage.claim_idempotency(other) is None
    # After 24 h the key is free again.
    clock.advance(hours=24)
    assert await storage.claim_idempotency(record("f3")) is None
    await storage.release_idempotency("o1", "k")
    assert await storage.claim_idempotency(record("f4")) is None


async def test_concurrent_idempotency_claims_have_one_winner(
    storage: Storage, clock: FakeClock
) -> None:
    wins: list[int] = []

    async def claim(i: int) -> None:
        rec = IdempotencyRecord("o1", "race", f"f{i}", clock(), clock() + timedelta(hours=1))
        if await storage.claim_idempotency(rec) is None:
            wins.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(claim, i)
    assert len(wins) == 1


def make_completion(
    clock: FakeClock, link: OnboardingLink, claim_id: str, *, meta_phone: str = "106540352242922"
) -> Completion:
    now = clock()
    waba = Waba(
        id=str(uuid.uuid4()),
        org_id=link.org_id,
        meta_waba_id="524126980791429",
        access_token_enc="v1.k.token",
        created_at=now,
        updated_at=now,
    )
    phone = Phone(
        id=str(uuid.uuid4()),
        org_id=link.org_id,
        waba_id=waba.id,
        meta_waba_id="524126980791429",
        meta_phone_number_id=meta_phone,
        status=PhoneStatus.CONNECTED,
        is_registered=True,
        onboarding_link_id=link.id,
        created_at=now,
        updated_at=now,
        phone_number="+15550783881",
        pin_enc="v1.k.pin",
    )
    return Completion(
        org_id=link.org_id,
        link_id=link.id,
        claim_id=claim_id,
        waba=waba,
        phone=phone,
        link_changes={
            "status": LinkStatus.COMPLETED,
            "completed_at": now,
            "phone_number": "+15550783881",
            "is_phone_registered": True,
            "claim_id": None,
            "claimed_until": None,
        },
    )


async def claim(storage: Storage, clock: FakeClock, link: OnboardingLink, claim_id: str) -> bool:
    now = clock()
    got = await storage.update_link(
        link.org_id,
        link.id,
        LinkCondition(statuses={LinkStatus.PENDING}, unexpired_at=now, unclaimed_at=now),
        {"claim_id": claim_id, "claimed_until": now + timedelta(seconds=60)},
    )
    return got is not None


async def test_claims_are_exclusive_and_lapse(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    assert not await claim(storage, clock, link, "b")
    clock.advance(seconds=60)
    assert await claim(storage, clock, link, "b")
    # "a" lost its claim: its completion writes nothing at all.
    assert await storage.complete_link(make_completion(clock, link, "a")) is None
    assert pair(await storage.list_phones(link.org_id, Window(10), livemode=True)) == ([], 0)
    assert await storage.find_phone_by_meta_id(link.org_id, "106540352242922") is None


async def test_complete_link_writes_everything(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    completion = make_completion(clock, link, "a")
    done = await storage.complete_link(completion)
    assert done is not None and done.phone is not None and completion.phone is not None
    assert done.link.status is LinkStatus.COMPLETED and done.link.claim_id is None
    assert done.link.phone_number_id == done.phone.id == completion.phone.id
    assert done.link.waba_id == done.waba.id == done.phone.waba_id
    assert await storage.get_link(link.id) == done.link
    assert await storage.get_phone(done.phone.id) == done.phone
    assert await storage.get_waba(done.waba.id) == done.waba
    assert await storage.find_phone_by_meta_id(link.org_id, "106540352242922") == done.phone
    # Completed once: a second completion with the same claim writes nothing.
    assert await storage.complete_link(completion) is None

    # The same number reconnected through another link keeps its phone and WABA records.
    clock.advance(seconds=1)
    again = make_link(clock)
    await storage.insert_link(again)
    assert await claim(storage, clock, again, "c")
    second = await storage.complete_link(make_completion(clock, again, "c"))
    assert second is not None and second.phone is not None
    assert second.phone.id == done.phone.id and second.waba.id == done.waba.id
    assert second.phone.created_at == done.phone.created_at
    assert second.phone.onboarding_link_id == again.id
    phones, total = pair(await storage.list_phones(link.org_id, Window(10), livemode=True))
    assert total == 1 and phones[0].id == done.phone.id
    other_org, total = pair(await storage.list_phones("other", Window(10), livemode=True))
    assert (other_org, total) == ([], 0)


async def test_concurrent_completions_one_winner(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    claimed: list[str] = []

    async def attempt(name: str) -> None:
        if await claim(storage, clock, link, name):
            claimed.append(name)

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(attempt, f"c{i}")
    assert len(claimed) == 1
    results: list[Completed | None] = []

    async def complete(name: str) -> None:
        results.append(await storage.complete_link(make_completion(clock, link, name)))

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(complete, f"c{i}")
    assert sum(r is not None for r in results) == 1
    assert (pair(await storage.list_phones(link.org_id, Window(10), livemode=True)))[1] == 1


async def test_customer_keys_that_look_like_markers_round_trip(
    storage: Storage, clock: FakeClock
) -> None:
    # "$date"/"$bytes" are how SQLite stores our datetimes and bytes; a customer's value
    # of that shape stays theirs. (The API refuses "$" keys; the store must not depend on it.)
    link = make_link(clock, prefill={"business": {"note": {"$date": "1", "$bytes": "x"}}})
    if not isinstance(storage, MongoStorage):  # MongoDB itself refuses "$" keys in documents
        await storage.insert_link(link)
        assert await storage.get_link(link.id) == link


async def test_expiry_leaves_claimed_links_to_their_holder(
    storage: Storage, clock: FakeClock
) -> None:
    link = make_link(clock, expires_at=clock() + timedelta(seconds=30))
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")  # leased for 60 s
    clock.advance(seconds=40)  # expired while being completed
    assert await storage.expire_due_links(clock(), 10) == []
    done = await storage.complete_link(make_completion(clock, link, "a"))
    assert done is not None and done.link.status is LinkStatus.COMPLETED


def _event(clock: FakeClock, org_id: str, kind: str) -> tuple[Event, list[Delivery]]:
    event = Event(
        id="evt_" + uuid.uuid4().hex, org_id=org_id, type=kind, data={"k": kind}, created_at=clock()
    )
    delivery = Delivery(
        id=str(uuid.uuid4()),
        org_id=org_id,
        event_id=event.id,
        webhook_id="wh-1",
        event_type=kind,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=clock(),
        created_at=clock(),
        updated_at=clock(),
    )
    return event, [delivery]


async def test_a_completion_without_a_number(storage: Storage, clock: FakeClock) -> None:
    """Embedded Signup v4 can finish with a WABA only: the link completes with no phone,
    and every event of the completion is written with its own deliveries."""
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    (waba_event, waba_deliveries), (other, other_deliveries) = (
        _event(clock, link.org_id, "waba.connected"),
        _event(clock, link.org_id, "phone_number.connected"),
    )
    completion = dataclasses.replace(
        make_completion(clock, link, "a"),
        phone=None,
        events=[waba_event, other],
        deliveries=[*waba_deliveries, *other_deliveries],
    )
    done = await storage.complete_link(completion)
    assert done is not None and done.phone is None
    assert done.link.phone_number_id is None and done.link.waba_id == done.waba.id
    assert pair(await storage.list_phones(link.org_id, Window(10), livemode=True)) == ([], 0)
    for event, deliveries in ((waba_event, waba_deliveries), (other, other_deliveries)):
        assert await storage.get_event(event.id) == event
        assert await storage.get_delivery(deliveries[0].id) == deliveries[0]
    wabas, total = pair(await storage.list_wabas(link.org_id, Window(10), livemode=True))
    assert total == 1 and wabas == [done.waba]
    assert pair(await storage.list_wabas("other", Window(10), livemode=True)) == ([], 0)


async def test_a_number_found_later_is_recorded_once(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    done = await storage.complete_link(
        dataclasses.replace(make_completion(clock, link, "a"), phone=None)
    )
    assert done is not None
    template = make_completion(clock, link, "x").phone
    assert template is not None
    phone = dataclasses.replace(
        template,
        id=str(uuid.uuid4()),
        waba_id=done.waba.id,
        meta_phone_number_id="106540352242999",
    )
    event, deliveries = _event(clock, link.org_id, "phone_number.connected")
    assert await storage.insert_phone(phone, event, deliveries)
    assert await storage.get_phone(phone.id) == phone
    assert await storage.get_event(event.id) == event
    # The same Meta number again (a second sync, or a race): nothing more is written.
    twin = dataclasses.replace(phone, id=str(uuid.uuid4()))
    event2, deliveries2 = _event(clock, link.org_id, "phone_number.connected")
    assert not await storage.insert_phone(twin, event2, deliveries2)
    assert await storage.get_phone(twin.id) is None
    assert await storage.get_event(event2.id) is None
    assert [p.id for p in await storage.phones_of_wabas([done.waba.id])] == [phone.id]
    assert await storage.phones_of_wabas(["nope"]) == []


async def test_update_phone_is_conditional_and_carries_its_event(
    storage: Storage, clock: FakeClock
) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    base = make_completion(clock, link, "a")
    assert base.phone is not None
    pending = dataclasses.replace(
        base.phone, status=PhoneStatus.PENDING_VERIFICATION, is_registered=False
    )
    done = await storage.complete_link(dataclasses.replace(base, phone=pending))
    assert done is not None and done.phone is not None
    event, deliveries = _event(clock, link.org_id, "phone_number.updated")
    changes = {"status": PhoneStatus.CONNECTED, "is_registered": True}
    wrong = await storage.update_phone(
        done.phone.id, changes, statuses={PhoneStatus.REGISTRATION_FAILED}, event=event
    )
    assert wrong is None and await storage.get_event(event.id) is None
    updated = await storage.update_phone(
        done.phone.id,
        changes,
        statuses={PhoneStatus.PENDING_VERIFICATION},
        event=event,
        deliveries=deliveries,
    )
    assert updated is not None and updated.status is PhoneStatus.CONNECTED
    assert updated.is_registered and await storage.get_phone(done.phone.id) == updated
    assert await storage.get_event(event.id) == event
    assert await storage.get_delivery(deliveries[0].id) == deliveries[0]
    # Only once: the condition no longer holds.
    again = await storage.update_phone(
        done.phone.id, changes, statuses={PhoneStatus.PENDING_VERIFICATION}
    )
    assert again is None
    assert await storage.update_phone("missing", changes) is None


async def test_expiry_across_organisations(storage: Storage, clock: FakeClock) -> None:
    links = [
        make_link(clock, org_id=org, expires_at=clock() + timedelta(minutes=5))
        for org in ("org-1", "org-2", "org-3")
    ]
    for link in links:
        await storage.insert_link(link)
    assert await storage.expire_due_links(clock(), 10) == []
    clock.advance(minutes=5)
    first = await storage.expire_due_links(clock(), 2)
    rest = await storage.expire_due_links(clock(), 10)
    assert len(first) == 2 and len(rest) == 1
    assert {x.id for x in first + rest} == {x.id for x in links}
    assert all(x.status is LinkStatus.EXPIRED for x in first + rest)
    assert await storage.expire_due_links(clock(), 10) == []


async def test_grants_and_session_reports(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    report = {"event": "FINISH", "waba_id": "524126980791429", "at": clock()}
    assert await storage.update_link(
        link.org_id,
        link.id,
        LinkCondition(statuses={LinkStatus.PENDING}),
        {"session_report": report},
    )
    (found,) = await storage.pending_links_by_session_waba("524126980791429")
    assert found.id == link.id and await storage.pending_links_by_session_waba("1") == []

    grant = PartnerGrant(
        id="524126980791429", owner_business_id="2729063490586005", event="PARTNER_ADDED",
        received_at=clock(),
    )  # fmt: skip
    await storage.put_grant(grant)
    assert await storage.open_grants(clock(), 10) == [grant]
    later = clock() + timedelta(seconds=30)
    await storage.update_grant(grant.id, {"attempts": 1, "retry_at": later})
    assert await storage.open_grants(clock(), 10) == []
    (retried,) = await storage.open_grants(later, 10)
    assert retried.attempts == 1
    await storage.update_grant(grant.id, {"closed_at": later, "outcome": "recovered"})
    assert await storage.open_grants(later, 10) == []
    await storage.put_grant(grant)  # a new PARTNER_ADDED reopens it
    assert await storage.open_grants(clock(), 10) == [grant]


async def test_waba_by_meta_id_and_update(storage: Storage, clock: FakeClock) -> None:
    link = make_link(clock)
    await storage.insert_link(link)
    assert await claim(storage, clock, link, "a")
    done = await storage.complete_link(make_completion(clock, link, "a"))
    assert done is not None
    (waba,) = await storage.wabas_by_meta_id("524126980791429")
    assert waba.id == done.waba.id and await storage.wabas_by_meta_id("1") == []
    event, deliveries = _event(clock, link.org_id, "waba.disconnected")
    updated = await storage.update_waba(
        waba.id, {"status": "disconnected"}, event=event, deliveries=deliveries
    )
    assert updated is not None and updated.status == "disconnected"
    assert await storage.get_waba(waba.id) == updated
    assert await storage.get_event(event.id) == event
    assert await storage.update_waba("missing", {"status": "x"}) is None


def _webhook(clock: FakeClock, **fields: Any) -> OutgoingWebhook:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "org_id": "org-1",
        "url": "https://example.com/hook",
        "secret_enc": "v1.k.current",
        "events": ["phone_number.connected"],
        "status": WebhookStatus.ACTIVE,
        "created_at": clock(),
        "updated_at": clock(),
    }
    values.update(fields)
    return OutgoingWebhook(**values)


async def test_webhook_secret_rotation_round_trips(storage: Storage, clock: FakeClock) -> None:
    before = _webhook(clock)  # as written before rotation existed: no previous secret
    await storage.insert_webhook(before)
    assert await storage.get_webhook(before.id) == before
    assert before.previous_secret_enc is None and before.previous_secret_expires_at is None
    expires = clock() + timedelta(hours=24)
    rotation = {
        "secret_enc": "v1.k.new",
        "previous_secret_enc": "v1.k.current",
        "previous_secret_expires_at": expires,
    }
    rotated = await storage.update_webhook(
        "org-1", before.id, rotation, expect_secret_enc="v1.k.current"
    )
    assert rotated is not None and rotated == await storage.get_webhook(before.id)
    assert rotated.secret_enc == "v1.k.new" and rotated.previous_secret_enc == "v1.k.current"
    assert rotated.previous_secret_expires_at == expires
    assert rotated.signing_secrets_enc(clock()) == ["v1.k.new", "v1.k.current"]
    assert rotated.signing_secrets_enc(expires) == ["v1.k.new"]
    # A rotation that read the old secret lost the race: nothing is written.
    stale = {"secret_enc": "v1.k.other", "previous_secret_enc": "v1.k.current"}
    assert (
        await storage.update_webhook("org-1", before.id, stale, expect_secret_enc="v1.k.current")
        is None
    )
    assert await storage.get_webhook(before.id) == rotated
    # Without the condition (a PATCH), the rotation fields stay as they are.
    patched = await storage.update_webhook("org-1", before.id, {"url": "https://example.com/2"})
    assert patched is not None and patched.previous_secret_expires_at == expires
    assert (
        await storage.update_webhook("org-2", before.id, {}, expect_secret_enc="v1.k.new") is None
    )


async def test_concurrent_webhook_rotations_one_wins(storage: Storage, clock: FakeClock) -> None:
    webhook = _webhook(clock)
    await storage.insert_webhook(webhook)
    won: list[str] = []

    async def rotate(i: int) -> None:
        changes = {"secret_enc": f"v1.k.{i}", "previous_secret_enc": webhook.secret_enc}
        if await storage.update_webhook(
            webhook.org_id, webhook.id, changes, expect_secret_enc=webhook.secret_enc
        ):
            won.append(f"v1.k.{i}")

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(rotate, i)
    stored = await storage.get_webhook(webhook.id)
    assert stored is not None and won == [stored.secret_enc]
