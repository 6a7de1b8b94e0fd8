"""An overloaded process refuses a signup callback before spending its code: the page
posts the same body again and the signup completes (on every storage backend)."""

from __future__ import annotations

import anyio
import pytest

from edge_onboard.core.admission import Admission
from tests.onboarding import test_signup_flow
from tests.onboarding.test_signup_flow import Flow

pytestmark = pytest.mark.anyio

flow = test_signup_flow.flow  # the signup flow's fixture, on every storage backend


async def test_a_callback_with_no_turn_is_refused_unspent_and_completes_when_posted_again(
    flow: Flow,
) -> None:
    gate = flow.services.signups = Admission(1, 0.05)
    link = await flow.link()
    body = flow.finish()
    held, release = anyio.Event(), anyio.Event()

    async def busy_elsewhere() -> None:
        async with gate.turn():
            held.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(busy_elsewhere)
        await held.wait()
        refused = await flow.callback(link["id"], body)
        release.set()
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_busy"
    assert refused.headers["retry-after"] == "1"
    view = await flow.get(link["id"])
    assert view["status"] == "pending" and view["lastError"] is None

    done = await flow.callback(link["id"], body)  # the same code: it was never spent
    assert done.status_code == 200, done.text
    assert (await flow.get(link["id"]))["status"] == "completed"
