"""Update links (``type: "update"``), server side, on every store against the fake Meta over
real HTTP: the create rules and who may name what, the steps a number's state calls for,
the reconnection after PARTNER_REMOVED (one ``phone_number.updated``, health back), a
different WABA refused with nothing recorded, a WABA-only signup adding its number, the
profile sent with only what changed, and exactly one completion. The page itself is
driven in tests/browser/test_update_links.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from edge_onboard.api.auth import create_key
from edge_onboard.meta.sandbox import SYSTEM_USER_TOKEN, SandboxMeta
from edge_onboard.storage import Storage
from tests.conftest import FakeClock
from tests.onboarding.test_recovery import World, _world

pytestmark = pytest.mark.anyio
RETURN = "https://app.example.com/done"


@pytest.fixture
async def world(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[World]:
    async for w in _world(storage, clock, meta_over_http):
        yield w


async def connected(world: World, scenario: str = "ok") -> tuple[dict[str, Any], dict[str, Any]]:
    """A number connected by an onboarding link: the link, and Meta's session data."""
    link = await world.link(externalId="c1")
    session = world.fake.finish(scenario)
    data = session["data"]
    body = {"code": session["code"], "wabaId": data["waba_id"], "event": session["event"]}
    if "phone_number_id" in data:
        body["phoneNumberId"] = data["phone_number_id"]
    done = await world.client.post(f"/signup/{link['id']}/callback", json=body)
    assert done.status_code == 200, done.text
    return await world.get(f"/v1/onboarding-links/{link['id']}"), data


async def removed(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """A connected number whose business then took the app's access back."""
    link, data = await connected(world)
    assert world.fake.remove_access(data["waba_id"])
    assert await world.meta_webhooks() == 1
    phone = await world.get(f"/v1/phones/{link['phoneNumberId']}")
    assert phone["status"] == "disconnected"
    return link, data


async def start(world: World, link_id: str) -> httpx.Response:
    return await world.client.post(f"/signup/{link_id}/update", json={})


async def plan(world: World, link_id: str) -> dict[str, Any]:
    answer = await start(world, link_id)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def signup_again(
    world: World, link_id: str, waba_id: str, business_id: str, scenario: str = "ok"
) -> httpx.Response:
    """The business signs up again in Meta's popup, picking its account (the fake's)."""
    session = world.fake.finish_existing(scenario, waba_id, business_id)
    assert session is not None
    data = session["data"]
    body = {"code": session["code"], "wabaId": data["waba_id"], "event": session["event"]}
    if "phone_number_id" in data:
        body["phoneNumberId"] = data["phone_number_id"]
    return await world.client.post(f"/signup/{link_id}/callback", json=body)


async def finish(
    world: World, link_id: str, token: str | None, body: dict[str, Any], **headers: str
) -> httpx.Response:
    sent = {**({"X-Signup-Pass": token} if token is not None else {}), **headers}
    return await world.client.post(f"/signup/{link_id}/update/finish", json=body, headers=sent)


async def count(world: World, event: str) -> int:
    return (await world.events()).count(event)


async def test_the_create_rules_and_who_may_name_what(
    world: World, storage: Storage, clock: FakeClock
) -> None:
    link, _ = await connected(world)
    phone_id = link["phoneNumberId"]
    plain = await world.link(type=None)  # null is "not given": an onboarding link
    assert plain["type"] == "onboarding" and plain["result"] is None

    async def create(body: dict[str, Any], auth: dict[str, str] | None = None) -> httpx.Response:
        return await world.client.post(
            "/v1/onboarding-links", json={"name": "Acme", **body}, headers=auth or world.auth
        )

    made = await create({"type": "update", "phoneNumberId": phone_id, "redirectUrl": RETURN})
    assert made.status_code == 201, made.text
    view = made.json()["data"]
    assert view["type"] == "update" and view["status"] == "pending"
    assert view["phoneNumberId"] == phone_id and view["wabaId"] == link["wabaId"]
    assert view["phoneNumber"] == link["phoneNumber"] and view["isPhoneRegistered"] is None
    assert view["result"] == {"changes": [], "profileFields": []}

    for body, param, code in (
        ({"type": "refresh"}, "type", "parameter_invalid"),
        ({"type": "update"}, "phoneNumberId", "parameter_missing"),
        ({"type": "update", "phoneNumberId": phone_id, "wabaId": link["wabaId"]}, "wabaId", None),
        ({"phoneNumberId": phone_id}, "phoneNumberId", None),
        ({"type": "onboarding", "wabaId": link["wabaId"]}, "wabaId", None),
        ({"type": "update", "phoneNumberId": 7}, "phoneNumberId", None),
        # A WABA with numbers: the number is what an update names.
        ({"type": "update", "wabaId": link["wabaId"]}, "wabaId", None),
        (
            {
                "type": "update",
                "phoneNumberId": phone_id,
                "webhookUrl": "http://127.0.0.1:9/h",
                "webhookEvents": ["onboarding_link.completed"],
            },
            "webhookUrl",
            None,
        ),
    ):
        refused = await create(body)
        assert refused.status_code == 400, (body, refused.text)
        error = refused.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, body
        if code is not None:
            assert error["code"] == code

    # Another organisation's number, the other mode's, a malformed or unknown id: 404,
    # the same answer as for any foreign id (nothing says it exists).
    _, _, other = await create_key(storage, "globex", clock())
    _, _, test_key = await create_key(storage, "acme", clock(), livemode=False)
    for body, auth in (
        ({"type": "update", "phoneNumberId": phone_id}, {"Authorization": f"Bearer {other}"}),
        ({"type": "update", "phoneNumberId": phone_id}, {"Authorization": f"Bearer {test_key}"}),
        ({"type": "update", "wabaId": link["wabaId"]}, {"Authorization": f"Bearer {test_key}"}),
        ({"type": "update", "phoneNumberId": "nope"}, None),
        ({"type": "update", "wabaId": "00000000-0000-4000-8000-000000000000"}, None),
    ):
        missing = await create(body, auth)
        assert missing.status_code == 404, (body, missing.text)
        assert missing.json()["error"]["code"] == "resource_missing"

    # Idempotency as for any link: the same key and body replay the same link.
    key = {"Idempotency-Key": "upd-1", **world.auth}
    body = {"name": "Acme", "type": "update", "phoneNumberId": phone_id}
    first = await world.client.post("/v1/onboarding-links", json=body, headers=key)
    again = await world.client.post("/v1/onboarding-links", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    # An onboarding link's page has no update steps.
    assert (await start(world, plain["id"])).status_code == 404


async def test_a_number_whose_access_was_removed_is_reconnected(world: World) -> None:
    link, data = await removed(world)
    phone_id = link["phoneNumberId"]
    updates_before = await count(world, "phone_number.updated")
    update = await world.link(type="update", phoneNumberId=phone_id, redirectUrl=RETURN)
    opened = await count(world, "onboarding_link.opened")
    page = await world.client.get(f"/signup/{update['id']}")
    assert page.status_code == 200 and '"update":true' in page.text
    assert await count(world, "onboarding_link.opened") == opened + 1
    first = await plan(world, update["id"])
    assert first["steps"] == ["reconnect", "profile"]
    assert first["phoneNumberMasked"].startswith("+1 ") and first["profile"] is None

    answer = await signup_again(world, update["id"], data["waba_id"], data["business_id"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success" and body["redirectUrl"] is None
    assert body["update"]["steps"] == ["profile"]
    assert body["update"]["profile"]["about"]  # Meta's profile, readable again
    # The grant is back: the number connected, one phone_number.updated, health green.
    phone = await world.get(f"/v1/phones/{phone_id}")
    assert phone["status"] == "connected" and phone["isPhoneRegistered"] is True
    assert await count(world, "phone_number.updated") == updates_before + 1
    assert await count(world, "waba.connected") == 2  # the first signup's, and now
    health = await world.get(f"/v1/phones/{phone_id}/health")
    assert health["capabilities"]["canReceiveMessages"] is True
    waba = await world.get(f"/v1/wabas/{link['wabaId']}")
    assert waba["phoneNumberIds"] == [phone_id]
    pending = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert pending["status"] == "pending"
    assert pending["result"] == {"changes": ["reconnected"], "profileFields": []}

    # The last step: only the changed field reaches Meta, then the link is completed.
    meta_phone = phone["metaPhoneNumberId"]
    posts = len(world.fake.profile_posts)
    profile = dict(body["update"]["profile"], about="Open 9-18, Mon to Sat")
    profile = {k: v for k, v in profile.items() if k != "vertical" and v is not None}
    done = await finish(world, update["id"], body["update"]["token"], {"profile": profile})
    assert done.status_code == 200, done.text
    returned = parse_qs(urlsplit(done.json()["redirectUrl"]).query)
    assert returned["status"] == ["success"] and returned["onboarding_link_id"] == [update["id"]]
    assert list(world.fake.profile_posts)[posts:] == [
        (meta_phone, {"about": "Open 9-18, Mon to Sat"})
    ]
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert completed["status"] == "completed" and completed["completedAt"]
    assert completed["result"] == {
        "changes": ["reconnected", "profile_updated"],
        "profileFields": ["about"],
    }
    assert await count(world, "phone_number.updated") == updates_before + 1
    events = await world.client.get(
        "/v1/events?type=onboarding_link.completed&limit=10", headers=world.auth
    )
    mine = [e for e in events.json()["data"] if e["data"]["onboardingLinkId"] == update["id"]]
    assert len(mine) == 1 and mine[0]["data"]["type"] == "update"
    assert mine[0]["data"]["result"] == completed["result"]
    # Used up: neither the pass, the page's steps nor a new signup changes anything now.
    again = await finish(world, update["id"], body["update"]["token"], {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "link_completed"
    assert (await start(world, update["id"])).status_code == 409
    late = await signup_again(world, update["id"], data["waba_id"], data["business_id"])
    assert late.status_code == 409 and late.json()["error"]["code"] == "link_completed"
    assert await count(world, "phone_number.updated") == updates_before + 1


async def test_another_waba_is_refused_and_nothing_is_recorded(world: World) -> None:
    link, data = await removed(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    phones = await world.get("/v1/phones?limit=100")
    wabas = await world.get("/v1/wabas?limit=100")
    before = await world.events()
    # The business picks (or creates) another account in Meta's window.
    session = world.fake.finish("ok")
    other = session["data"]
    body = {"code": session["code"], "wabaId": other["waba_id"], "event": "FINISH"}
    body["phoneNumberId"] = other["phone_number_id"]
    refused = await world.client.post(f"/signup/{update['id']}/callback", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "waba_mismatch"
    # A page that lies about the WABA: Meta's grant says otherwise.
    lying = world.fake.finish("foreign_waba")
    body = {"code": lying["code"], "wabaId": data["waba_id"], "event": "FINISH"}
    refused = await world.client.post(f"/signup/{update['id']}/callback", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "waba_mismatch"
    assert await world.get("/v1/phones?limit=100") == phones
    assert await world.get("/v1/wabas?limit=100") == wabas
    after = await world.events()
    assert Counter(after) - Counter(before) == Counter({"onboarding_link.failed": 2})
    pending = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert pending["status"] == "pending" and pending["lastError"]["code"] == "waba_mismatch"
    assert pending["result"]["changes"] == []
    # The end-user may try again, with the right account.
    retry = await signup_again(world, update["id"], data["waba_id"], data["business_id"])
    assert retry.status_code == 200, retry.text
    assert (await world.get(f"/v1/phones/{link['phoneNumberId']}"))["status"] == "connected"


async def test_a_waba_only_signup_adds_its_number_then_verifies_it(world: World) -> None:
    link, data = await connected(world, "only_waba")
    assert link["phoneNumberId"] is None
    update = await world.link(type="update", wabaId=link["wabaId"])
    assert update["phoneNumberId"] is None and update["wabaId"] == link["wabaId"]
    assert (await plan(world, update["id"]))["steps"] == ["add_number", "profile"]
    answer = await signup_again(
        world, update["id"], data["waba_id"], data["business_id"], "unverified"
    )
    assert answer.status_code == 200, answer.text
    following = answer.json()["update"]
    assert following["steps"] == ["verify", "profile"]
    token = following["verification"]["token"]
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert shown["phoneNumberId"] and shown["result"]["changes"] == ["phone_added"]
    assert await count(world, "phone_number.connected") == 1
    code = await world.client.post(
        f"/signup/{update['id']}/verification/code",
        json={"method": "sms"},
        headers={"X-Signup-Pass": token},
    )
    assert code.status_code == 200, code.text
    verified = await world.client.post(
        f"/signup/{update['id']}/verification/verify",
        json={"code": "000000"},
        headers={"X-Signup-Pass": token},
    )
    assert verified.status_code == 200, verified.text
    last = await plan(world, update["id"])
    assert last["steps"] == ["profile"]
    posts = len(world.fake.profile_posts)
    done = await finish(world, update["id"], last["token"], {})
    assert done.status_code == 200, done.text
    assert len(world.fake.profile_posts) == posts  # nothing changed: Meta is not called
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert completed["result"] == {"changes": ["phone_added", "verified"], "profileFields": []}
    phone = await world.get(f"/v1/phones/{completed['phoneNumberId']}")
    assert phone["status"] == "connected" and phone["wabaId"] == link["wabaId"]


async def test_the_profile_step_sends_only_what_differs_and_checks_it_first(
    world: World,
) -> None:
    link, _ = await connected(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    first = await plan(world, update["id"])
    assert first["steps"] == ["profile"] and first["displayName"] == "Sandbox Business"
    token = first["token"]
    # Meta's limits, checked before Meta is called: a 400 naming the field; the link is
    # left as it was (pending, unclaimed), so the end-user corrects it and goes on (within
    # the link's budget of five tries at once, as the verification step's).
    for profile, param in (
        ({"about": "x" * 140}, "about"),
        ({"email": "not an address"}, "email"),
        ({"colour": "red"}, "colour"),
    ):
        bad = await finish(world, update["id"], token, {"profile": profile})
        assert bad.status_code == 400, (profile, bad.text)
        assert bad.json()["status"] == "error" and bad.json()["error"]["param"] == param
    unknown = await finish(world, update["id"], token, {"profile": {}, "extra": 1})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_parameter"
    posts = len(world.fake.profile_posts)
    same = first["profile"]["about"]
    changed = {"about": same, "description": "Fresh bread daily", "websites": []}
    done = await finish(world, update["id"], token, {"profile": changed})
    assert done.status_code == 200, done.text
    meta_id = (await world.get(f"/v1/phones/{link['phoneNumberId']}"))["metaPhoneNumberId"]
    # "about" was Meta's already, and no websites is what Meta has: one field sent.
    assert list(world.fake.profile_posts)[posts:] == [
        (meta_id, {"description": "Fresh bread daily"})
    ]


async def test_the_pass_is_for_the_pending_link_and_its_page_only(
    world: World, clock: FakeClock
) -> None:
    link, _ = await connected(world)
    one = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    two = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    token = (await plan(world, one["id"]))["token"]
    other = (await plan(world, two["id"]))["token"]
    for link_id, given in (
        (two["id"], token),  # another link's pass
        (one["id"], None),
        (one["id"], "9999999999." + token.split(".", 1)[1]),  # a later expiry, same MAC
        (one["id"], other),
    ):
        refused = await finish(world, link_id, given, {})
        assert refused.status_code == 403, (link_id, given)
        assert refused.json()["error"]["code"] == "update_pass_invalid"
    foreign = await finish(world, one["id"], token, {}, Origin="https://evil.example")
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_origin"
    cross = await world.client.post(
        f"/signup/{one['id']}/update", json={}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert (await start(world, "00000000-0000-4000-8000-000000000000")).status_code == 404
    # A deleted link: gone (the page then sends the end-user to refreshUrl).
    three = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    three_token = (await plan(world, three["id"]))["token"]
    deleted = await world.client.delete(f"/v1/onboarding-links/{three['id']}", headers=world.auth)
    assert deleted.status_code == 200
    gone = await finish(world, three["id"], three_token, {})
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "link_deleted"
    # Past its expiry the link is worth nothing, pass or not.
    clock.advance(days=8)
    late = await finish(world, one["id"], token, {})
    assert late.status_code == 410 and late.json()["error"]["code"] == "link_expired"
    assert (await start(world, one["id"])).status_code == 410


async def test_two_tabs_racing_leave_exactly_one_result(world: World) -> None:
    link, _ = await connected(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    token = (await plan(world, update["id"]))["token"]
    answers: list[httpx.Response] = []

    async def tab(about: str) -> None:
        answers.append(await finish(world, update["id"], token, {"profile": {"about": about}}))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tab, "From the first tab")
        tasks.start_soon(tab, "From the second tab")
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["error"]["code"] in {"link_completed", "completion_in_progress"}
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert completed["status"] == "completed"
    assert completed["result"]["profileFields"] == ["about"]
    events = await world.client.get(
        "/v1/events?type=onboarding_link.completed&limit=10", headers=world.auth
    )
    ids = [e["data"]["onboardingLinkId"] for e in events.json()["data"]]
    assert ids.count(update["id"]) == 1


async def test_two_tabs_reconnecting_at_once_reconnect_once(world: World) -> None:
    link, data = await removed(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    updates_before = await count(world, "phone_number.updated")
    answers: list[httpx.Response] = []

    async def tab() -> None:
        answers.append(
            await signup_again(world, update["id"], data["waba_id"], data["business_id"])
        )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tab)
        tasks.start_soon(tab)
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and codes[1] == 409, [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["error"]["code"] in {"completion_in_progress", "update_not_needed"}
    assert await count(world, "phone_number.updated") == updates_before + 1
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert shown["result"]["changes"] == ["reconnected"]


@pytest.fixture
async def recovering(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[World]:
    async for w in _world(
        storage, clock, meta_over_http, EDGE_META_SYSTEM_USER_TOKEN=SYSTEM_USER_TOKEN
    ):
        yield w


async def test_a_closed_tab_of_an_update_link_is_recovered_as_an_update(
    recovering: World,
) -> None:
    """The page reported Meta's session and closed before the code: Meta's PARTNER_ADDED
    for that WABA restores the grant through the update link's own steps (never an
    onboarding completion), and the link stays open for its profile step."""
    world = recovering
    link, data = await removed(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    report = {"event": "FINISH", "wabaId": data["waba_id"], "businessId": data["business_id"]}
    recorded = await world.client.post(f"/signup/{update['id']}/session", json=report)
    assert recorded.status_code == 202, recorded.text
    world.fake.account_update(
        data["business_id"], "PARTNER_ADDED", data["waba_id"], data["business_id"]
    )
    assert await world.meta_webhooks() == 1
    world.clock.advance(seconds=121)
    assert await world.reconcile() is not None
    phone = await world.get(f"/v1/phones/{link['phoneNumberId']}")
    assert phone["status"] == "connected"
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert shown["status"] == "pending" and shown["result"]["changes"] == ["reconnected"]
    assert (await plan(world, update["id"]))["steps"] == ["profile"]


async def test_a_code_left_for_later_returns_with_verification_pending(world: World) -> None:
    link, data = await connected(world, "only_waba")
    update = await world.link(type="update", wabaId=link["wabaId"], redirectUrl=RETURN)
    answer = await signup_again(
        world, update["id"], data["waba_id"], data["business_id"], "unverified"
    )
    assert answer.status_code == 200, answer.text
    # "Do it later": the page goes on to the profile and finishes.
    done = await finish(world, update["id"], answer.json()["update"]["token"], {})
    assert done.status_code == 200, done.text
    returned = parse_qs(urlsplit(done.json()["redirectUrl"]).query)
    assert returned["status"] == ["success"] and returned["verification"] == ["pending"]
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert completed["result"]["changes"] == ["phone_added"]
