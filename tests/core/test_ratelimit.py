"""Rate limits: 429 in the error shape with Retry-After, in-process, on real Redis and
on a real Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from edge_onboard.core.errors import ApiError
from edge_onboard.core.ratelimit import Limit, RateLimiter
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.webhooks.queue.redis import client_from_url
from tests.api.test_links_api import assert_error
from tests.conftest import Api, FakeClock, make_settings, running_app
from tests.live import free_port

pytestmark = pytest.mark.anyio


class Ticker:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


REDIS_SERVERS = {"redis": "redis_url", "cluster": "redis_cluster_url"}


@pytest.fixture(params=["memory", *REDIS_SERVERS])
async def limiter(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[tuple[RateLimiter, Ticker]]:
    ticker = Ticker()
    if request.param == "memory":
        yield RateLimiter(now=ticker), ticker
        return
    client = client_from_url(
        request.getfixturevalue(REDIS_SERVERS[request.param]), max_connections=8
    )
    await client.flushdb()
    yield RateLimiter(client, now=ticker), ticker
    await client.aclose()


async def test_bursts_then_the_rate(limiter: tuple[RateLimiter, Ticker]) -> None:
    limits, ticker = limiter
    limit = Limit(rate=2, burst=4)
    for _ in range(4):
        await limits.check("k", limit, "here")
    with pytest.raises(ApiError) as info:
        await limits.check("k", limit, "here")
    assert info.value.status_code == 429 and info.value.type == "rate_limit_error"
    assert info.value.headers["Retry-After"] == "1"
    await limits.check("other", limit, "here")  # keys are independent
    ticker.now += 0.5  # one more request's worth at 2/s
    await limits.check("k", limit, "here")
    with pytest.raises(ApiError):
        await limits.check("k", limit, "here")


async def test_redis_down_falls_back_in_process() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    limits = RateLimiter(client)
    limit = Limit(rate=1, burst=2)
    await limits.check("k", limit, "here")
    await limits.check("k", limit, "here")
    with pytest.raises(ApiError):
        await limits.check("k", limit, "here")
    await client.aclose()


async def test_api_and_public_pages_answer_429(clock: FakeClock) -> None:
    store = MemoryStorage()
    settings = make_settings(EDGE_RATE_LIMIT_API="1", EDGE_RATE_LIMIT_PUBLIC="1")
    async with running_app(store, clock, settings) as client:
        auth = await Api(client, store, clock).key()
        statuses = [
            (await client.get("/v1/onboarding-links", headers=auth)).status_code for _ in range(4)
        ]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429
        limited = await client.get("/v1/onboarding-links", headers=auth)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        other = await Api(client, store, clock).key("globex")
        assert (await client.get("/v1/onboarding-links", headers=other)).status_code == 200

        link = "/signup/00000000-0000-4000-8000-000000000000"
        pages = [(await client.get(link)).status_code for _ in range(4)]
        assert pages[:2] == [404, 404] and pages[-1] == 429
        callback = await client.post(f"{link}/callback", json={"code": "x", "wabaId": "1"})
        assert callback.status_code == 429
        assert callback.json()["error"]["code"] == "rate_limited"
        assert "retry-after" in callback.headers


@pytest.mark.parametrize("server", list(REDIS_SERVERS))
async def test_processes_share_one_budget_through_redis(
    server: str, request: pytest.FixtureRequest
) -> None:
    client = client_from_url(request.getfixturevalue(REDIS_SERVERS[server]), max_connections=8)
    await client.flushdb()
    ticker = Ticker()
    first, second = RateLimiter(client, now=ticker), RateLimiter(client, now=ticker)
    limit = Limit(rate=1, burst=4)
    for _ in range(4):
        await first.check("k", limit, "here")
        ticker.now += 0.06  # past the batching interval: each request is charged
    refused = 0
    for _ in range(4):
        try:
            await second.check("k", limit, "here")
        except ApiError:
            refused += 1
        ticker.now += 0.06
    # On its own, the second process would have allowed all four.
    assert refused >= 3
    await client.aclose()
