"""/healthz and /readyz with a real Redis, up and down."""

from __future__ import annotations

import pytest

from edge_onboard.storage.memory import MemoryStorage
from tests.conftest import FakeClock, make_settings, running_app
from tests.live import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_ready_with_redis(redis_url: str, clock: FakeClock) -> None:
    settings = make_settings(EDGE_REDIS_URL=redis_url)
    async with running_app(MemoryStorage(), clock, settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"storage": "ok", "redis": "ok"}}


async def test_not_ready_when_redis_is_down(clock: FakeClock) -> None:
    settings = make_settings(EDGE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    async with running_app(MemoryStorage(), clock, settings) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and body["checks"]["storage"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert alive.status_code == 200
