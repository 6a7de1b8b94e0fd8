"""Every event of a number says whose it is: ``onboardingLinkId`` and ``externalId`` of the
link that connected it, on the number's lifecycle, its WABA's and its messages' events,
stamped in one place (edge_onboard/webhooks/owners.py) for every kind."""

from __future__ import annotations

import pytest

from tests.onboarding.test_signup_v4 import V4

pytestmark = pytest.mark.anyio


async def test_every_event_of_a_number_says_whose_it_is(flow: V4) -> None:
    link = await flow.link(externalId="customer_42")
    response, body = await flow.finish(link["id"], "unverified")
    assert response.status_code == 200, response.text
    phone_id = (await flow.get(f"/v1/onboarding-links/{link['id']}"))["phoneNumberId"]
    sent = await flow.post(f"/v1/phones/{phone_id}/verification-code", {"method": "sms"})
    assert sent.status_code == 200, sent.text
    verified = await flow.post(f"/v1/phones/{phone_id}/verify", {"code": "000000"})
    assert verified.status_code == 200, verified.text
    # A customer writes to the number: Meta's webhook becomes message.received.
    assert flow.fake.inbound(body["phoneNumberId"], "15551234567", "hello")
    assert await flow.fake.flush(flow.client) == 1

    events = await flow.items("/v1/events?limit=100")
    kinds = {e["event"] for e in events}
    assert {"phone_number.updated", "message.received", "waba.connected"} <= kinds
    for event in events:
        if event["event"].startswith("onboarding_link."):
            continue
        data = event["data"]
        assert (data["onboardingLinkId"], data["externalId"]) == (link["id"], "customer_42"), event[
            "event"
        ]
