"""The built-in fake Meta shared between processes through Redis.

Test-mode signups run against the fake on every deployment, and a deployment may run
several processes: the popup's "Finish" can reach one and the page's callback another.
First two fakes (two processes' worth of state) over one real Redis, driven as the
service drives Graph; then two real ``serve`` processes sharing Redis and MongoDB.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from edge_onboard.core import redis_keys
from edge_onboard.meta.sandbox import APP_ID, APP_SECRET, SandboxMeta
from edge_onboard.meta.sandbox.sharing import digest
from edge_onboard.webhooks.queue.redis import open_client
from tests import services
from tests.live import create_key, serve

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

GRAPH = "/_sandbox/graph/v25.0"


def graph_client(fake: SandboxMeta) -> httpx.AsyncClient:
    app = Starlette(routes=fake.routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = await open_client(redis_url, max_connections=8)
    yield client
    await client.aclose()


async def exchange(client: httpx.AsyncClient, code: str) -> httpx.Response:
    query = {"client_id": APP_ID, "client_secret": APP_SECRET, "code": code}
    return await client.get(f"{GRAPH}/oauth/access_token", params=query)


async def test_a_signup_finished_in_one_process_completes_in_another(redis: Any) -> None:
    one, two = SandboxMeta(), SandboxMeta()
    one.share(redis)
    two.share(redis)
    async with graph_client(one) as first, graph_client(two) as second:
        finished = (await first.post("/_sandbox/dialog/finish", json={"scenario": "ok"})).json()
        waba, phone = finished["data"]["waba_id"], finished["data"]["phone_number_id"]
        assert phone not in two.phones  # nothing of it in the other process yet

        token = (await exchange(second, finished["code"])).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        app_token = {"Authorization": f"Bearer {APP_ID}|{APP_SECRET}"}
        debug = await second.get(
            f"{GRAPH}/debug_token", params={"input_token": token}, headers=app_token
        )
        assert debug.json()["data"]["granular_scopes"][0]["target_ids"] == [waba]
        numbers = await second.get(f"{GRAPH}/{waba}/phone_numbers", headers=bearer)
        assert [n["id"] for n in numbers.json()["data"]] == [phone]
        assert (await second.post(f"{GRAPH}/{waba}/subscribed_apps", headers=bearer)).is_success
        registered = await second.post(
            f"{GRAPH}/{phone}/register",
            json={"messaging_product": "whatsapp", "pin": "123456"},
            headers=bearer,
        )
        assert registered.is_success, registered.text

        # The first process sees what the second did: the code used, the number on the
        # Cloud API, the subscription.
        assert (await exchange(first, finished["code"])).json()["error"]["code"] == 100
        health = (await first.get(f"{GRAPH}/{phone}", headers=bearer)).json()
        assert health["status"] == "CONNECTED" and health["platform_type"] == "CLOUD_API"
        apps = (await first.get(f"{GRAPH}/{waba}/subscribed_apps", headers=bearer)).json()
        assert [a["whatsapp_business_api_data"]["id"] for a in apps["data"]] == [APP_ID]

        # A copy of Redis shows no token or code in its key names, and no PIN at all.
        names = [_name(k) async for k in redis.scan_iter(match="edge:sandbox:*")]
        assert names and not any(token in n or finished["code"] in n for n in names)
        values = [await redis.get(n) for n in names]
        assert not any(b'"123456"' in v for v in values if v is not None)
        assert registered.is_success and "_pin" in two.phones[phone]  # kept where it was set

        # Removing access in one process takes the grant from every token.
        assert await two.revoke(waba)
        gone = await first.get(f"{GRAPH}/{waba}/phone_numbers", headers=bearer)
        assert gone.json()["error"]["code"] == 100


def _name(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


async def test_state_is_kept_with_an_expiry(redis: Any) -> None:
    fake = SandboxMeta()
    fake.share(redis)
    async with graph_client(fake) as client:
        finished = (await client.post("/_sandbox/dialog/finish", json={"scenario": "ok"})).json()
    waba, code = finished["data"]["waba_id"], finished["code"]
    assert 0 < await redis.ttl(redis_keys.sandbox("waba", waba)) <= redis_keys.SANDBOX_TTL
    assert 0 < await redis.pttl(redis_keys.sandbox("code", digest(code))) <= 30_000


async def test_a_process_forgets_idle_wabas_beyond_its_bound(
    redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    fake = SandboxMeta(clock=lambda: now[0])
    fake.share(redis)
    monkeypatch.setattr("edge_onboard.meta.sandbox.sharing.LOCAL_WABAS", 2)
    async with graph_client(fake) as client:
        first = (await client.post("/_sandbox/dialog/finish", json={"scenario": "ok"})).json()
        for _ in range(3):
            now[0] += 120
            await client.post("/_sandbox/dialog/finish", json={"scenario": "ok"})
        waba, phone = first["data"]["waba_id"], first["data"]["phone_number_id"]
        assert waba not in fake.waba_phones and phone not in fake.phones  # gone from here
        assert len(fake.waba_phones) <= 3
        # Redis still has it: a request about that number brings it back.
        assert await fake.write_in(phone, "15550001111", "hi")
        assert fake.phones[phone]["_waba"] == waba


@pytest.fixture
def shared_services() -> Iterator[dict[str, str]]:
    with services.deployment_env("shared") as env:
        yield {**env, "EDGE_SANDBOX": "1"}


@pytest.mark.mongo
def test_two_serve_processes_share_one_signup(
    tmp_path: Path, shared_services: dict[str, str]
) -> None:
    """The popup's Finish reaches one process, the page's callback another, the health
    check and a send a third request on the first: each sees what the others did."""
    key = create_key(tmp_path, env=shared_services)
    auth = {"Authorization": f"Bearer {key}"}
    with (
        serve(tmp_path, env=shared_services) as (one, _),
        serve(tmp_path, env=shared_services) as (two, _),
    ):
        made = httpx.post(f"{one}/v1/onboarding-links", json={"name": "Acme"}, headers=auth)
        link = made.json()["data"]
        finished = httpx.post(f"{one}/_sandbox/dialog/finish", json={"scenario": "ok"}).json()
        data = finished["data"]
        callback = httpx.post(
            f"{two}/signup/{link['id']}/callback",
            json={
                "code": finished["code"],
                "event": finished["event"],
                "wabaId": data["waba_id"],
                "phoneNumberId": data["phone_number_id"],
            },
            timeout=30,
        )
        assert callback.is_success, callback.text
        # Another process's copy of the link may be a second old (the hot layer).
        for _ in range(40):
            got = httpx.get(f"{one}/v1/onboarding-links/{link['id']}", headers=auth).json()
            if got["data"]["status"] != "pending":
                break
            time.sleep(0.1)
        got = got["data"]
        assert got["status"] == "completed" and got["isPhoneRegistered"] is True
        phone_id = got["phoneNumberId"]
        health = httpx.get(f"{one}/v1/phones/{phone_id}/health", headers=auth, timeout=30)
        assert health.json()["data"]["capabilities"]["canSendMessages"] is True, health.text
        sent = httpx.post(
            f"{one}/v1/phones/{phone_id}/messages",
            json={"to": "15550001111", "type": "text", "text": {"body": "hello"}},
            headers=auth,
            timeout=30,
        )
        assert sent.status_code == 201, sent.text
