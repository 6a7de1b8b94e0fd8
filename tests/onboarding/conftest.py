"""What the onboarding tests share: the service against the fake Meta over real HTTP,
with an API key (``flow``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.storage import Storage
from tests.conftest import FakeClock, real_meta_settings, running_app
from tests.onboarding.test_signup_v4 import V4


@pytest.fixture
async def flow(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[V4]:
    fake, url = meta_over_http
    async with running_app(storage, clock, real_meta_settings(url)) as client:
        flow = V4(client, client.services, fake)
        from edge_onboard.api.auth import create_key

        _, _, key = await create_key(storage, "acme", clock())
        flow.auth = {"Authorization": f"Bearer {key}"}
        yield flow
