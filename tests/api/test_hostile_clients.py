"""Clients that misbehave, against the real server: slow bodies are cut at the body
deadline while others are served, a body cut off mid-way is no 500 and no traceback,
failed logins are limited before they reach storage, and what the sandbox page says
does not depend on the Host header."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_onboard.api.auth import hash_key
from edge_onboard.core.validation import BODY_DEADLINE
from tests.conftest import Api
from tests.live import create_key, serve

SLOW_CLIENTS = 200


async def _slow_body(port: int, path: str, opened: list[float], closed: list[float]) -> bytes:
    """Send headers and a little of the body, then a byte a second: what comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(time.monotonic())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        'Content-Length: 1000\r\n\r\n{"error"'.encode()
    )
    answer = b""
    try:
        for _ in range(int(BODY_DEADLINE) * 3):
            await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                writer.write(b" ")  # one more byte of whitespace: still a valid body
                continue
            if not chunk:
                break
            answer += chunk
    finally:
        closed.append(time.monotonic())
        writer.close()
    return answer


async def _ordinary(base: str, link_url: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            page = await client.get(link_url)
            health = await client.get(f"{base}/healthz")
            assert page.status_code == 200 and health.status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    return latencies


def test_slow_bodies_are_cut_and_others_served(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    env = {"EDGE_RATE_LIMIT_PUBLIC": "100000"}  # the body deadline is what is tested here
    with serve(tmp_path, env=env) as (base, _):
        made = httpx.post(
            f"{base}/v1/onboarding-links",
            json={"name": "x"},
            headers={"Authorization": f"Bearer {key}"},
        )
        link = made.json()["data"]
        port = int(base.rsplit(":", 1)[1])

        async def attack() -> tuple[list[bytes], list[float], list[float], list[float]]:
            opened: list[float] = []
            closed: list[float] = []
            stop = asyncio.Event()
            ordinary = asyncio.create_task(_ordinary(base, link["hostedUrl"], stop))
            answers = await asyncio.gather(
                *(
                    _slow_body(port, f"/signup/{link['id']}/callback", opened, closed)
                    for _ in range(SLOW_CLIENTS)
                )
            )
            stop.set()
            return answers, opened, closed, await ordinary

        answers, opened, closed, latencies = asyncio.run(attack())
    held = [end - start for start, end in zip(sorted(opened), sorted(closed), strict=True)]
    print(
        f"\n{SLOW_CLIENTS} slow bodies: all closed by the server, the longest held "
        f"{max(held):.1f} s (deadline {BODY_DEADLINE:.0f} s); meanwhile {len(latencies)} "
        f"page + health pairs served, slowest {max(latencies) * 1000:.0f} ms"
    )
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
    assert max(held) < BODY_DEADLINE + 4
    assert len(latencies) >= 20 and max(latencies) < 2.0


def _cut(port: int, head: str, body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode() + body)
        time.sleep(0.05)
    # closed mid-body: the server must just let the request go


def test_bodies_cut_off_midway_are_no_error(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    with serve(tmp_path, env={"EDGE_LOG_LEVEL": "debug"}) as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        link = httpx.post(f"{base}/v1/onboarding-links", json={"name": "x"}, headers=auth)
        link_id = link.json()["data"]["id"]
        some = uuid.uuid4()
        port = int(base.rsplit(":", 1)[1])
        paths = [
            "/v1/onboarding-links",
            "/v1/outgoing-webhooks",
            f"/v1/phones/{some}/messages",
            f"/v1/webhook-deliveries/{some}/retry",
            f"/signup/{link_id}/callback",
            f"/webhook/phone/{some}",
        ]
        for path in paths:
            common = f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
            common += "Content-Type: application/json\r\n"
            _cut(port, common + "Content-Length: 500\r\n\r\n", b'{"name": "cut')
            _cut(port, common + "Transfer-Encoding: chunked\r\n\r\n", b'40\r\n{"name": "cu')
        patch = f"PATCH /v1/outgoing-webhooks/{some} HTTP/1.1\r\nHost: t\r\n"
        _cut(port, patch + f"Authorization: Bearer {key}\r\nContent-Length: 90\r\n\r\n", b"{")
        time.sleep(0.5)
        assert httpx.get(f"{base}/healthz").status_code == 200
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert "unhandled error" not in log
    assert log.count("client left mid-request") >= len(paths)


def _count_key_reads(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every API-key lookup that reaches storage, from now on."""
    reads: list[str] = []
    lookup = api.storage.get_api_key_by_hash

    async def counted(key_hash: str) -> Any:
        reads.append(key_hash)
        return await lookup(key_hash)

    monkeypatch.setattr(api.storage, "get_api_key_by_hash", counted)
    return reads


async def test_failed_logins_are_limited_before_storage(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _count_key_reads(api, monkeypatch)
    statuses = []
    for _ in range(200):
        bad = {"Authorization": f"Bearer sk_org_{secrets.token_urlsafe(32)}"}
        response = await api.client.get("/v1/onboarding-links", headers=bad)
        statuses.append(response.status_code)
    assert statuses[:20] == [401] * 20
    assert set(statuses[21:]) == {429}
    limited = await api.client.get(
        "/v1/onboarding-links", headers={"Authorization": "Bearer sk_org_x"}
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert len(reads) <= 21, reads  # the flood stopped reaching storage


async def test_a_flood_of_bad_keys_does_not_lock_out_valid_keys_from_that_address(
    api: Api,
) -> None:
    """Behind a NAT or proxy, valid keys share an address with whoever sends bad ones:
    the address's failure budget no longer applies to a key found valid, while each bad
    key sent again is limited by its own budget."""
    good = await api.key()
    assert (await api.client.get("/v1/onboarding-links", headers=good)).status_code == 200
    statuses = []
    for _ in range(60):
        bad = {"Authorization": f"Bearer sk_live_{secrets.token_urlsafe(32)}"}
        statuses.append((await api.client.get("/v1/onboarding-links", headers=bad)).status_code)
    assert 429 in statuses  # the address is over its budget for unknown keys
    good_hash = hash_key(good["Authorization"][7:])
    for _ in range(20):
        # The valid key's copy is gone from this process (as after a second): looked up
        # again, it is not refused for its neighbours' failures.
        await api.client.services.links.cache.forget("apikey", good_hash)
        answer = await api.client.get("/v1/onboarding-links", headers=good)
        assert answer.status_code == 200, answer.text
    # One bad key over and over is limited by its own budget, from any address.
    same = {"Authorization": f"Bearer sk_live_{secrets.token_urlsafe(32)}"}
    app = api.client.asgi_app
    repeated = []
    for i in range(30):
        transport = httpx.ASGITransport(app=app, client=(f"10.1.0.{i}", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="https://onboard.test") as c:
            repeated.append((await c.get("/v1/onboarding-links", headers=same)).status_code)
    assert repeated[0] == 401 and repeated[-1] == 429


async def test_an_unknown_key_is_remembered(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _count_key_reads(api, monkeypatch)
    bad = {"Authorization": f"Bearer sk_org_{secrets.token_urlsafe(32)}"}
    for _ in range(5):
        assert (await api.client.get("/v1/onboarding-links", headers=bad)).status_code == 401
    assert len(reads) == 1
    good = await api.key()
    assert (await api.client.get("/v1/onboarding-links", headers=good)).status_code == 200


@pytest.mark.parametrize("host", ["evil.example; script-src *", "attacker.example"])
def test_the_sandbox_page_ignores_the_host_header(tmp_path: Path, host: str) -> None:
    key = create_key(tmp_path)
    with serve(tmp_path, "--sandbox") as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        link = httpx.post(f"{base}/v1/onboarding-links", json={"name": "x"}, headers=auth)
        url = link.json()["data"]["hostedUrl"]
        normal = httpx.get(url)
        spoofed = httpx.get(url, headers={"Host": host})
    csp = spoofed.headers["content-security-policy"]
    assert "evil" not in csp and "attacker" not in csp and "script-src *" not in csp
    assert csp == normal.headers["content-security-policy"]
    assert "attacker" not in spoofed.text and "evil" not in spoofed.text
