"""The hosted page's verification step, server side (the page itself is driven in
tests/browser/test_page_verification.py): the callback of an unverified signup hands the
page a pass for that link only; with it the page sends the code and checks it, and
Meta's refusals come back as codes the page words in the end-user's language."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import FakeClock
from tests.onboarding.test_signup_v4 import V4

pytestmark = pytest.mark.anyio
RETURN = "https://app.example.com/done?from=wa"


async def unverified(flow: V4, **link: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    made = await flow.link(redirectUrl=RETURN, **link)
    response, _ = await flow.finish(made["id"], "unverified")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return made, body


async def step(
    flow: V4, link_id: str, name: str, body: dict[str, Any], token: str | None, **headers: str
) -> httpx.Response:
    sent = {**({"X-Signup-Pass": token} if token is not None else {}), **headers}
    return await flow.client.post(f"/signup/{link_id}/verification/{name}", json=body, headers=sent)


async def test_an_unverified_signup_goes_on_to_the_code_on_the_page(flow: V4) -> None:
    link, body = await unverified(flow)
    assert body["status"] == "success"
    verification = body["verification"]
    assert verification["phoneNumberMasked"].startswith("+1 ")
    assert verification["resendAfter"] == 60
    later = parse_qs(urlsplit(verification["laterUrl"]).query)
    assert later["status"] == ["success"] and later["verification"] == ["pending"]
    assert later["from"] == ["wa"] and later["onboarding_link_id"] == [link["id"]]
    token = verification["token"]

    sent = await step(flow, link["id"], "code", {"method": "voice", "locale": "ar_AR"}, token)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"status": "sent", "resendAfter": 60}
    assert sent.headers["cache-control"] == "no-store"
    stored = await flow.get(f"/v1/onboarding-links/{link['id']}")
    phone = await flow.get(f"/v1/phones/{stored['phoneNumberId']}")
    meta_phone = flow.fake.phones[phone["metaPhoneNumberId"]]
    # Meta hears the page's language as it names it, and the way the end-user chose.
    assert (meta_phone["_code_language"], meta_phone["_code_method"]) == ("ar", "VOICE")
    wrong = await step(flow, link["id"], "verify", {"code": "123456"}, token)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "verification_code_incorrect"
    assert wrong.json()["status"] == "error"

    right = await step(flow, link["id"], "verify", {"code": "000000"}, token)
    assert right.status_code == 200, right.text
    done = right.json()
    assert parse_qs(urlsplit(done["redirectUrl"]).query)["status"] == ["success"]
    assert "verification" not in parse_qs(urlsplit(done["redirectUrl"]).query)
    stored = await flow.get(f"/v1/onboarding-links/{link['id']}")
    assert stored["isPhoneRegistered"] is True
    phone = await flow.get(f"/v1/phones/{stored['phoneNumberId']}")
    assert phone["status"] == "connected"
    assert meta_phone["_pin"]  # registered with Meta
    # The same pass cannot verify twice: the number needs nothing now.
    again = await step(flow, link["id"], "verify", {"code": "000000"}, token)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "phone_not_pending_verification"


async def test_the_pass_is_for_its_own_link_only(flow: V4, clock: FakeClock) -> None:
    first, body = await unverified(flow)
    second, other = await unverified(flow)
    token = body["verification"]["token"]
    for link_id, given in (
        (second["id"], token),  # another link's pass
        (first["id"], None),  # none
        (first["id"], "9999999999." + token.split(".", 1)[1]),  # a later expiry, same MAC
        (first["id"], other["verification"]["token"]),
    ):
        refused = await step(flow, link_id, "code", {"method": "sms"}, given)
        assert refused.status_code == 403, (link_id, given)
        assert refused.json()["error"]["code"] == "verification_pass_invalid"
    unknown = await step(flow, "00000000-0000-4000-8000-000000000000", "code", {}, token)
    assert unknown.status_code == 404
    # Another site's page cannot drive it, even with the pass.
    foreign = await step(
        flow, first["id"], "code", {"method": "sms"}, token, Origin="https://evil.example"
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_origin"
    # Bad input is a 400 in the page's shape.
    bad = await step(flow, first["id"], "code", {"method": "pigeon"}, token)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "method"
    unknown_field = await step(flow, first["id"], "verify", {"code": "1", "x": 1}, token)
    assert unknown_field.status_code == 400
    assert unknown_field.json()["error"]["code"] == "unknown_parameter"
    # Half an hour later the pass is worth nothing.
    clock.advance(minutes=31)
    late = await step(flow, first["id"], "code", {"method": "sms"}, token)
    assert late.status_code == 403


async def test_meta_refusals_reach_the_page_as_codes_with_the_wait(flow: V4) -> None:
    link, body = await unverified(flow)
    token = body["verification"]["token"]
    flow.fake.fail("POST", "request_code", status=400, code=80007, message="Rate limit")
    limited = await step(flow, link["id"], "code", {"method": "sms"}, token)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    assert limited.json()["error"]["code"] == "meta_rate_limited"
    sent = await step(flow, link["id"], "code", {"method": "sms"}, token)
    assert sent.status_code == 200, sent.text
    # Meta answers an expired code as a wrong one; the number's status tells.
    start = flow.fake.clock()
    flow.fake.clock = lambda: start + 601
    expired = await step(flow, link["id"], "verify", {"code": "000000"}, token)
    assert expired.status_code == 422
    assert expired.json()["error"]["code"] == "verification_code_expired"


async def test_each_link_has_a_budget_of_its_own(flow: V4) -> None:
    link, body = await unverified(flow)
    token = body["verification"]["token"]
    answers = [
        (await step(flow, link["id"], "verify", {"code": "111111"}, token)).status_code
        for _ in range(7)
    ]
    assert answers[:5] == [422] * 5
    assert answers[5:] == [429, 429]
    last = await step(flow, link["id"], "verify", {"code": "111111"}, token)
    assert last.json()["error"]["code"] == "rate_limited"
    assert int(last.headers["retry-after"]) >= 1
    # Another link's budget is untouched.
    other, other_body = await unverified(flow)
    fresh = await step(
        flow, other["id"], "code", {"method": "sms"}, other_body["verification"]["token"]
    )
    assert fresh.status_code == 200


async def test_a_verified_signup_gets_no_pass(flow: V4) -> None:
    made = await flow.link(redirectUrl=RETURN)
    response, _ = await flow.finish(made["id"], "ok")
    assert response.status_code == 200
    assert "verification" not in response.json()
