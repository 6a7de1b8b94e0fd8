"""The events API over HTTP: GET /v1/events (filters, cursors), GET /v1/events/{id} (the
delivered bytes), retention, and POST /v1/outgoing-webhooks/{id}/recover."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.core.clock import isoformat
from edge_onboard.storage import DeliveryStatus, Event, Storage
from edge_onboard.webhooks import event_log
from edge_onboard.webhooks.delivery import SCHEDULE, Sender
from tests.api.test_links_api import assert_error
from tests.conftest import FakeClock, make_settings, running_app
from tests.webhooks.test_delivery import Harness, Receiver

pytestmark = pytest.mark.anyio

KINDS = ("phone_number.connected", "message.received", "message.sent", "waba.updated")


@pytest.fixture
async def hooks(storage: Storage) -> AsyncIterator[Harness]:
    clock = FakeClock(datetime.now(UTC))
    receiver = Receiver()
    settings = make_settings(EDGE_WEBHOOK_ALLOW_PRIVATE="1", EDGE_EVENT_RETENTION_DAYS="30")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        services.engine._jitter = lambda: 0.5
        harness = Harness(client, services, clock, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        harness.auth = {"Authorization": f"Bearer {key}"}
        yield harness


async def org_id(hooks: Harness) -> str:
    response = await hooks.client.get("/v1/organization", headers=hooks.auth)
    assert response.status_code == 200, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def emit_many(hooks: Harness, count: int) -> list[str]:
    """``count`` events of the KINDS in turn, a second apart; their ids, oldest first."""
    org = await org_id(hooks)
    ids = []
    for i in range(count):
        event = await hooks.services.webhooks.emit(
            org, KINDS[i % len(KINDS)], {"n": i}, livemode=True
        )
        assert event is not None
        ids.append(event.id)
        hooks.clock.advance(seconds=1)
    return ids


async def get(hooks: Harness, path: str, **params: Any) -> httpx.Response:
    return await hooks.client.get(path, params=params, headers=hooks.auth)


async def listed(hooks: Harness, **params: Any) -> list[str]:
    response = await get(hooks, "/v1/events", **params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_an_event_is_served_as_the_bytes_its_webhook_carried(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/in", list(KINDS))
    ids = await emit_many(hooks, 4)
    assert await hooks.drain() == 4
    requests = hooks.receiver.to("127.0.0.1/in")
    assert sorted(r.headers["webhook-id"] for r in requests) == sorted(ids)
    for request in requests:
        response = await get(hooks, f"/v1/events/{request.headers['webhook-id']}")
        assert response.status_code == 200
        assert response.content == b'{"data":' + request.content + b"}"
    deliveries = await hooks.deliveries(hook["id"])
    assert sorted(d["eventId"] for d in deliveries) == sorted(ids)
    # The list shows the same objects, newest first.
    response = await get(hooks, "/v1/events")
    body = response.json()
    assert [e["id"] for e in body["data"]] == ids[::-1]
    assert body["data"][0] == (await get(hooks, f"/v1/events/{ids[-1]}")).json()["data"]
    assert body["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": 4,
        "totalIsEstimate": False,
        "hasMore": False,
        "startingAfter": ids[0],
        "endingBefore": ids[-1],
    }


async def test_type_patterns_and_the_time_range(hooks: Harness) -> None:
    ids = await emit_many(hooks, 12)
    newest_first = ids[::-1]

    def of(*kinds: str) -> list[str]:
        return [i for n, i in enumerate(ids) if KINDS[n % 4] in kinds][::-1]

    assert await listed(hooks, type="message.*") == of("message.received", "message.sent")
    assert await listed(hooks, type="phone_number.connected") == of("phone_number.connected")
    assert await listed(hooks, type="*.sent") == of("message.sent")
    assert await listed(hooks, type="waba.*,*.connected") == of(
        "waba.updated", "phone_number.connected"
    )
    assert await listed(hooks, type="*") == newest_first
    assert await listed(hooks, type="message.read") == []
    start = hooks.clock() - timedelta(seconds=12)  # the first event's moment
    gte, lte = isoformat(start + timedelta(seconds=3)), isoformat(start + timedelta(seconds=8))
    assert await listed(hooks, **{"created[gte]": gte, "created[lte]": lte}) == ids[3:9][::-1]
    assert await listed(hooks, **{"created[gte]": gte, "type": "message.*"}) == [
        i for i in of("message.received", "message.sent") if ids.index(i) >= 3
    ]
    # A zone other than Z is the same moment.
    plus_two = (start + timedelta(seconds=8, hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")
    assert await listed(hooks, **{"created[lte]": plus_two}) == ids[:9][::-1]


async def test_cursors_walk_both_ways(hooks: Harness) -> None:
    ids = await emit_many(hooks, 9)
    walked: list[str] = []
    params: dict[str, Any] = {"limit": 2, "type": "*.*"}
    while True:
        body = (await get(hooks, "/v1/events", **params)).json()
        walked += [e["id"] for e in body["data"]]
        if not body["pagination"]["hasMore"]:
            break
        params = {"limit": 2, "type": "*.*", "startingAfter": body["pagination"]["startingAfter"]}
    assert walked == ids[::-1]
    back: list[str] = []
    params = {"limit": 2, "endingBefore": ids[0]}
    while True:
        body = (await get(hooks, "/v1/events", **params)).json()
        back = [e["id"] for e in body["data"]] + back
        if not body["pagination"]["hasMore"]:
            break
        params = {"limit": 2, "endingBefore": body["pagination"]["endingBefore"]}
    assert back == ids[1:][::-1]
    filtered = await listed(hooks, type="message.*", startingAfter=ids[8], limit=2)
    assert filtered == [ids[6], ids[5]]


async def test_another_organisations_events_are_not_there(hooks: Harness) -> None:
    (mine,) = await emit_many(hooks, 1)
    _, _, other_key = await create_key(hooks.services.storage, "other", hooks.clock())
    other = {"Authorization": f"Bearer {other_key}"}
    response = await hooks.client.get(f"/v1/events/{mine}", headers=other)
    assert_error(response, 404, "resource_missing", "id")
    response = await hooks.client.get("/v1/events", headers=other)
    assert response.json()["data"] == []
    response = await hooks.client.get(f"/v1/events?startingAfter={mine}", headers=other)
    assert_error(response, 400, "invalid_cursor", "startingAfter")
    for bad in ("evt_" + "0" * 32, "nope", "evt_" + "x" * 300):
        assert_error(await get(hooks, f"/v1/events/{bad}"), 404, "resource_missing", "id")
    assert (await hooks.client.get(f"/v1/events/{mine}")).status_code == 401


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"type": "nope.*"}, "type", "parameter_invalid"),
        ({"type": "message.*,"}, "type", "parameter_invalid"),
        ({"type": "message.*," * 200}, "type", "parameter_invalid"),
        ({"created[gte]": "yesterday"}, "created[gte]", "parameter_invalid"),
        ({"created[lte]": "2026-11-30T12:00:00"}, "created[lte]", "parameter_invalid"),
        ({"created[lte]": "2026-02-30T12:00:00Z"}, "created[lte]", "parameter_invalid"),
        (
            {"created[gte]": "2026-11-30T12:00:00Z", "created[lte]": "2026-11-29T12:00:00Z"},
            "created[gte]",
            "parameter_invalid",
        ),
        ({"created[gt]": "2026-11-30T12:00:00Z"}, None, "unknown_parameter"),
        ({"startingAfter": "evt_" + "0" * 32}, "startingAfter", "invalid_cursor"),
        ({"limit": "0"}, "limit", "parameter_invalid"),
    ],
)
async def test_bad_list_parameters_are_400(
    hooks: Harness, params: dict[str, str], param: str | None, code: str
) -> None:
    assert_error(await get(hooks, "/v1/events", **params), 400, code, param)


async def test_events_past_retention_are_gone(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/in", list(KINDS))
    old = await emit_many(hooks, 3)
    await hooks.drain()
    hooks.clock.advance(days=29)
    (young,) = await emit_many(hooks, 1)
    await hooks.drain()
    # 30 days and half a second after the oldest: it is gone, the next one is not.
    hooks.clock.advance(days=1, seconds=-3.5)
    assert await listed(hooks) == [young, old[2], old[1]]
    assert_error(await get(hooks, f"/v1/events/{old[0]}"), 404, "resource_missing", "id")
    assert (await get(hooks, f"/v1/events/{old[1]}")).status_code == 200
    assert hooks.services.recovery is not None
    swept = await hooks.services.recovery.reconcile()
    assert swept["eventsDeleted"] == 1
    storage = hooks.services.storage
    assert await storage.get_event(old[0]) is None and await storage.get_event(old[1])
    assert sorted(d["eventId"] for d in await hooks.deliveries(hook["id"])) == sorted(
        [young, *old[1:]]
    )
    assert (await hooks.services.recovery.reconcile())["eventsDeleted"] == 0


async def fail_for_good(hooks: Harness, host_path: str, count: int) -> list[str]:
    """``count`` events whose deliveries to ``host_path`` fail every attempt."""
    hooks.receiver.script[host_path] = [500] * (count * len(SCHEDULE))
    ids = await emit_many(hooks, count)
    for delay in SCHEDULE:
        hooks.clock.advance(seconds=delay)
        await hooks.drain()
    hooks.receiver.script[host_path] = []  # the endpoint works again
    return ids


async def recover(hooks: Harness, webhook_id: str, **body: Any) -> httpx.Response:
    return await hooks.client.post(
        f"/v1/outgoing-webhooks/{webhook_id}/recover", json=body, headers=hooks.auth
    )


async def test_recover_resends_the_failed_deliveries_in_the_window(hooks: Harness) -> None:
    start = hooks.clock()
    down = await hooks.webhook("http://127.0.0.1:9/down", list(KINDS))
    await hooks.webhook("http://127.0.0.1:9/other", list(KINDS))
    hooks.receiver.script["127.0.0.1/other"] = [500] * 1000
    before = await fail_for_good(hooks, "127.0.0.1/down", 2)
    middle = hooks.clock()
    failed = await fail_for_good(hooks, "127.0.0.1/down", 3)
    until = hooks.clock()
    ok = await emit_many(hooks, 1)  # after the window, delivered
    await hooks.drain()
    hooks.receiver.requests.clear()
    for d in await hooks.deliveries(down["id"]):
        assert d["status"] == ("failed" if d["eventId"] in before + failed else "succeeded")
    assert start < middle < until

    response = await recover(hooks, down["id"], since=isoformat(middle), until=isoformat(until))
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["id"].startswith("rcv_") and data["webhookId"] == down["id"]
    assert data["since"] == isoformat(middle) and data["until"] == isoformat(until)
    assert data["status"] == "started" and data["createdAt"] == isoformat(hooks.clock())
    await hooks.drain()
    resent = hooks.receiver.to("127.0.0.1/down")
    assert sorted(r.headers["webhook-id"] for r in resent) == sorted(failed)
    assert hooks.receiver.to("127.0.0.1/other") == []
    states = {d["eventId"]: d for d in await hooks.deliveries(down["id"])}
    assert all(states[i]["status"] == "succeeded" for i in failed)
    assert all(states[i]["status"] == "failed" for i in before)
    assert states[ok[0]]["status"] == "succeeded"
    stored = await hooks.services.storage.get_deliveries([states[i]["id"] for i in failed])
    assert {d.recovery_id for d in stored} == {data["id"]}
    # Again, with no until: nothing failed in the window any more but the earlier ones.
    hooks.receiver.requests.clear()
    again = await recover(hooks, down["id"], since=isoformat(start))
    assert again.status_code == 202 and again.json()["data"]["until"] == isoformat(hooks.clock())
    await hooks.drain()
    assert sorted(r.headers["webhook-id"] for r in hooks.receiver.to("127.0.0.1/down")) == sorted(
        before
    )


async def test_racing_recoveries_send_each_event_once(hooks: Harness) -> None:
    start = hooks.clock()
    hook = await hooks.webhook("http://127.0.0.1:9/down", list(KINDS))
    failed = await fail_for_good(hooks, "127.0.0.1/down", 6)
    hooks.receiver.requests.clear()
    answers: list[httpx.Response] = []

    async def ask() -> None:
        answers.append(await recover(hooks, hook["id"], since=isoformat(start)))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(ask)
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["data"]["id"] for a in answers}) == 4
    await hooks.drain()
    resent = [r.headers["webhook-id"] for r in hooks.receiver.to("127.0.0.1/down")]
    assert sorted(resent) == sorted(failed)  # each once
    stored = await hooks.services.storage.get_deliveries(
        [d["id"] for d in await hooks.deliveries(hook["id"])]
    )
    assert all(d.status is DeliveryStatus.SUCCEEDED for d in stored)
    assert all(d.attempts == len(SCHEDULE) + 1 for d in stored)


async def test_an_idempotent_recover_starts_one_job(hooks: Harness) -> None:
    start = hooks.clock()
    hook = await hooks.webhook("http://127.0.0.1:9/down", list(KINDS))
    failed = await fail_for_good(hooks, "127.0.0.1/down", 2)
    hooks.receiver.requests.clear()
    headers = {**hooks.auth, "Idempotency-Key": "recover-1"}
    path = f"/v1/outgoing-webhooks/{hook['id']}/recover"
    first = await hooks.client.post(path, json={"since": isoformat(start)}, headers=headers)
    await hooks.drain()
    # It failed again meanwhile: a replay of the same request must not send it again.
    for d in await hooks.services.storage.get_deliveries(
        [d["id"] for d in await hooks.deliveries(hook["id"])]
    ):
        await hooks.services.storage.update_delivery(d.id, {"status": DeliveryStatus.FAILED})
    replay = await hooks.client.post(path, json={"since": isoformat(start)}, headers=headers)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    await hooks.drain()
    assert sorted(r.headers["webhook-id"] for r in hooks.receiver.to("127.0.0.1/down")) == sorted(
        failed
    )


async def test_bad_recover_requests(hooks: Harness) -> None:
    hook = await hooks.webhook("http://127.0.0.1:9/in", list(KINDS))
    now = hooks.clock()
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({}, 400, "parameter_missing", "since"),
        ({"since": None}, 400, "parameter_missing", "since"),
        ({"since": "last week"}, 400, "parameter_invalid", "since"),
        ({"since": 1764500000}, 400, "parameter_invalid", "since"),
        ({"since": isoformat(now), "until": "soon"}, 400, "parameter_invalid", "until"),
        (
            {"since": isoformat(now), "until": isoformat(now - timedelta(hours=1))},
            400,
            "parameter_invalid",
            "since",
        ),
        ({"since": isoformat(now + timedelta(hours=1))}, 400, "parameter_invalid", "since"),
        ({"since": isoformat(now - timedelta(days=31))}, 400, "parameter_invalid", "since"),
        ({"since": isoformat(now), "extra": 1}, 400, "unknown_parameter", None),
    ]
    for body, status, code, param in cases:
        response = await recover(hooks, hook["id"], **body)
        assert_error(response, status, code, param)
    since = isoformat(now - timedelta(hours=1))
    _, _, other_key = await create_key(hooks.services.storage, "other", hooks.clock())
    response = await hooks.client.post(
        f"/v1/outgoing-webhooks/{hook['id']}/recover",
        json={"since": since},
        headers={"Authorization": f"Bearer {other_key}"},
    )
    assert_error(response, 404, "resource_missing", "id")
    assert_error(await recover(hooks, "not-a-uuid", since=since), 404, "resource_missing", "id")
    response = await hooks.client.post(
        f"/v1/outgoing-webhooks/{hook['id']}/recover",
        content=b"{",
        headers={**hooks.auth, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")
    disabled = await hooks.client.patch(
        f"/v1/outgoing-webhooks/{hook['id']}", json={"status": "disabled"}, headers=hooks.auth
    )
    assert disabled.status_code == 200
    assert_error(await recover(hooks, hook["id"], since=since), 409, "webhook_disabled")


async def test_the_sweep_goes_in_bounded_batches(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    for i in range(7):
        await storage.record_event(
            Event(id=f"evt_{i:032x}", org_id="org-1", type=KINDS[0], data={}, created_at=clock()),
            [],
        )
        clock.advance(seconds=1)
    monkeypatch.setattr(event_log, "SWEEP_BATCH", 2)
    monkeypatch.setattr(event_log, "SWEEP_BATCHES", 2)
    assert await event_log.sweep_events(storage, clock()) == 4  # two batches of two
    assert await event_log.sweep_events(storage, clock()) == 3
    assert await event_log.sweep_events(storage, clock()) == 0
