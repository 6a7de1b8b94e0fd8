"""Update links at their edges, on every store against the fake Meta over real HTTP: bad
input answered with a 4xx naming it (never a 500), the page's finish refused while the
number still needs its signup, the link's connection types honoured when a number is
added, no change lost to a race, the verification routes after the link is used up or
gone, and two links for one WABA-only account."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from edge_onboard.onboarding.updates import UpdateService
from tests.onboarding.test_recovery import World
from tests.onboarding.test_update_links import (
    RETURN,
    connected,
    count,
    finish,
    plan,
    removed,
    signup_again,
    world,
)

pytestmark = pytest.mark.anyio
__all__ = ["world"]  # the fixture, imported to be used here


def error_of(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    assert body["status"] == "error" and body["redirectUrl"] is None, body
    error: dict[str, Any] = body["error"]
    return error


async def verification(
    world: World, link_id: str, route: str, token: str, body: dict[str, Any]
) -> Any:
    return await world.client.post(
        f"/signup/{link_id}/verification/{route}", json=body, headers={"X-Signup-Pass": token}
    )


async def test_a_malformed_website_is_a_400_naming_it(world: World) -> None:
    link, _ = await connected(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    token = (await plan(world, update["id"]))["token"]
    posts = len(world.fake.profile_posts)
    for sites, param in (
        (["http://[x"], "websites[0]"),
        (["https://ok.example", "http://]"], "websites[1]"),
    ):
        bad = await finish(world, update["id"], token, {"profile": {"websites": sites}})
        assert bad.status_code == 400, bad.text
        error = error_of(bad)
        assert error["code"] == "parameter_invalid" and error["param"] == param
        patched = await world.client.patch(
            f"/v1/phones/{link['phoneNumberId']}/profile",
            json={"websites": sites},
            headers=world.auth,
        )
        assert patched.status_code == 400, patched.text
        api_error = patched.json()["error"]
        assert api_error["type"] == "invalid_request_error" and api_error["param"] == param
    assert len(world.fake.profile_posts) == posts
    assert (await world.get(f"/v1/onboarding-links/{update['id']}"))["status"] == "pending"


async def test_an_unexpected_failure_answers_in_the_pages_shape(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    link, _ = await connected(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    token = (await plan(world, update["id"]))["token"]

    async def broken(self: UpdateService, *args: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(UpdateService, "finish", broken)
    caplog.set_level(logging.ERROR)
    failed = await finish(world, update["id"], token, {})
    assert failed.status_code == 500
    assert error_of(failed)["code"] == "internal_error"
    request_id = failed.headers.get("request-id")
    logged = [r.getMessage() for r in caplog.records if r.exc_info]
    assert any("update link" in m and f"request_id={request_id}" in m for m in logged), logged


async def test_a_forged_pass_with_other_digits_is_refused(world: World) -> None:
    link, data = await connected(world, "only_waba")
    update = await world.link(type="update", wabaId=link["wabaId"])
    added = await signup_again(
        world, update["id"], data["waba_id"], data["business_id"], "unverified"
    )
    assert added.status_code == 200, added.text
    # Header bytes are read as latin-1: "²", "³" and "¹" are the digits isdigit() takes.
    for forged in (b"\xb2.abc", b"1\xb3.abc", b"\xb9\xb2.abc"):
        raw = [(b"X-Signup-Pass", forged)]
        for path, code in (
            ("update/finish", "update_pass_invalid"),
            ("verification/code", "verification_pass_invalid"),
            ("verification/verify", "verification_pass_invalid"),
        ):
            refused = await world.client.post(
                f"/signup/{update['id']}/{path}", json={}, headers=raw
            )
            assert refused.status_code == 403, (forged, path, refused.text)
            assert error_of(refused)["code"] == code


async def test_a_business_app_number_is_refused_unless_the_link_allows_it(world: World) -> None:
    link, data = await connected(world, "only_waba")
    update = await world.link(type="update", wabaId=link["wabaId"], connectionTypes=["cloud_api"])
    phones = await world.get("/v1/phones?limit=100")
    before = await count(world, "phone_number.connected")
    refused = await signup_again(
        world, update["id"], data["waba_id"], data["business_id"], "business_app"
    )
    assert refused.status_code == 422, refused.text
    assert error_of(refused)["code"] == "connection_type_not_allowed"
    assert await world.get("/v1/phones?limit=100") == phones
    assert await count(world, "phone_number.connected") == before
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert shown["status"] == "pending" and shown["phoneNumberId"] is None
    assert shown["result"]["changes"] == []
    # The page's event alone says so too, whatever Meta's number says.
    said = world.fake.finish_existing("ok", data["waba_id"], data["business_id"])
    assert said is not None
    body = {"code": said["code"], "wabaId": data["waba_id"]}
    body["event"] = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
    refused = await world.client.post(f"/signup/{update['id']}/callback", json=body)
    assert refused.status_code == 422 and error_of(refused)["code"] == "connection_type_not_allowed"
    assert await world.get("/v1/phones?limit=100") == phones
    # A link that allows it adds the number.
    allowing = await world.link(
        type="update", wabaId=link["wabaId"], connectionTypes=["cloud_api", "business_app"]
    )
    added = await signup_again(
        world, allowing["id"], data["waba_id"], data["business_id"], "business_app"
    )
    assert added.status_code == 200, added.text
    assert await count(world, "phone_number.connected") == before + 1


async def test_finish_is_refused_while_the_number_needs_its_signup(world: World) -> None:
    link, data = await removed(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    first = await plan(world, update["id"])
    assert first["steps"][0] == "reconnect"
    bodies: list[dict[str, Any]] = [{}, {"profile": {}}]
    for body in bodies:
        refused = await finish(world, update["id"], first["token"], body)
        assert refused.status_code == 409, refused.text
        assert error_of(refused)["code"] == "update_step_required"
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    assert shown["status"] == "pending" and shown["result"]["changes"] == []
    assert await count(world, "onboarding_link.completed") == 1  # the first link's only
    # The page has a plain sentence for it, in the end-user's language.
    german = await world.link(type="update", phoneNumberId=link["phoneNumberId"], locale="de_DE")
    page = await world.client.get(f"/signup/{german['id']}")
    assert '"update_step_required":"Ihre Nummer ben' in page.text
    # A WABA-only link before its number is added: the same.
    only, _ = await connected(world, "only_waba")
    adding = await world.link(type="update", wabaId=only["wabaId"])
    token = (await plan(world, adding["id"]))["token"]
    refused = await finish(world, adding["id"], token, {})
    assert refused.status_code == 409 and error_of(refused)["code"] == "update_step_required"
    # Once reconnected, it finishes.
    answer = await signup_again(world, update["id"], data["waba_id"], data["business_id"])
    assert answer.status_code == 200, answer.text
    done = await finish(world, update["id"], answer.json()["update"]["token"], {})
    assert done.status_code == 200, done.text


async def test_the_pages_profile_is_an_object_of_the_pages_fields(world: World) -> None:
    link, _ = await connected(world)
    update = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
    token = (await plan(world, update["id"]))["token"]
    posts = len(world.fake.profile_posts)
    for profile in ([], "", 0, False, ["about"], "about"):
        # A link of its own each (the page's finish has a budget of five tries a link).
        other = await world.link(type="update", phoneNumberId=link["phoneNumberId"])
        other_token = (await plan(world, other["id"]))["token"]
        bad = await finish(world, other["id"], other_token, {"profile": profile})
        assert bad.status_code == 400, (profile, bad.text)
        assert error_of(bad)["param"] == "profile", profile
    # The category is the API's (PATCH /v1/phones/{id}/profile), not the page's.
    vertical = await finish(world, update["id"], token, {"profile": {"vertical": "RETAIL"}})
    assert vertical.status_code == 400, vertical.text
    error = error_of(vertical)
    assert error["code"] == "unknown_parameter" and error["param"] == "vertical"
    assert len(world.fake.profile_posts) == posts
    assert (await world.get(f"/v1/onboarding-links/{update['id']}"))["status"] == "pending"
    patched = await world.client.patch(
        f"/v1/phones/{link['phoneNumberId']}/profile",
        json={"vertical": "RETAIL"},
        headers=world.auth,
    )
    assert patched.status_code == 200, patched.text
    done = await finish(world, update["id"], token, {"profile": None})  # null: not given
    assert done.status_code == 200, done.text


async def unverified_update(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """A WABA-only account's update link, its number added and waiting for its code."""
    link, data = await connected(world, "only_waba")
    update = await world.link(type="update", wabaId=link["wabaId"], redirectUrl=RETURN)
    answer = await signup_again(
        world, update["id"], data["waba_id"], data["business_id"], "unverified"
    )
    assert answer.status_code == 200, answer.text
    following: dict[str, Any] = answer.json()["update"]
    sent = await verification(
        world, update["id"], "code", following["verification"]["token"], {"method": "sms"}
    )
    assert sent.status_code == 200, sent.text
    return update, following


async def test_a_verification_during_finish_is_not_lost(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    update, following = await unverified_update(world)
    code_pass = following["verification"]["token"]
    real = UpdateService._send_profile
    during: list[Any] = []

    async def slow(self: UpdateService, *args: Any) -> list[str]:
        # Another tab verifies the number while this one holds the link to finish it.
        during.append(
            await verification(world, update["id"], "verify", code_pass, {"code": "000000"})
        )
        return await real(self, *args)

    monkeypatch.setattr(UpdateService, "_send_profile", slow)
    done = await finish(world, update["id"], following["token"], {"profile": {"about": "New"}})
    assert done.status_code == 200, done.text
    # The verification waited for its turn: told the link is busy, nothing lost.
    assert during[0].status_code == 409, during[0].text
    assert error_of(during[0])["code"] == "completion_in_progress"
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    phone = await world.get(f"/v1/phones/{completed['phoneNumberId']}")
    verified = "verified" in completed["result"]["changes"]
    assert verified == (phone["status"] == "connected"), (completed["result"], phone["status"])


async def test_a_verification_and_a_finish_racing_lose_no_change(world: World) -> None:
    update, following = await unverified_update(world)
    code_pass = following["verification"]["token"]
    answers: dict[str, Any] = {}

    async def verify() -> None:
        answers["verify"] = await verification(
            world, update["id"], "verify", code_pass, {"code": "000000"}
        )

    async def save() -> None:
        answers["finish"] = await finish(
            world, update["id"], following["token"], {"profile": {"about": "Both"}}
        )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(verify)
        tasks.start_soon(save)
    shown = await world.get(f"/v1/onboarding-links/{update['id']}")
    phone = await world.get(f"/v1/phones/{shown['phoneNumberId']}")
    assert ("verified" in shown["result"]["changes"]) == (phone["status"] == "connected"), (
        shown["result"],
        phone["status"],
        {k: a.text for k, a in answers.items()},
    )
    if shown["status"] == "completed":
        assert "profile_updated" in shown["result"]["changes"]


async def test_a_completed_update_links_page_no_longer_verifies(world: World) -> None:
    update, following = await unverified_update(world)
    code_pass = following["verification"]["token"]
    done = await finish(world, update["id"], following["token"], {})  # "Do it later"
    assert done.status_code == 200, done.text
    for route, body in (("code", {"method": "sms"}), ("verify", {"code": "000000"})):
        refused = await verification(world, update["id"], route, code_pass, body)
        assert refused.status_code == 409, refused.text
        assert error_of(refused)["code"] == "link_completed"
    completed = await world.get(f"/v1/onboarding-links/{update['id']}")
    phone = await world.get(f"/v1/phones/{completed['phoneNumberId']}")
    assert phone["status"] == "pending_verification"
    assert completed["result"]["changes"] == ["phone_added"]


async def test_a_deleted_or_expired_links_verification_routes_answer_410(
    world: World,
) -> None:
    for how in ("delete", "expire"):
        link, data = await connected(world, "only_waba")
        update = await world.link(type="update", wabaId=link["wabaId"], expiresInSeconds=3600)
        added = await signup_again(
            world, update["id"], data["waba_id"], data["business_id"], "unverified"
        )
        assert added.status_code == 200, added.text
        code_pass = added.json()["update"]["verification"]["token"]
        if how == "delete":
            gone = await world.client.delete(
                f"/v1/onboarding-links/{update['id']}", headers=world.auth
            )
            assert gone.status_code == 200, gone.text
        else:
            world.clock.advance(seconds=3601)
        for route, body in (("code", {"method": "sms"}), ("verify", {"code": "000000"})):
            refused = await verification(world, update["id"], route, code_pass, body)
            assert refused.status_code == 410, (how, refused.text)
            wanted = "link_deleted" if how == "delete" else "link_expired"
            assert error_of(refused)["code"] == wanted


async def test_two_links_for_one_waba_only_account_add_its_number_once(world: World) -> None:
    link, data = await connected(world, "only_waba")
    one = await world.link(type="update", wabaId=link["wabaId"])
    two = await world.link(type="update", wabaId=link["wabaId"])
    added = await signup_again(world, one["id"], data["waba_id"], data["business_id"], "unverified")
    assert added.status_code == 200, added.text
    connected_events = await count(world, "phone_number.connected")
    phone_id = (await world.get(f"/v1/onboarding-links/{one['id']}"))["phoneNumberId"]
    # The second link sees the number now on the account: that number's steps, and its
    # verification pass works for it.
    second = await plan(world, two["id"])
    assert second["steps"] == ["verify", "profile"], second["steps"]
    assert (await world.get(f"/v1/onboarding-links/{two['id']}"))["phoneNumberId"] == phone_id
    code_pass = second["verification"]["token"]
    sent = await verification(world, two["id"], "code", code_pass, {"method": "sms"})
    assert sent.status_code == 200, sent.text
    verified = await verification(world, two["id"], "verify", code_pass, {"code": "000000"})
    assert verified.status_code == 200, verified.text
    again = await signup_again(world, two["id"], data["waba_id"], data["business_id"])
    assert again.status_code == 409, again.text
    assert error_of(again)["code"] == "update_not_needed"
    assert await count(world, "phone_number.connected") == connected_events
    last = await plan(world, two["id"])
    assert last["steps"] == ["profile"] and last["profile"] is not None
    done = await finish(world, two["id"], last["token"], {"profile": {"about": "Second"}})
    assert done.status_code == 200, done.text
    completed = await world.get(f"/v1/onboarding-links/{two['id']}")
    assert completed["phoneNumberId"] == phone_id
    assert completed["result"] == {
        "changes": ["verified", "profile_updated"],
        "profileFields": ["about"],
    }
    first = await world.get(f"/v1/onboarding-links/{one['id']}")
    assert first["status"] == "pending" and first["result"]["changes"] == ["phone_added"]


async def test_two_links_adding_one_number_at_once_say_phone_added_once(world: World) -> None:
    link, data = await connected(world, "only_waba")
    links = [await world.link(type="update", wabaId=link["wabaId"]) for _ in range(2)]
    before = await count(world, "phone_number.connected")
    answers: list[Any] = []

    async def tab(link_id: str) -> None:
        answers.append(await signup_again(world, link_id, data["waba_id"], data["business_id"]))

    async with anyio.create_task_group() as tasks:
        for each in links:
            tasks.start_soon(tab, each["id"])
    for answer in answers:
        assert answer.status_code in (200, 409), answer.text
    assert await count(world, "phone_number.connected") == before + 1
    shown = [await world.get(f"/v1/onboarding-links/{each['id']}") for each in links]
    said = [s["id"] for s in shown if "phone_added" in s["result"]["changes"]]
    assert len(said) == 1, [s["result"] for s in shown]
