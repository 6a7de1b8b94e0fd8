"""GET /v1/phones/{id}/media/{mediaId}: a received file, streamed from Meta (the sandbox's
Graph and CDN), bounded, and fetched from Meta's hosts only."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.types import Message

from edge_onboard.api import media
from edge_onboard.api.auth import create_key
from edge_onboard.storage import Storage
from edge_onboard.webhooks.delivery import Sender
from tests.api.test_links_api import assert_error
from tests.conftest import FakeClock, make_settings, running_app
from tests.meta.test_inbound import World
from tests.webhooks.test_delivery import Receiver

pytestmark = pytest.mark.anyio


async def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def world(storage: Storage) -> AsyncIterator[World]:
    clock = FakeClock(datetime.now(UTC))
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(Receiver().handler)
        )
        assert services.graph is not None
        services.graph.sleep = no_sleep  # Graph retries, without the waiting
        world = World(client, services, Receiver())
        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        yield world


@pytest.fixture
async def phone(world: World) -> dict[str, Any]:
    return await world.connect()


def path(phone: dict[str, Any], media_id: str) -> str:
    return f"/v1/phones/{phone['phoneNumberId']}/media/{media_id}"


async def test_a_received_file_streams_from_meta(world: World, phone: dict[str, Any]) -> None:
    content = secrets.token_bytes(300_000)
    media_id = world.sandbox.add_media(phone["metaPhoneNumberId"], content, mime_type="video/mp4")
    response = await world.client.get(path(phone, media_id), headers=world.auth)
    assert response.status_code == 200, response.text
    assert response.content == content
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(content))
    assert response.headers["cache-control"] == "no-store"
    assert ("GET", media_id) in world.sandbox.calls  # Graph named the URL

    head = await world.client.head(path(phone, media_id), headers=world.auth)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(content))


async def test_redirects_are_followed_on_meta_hosts_only(
    world: World, phone: dict[str, Any]
) -> None:
    meta = phone["metaPhoneNumberId"]
    content = b"\x89PNG" + secrets.token_bytes(1000)
    target = world.sandbox.add_media(meta, content, mime_type="image/png")
    # The sandbox answers for every host: only the check keeps the token from leaving.
    on_meta = f"https://lookaside.fbsbx.com/_sandbox/media/{target}"
    hop = world.sandbox.add_media(meta, b"", location=on_meta)
    response = await world.client.get(path(phone, hop), headers=world.auth)
    assert (response.status_code, response.content) == (200, content)

    for quirks in (
        {"location": "https://attacker.example/_sandbox/media/" + target},
        {"location": "http://lookaside.fbsbx.com/_sandbox/media/" + target},
        {"url": f"https://fbsbx.com.attacker.example/_sandbox/media/{target}"},
        {"url": f"https://user:pw@lookaside.fbsbx.com/_sandbox/media/{target}"},
        {"url": "not a url at all"},
    ):
        media_id = world.sandbox.add_media(meta, b"", **quirks)
        refused = await world.client.get(path(phone, media_id), headers=world.auth)
        assert_error(refused, 502, "meta_error")

    loop = world.sandbox.add_media(meta, b"")
    world.sandbox.phones[meta]["_media"][loop]["location"] = (
        f"https://lookaside.fbsbx.com/_sandbox/media/{loop}"
    )
    assert_error(await world.client.get(path(phone, loop), headers=world.auth), 502, "meta_error")


async def test_files_over_the_bound_are_refused_or_cut_off(
    world: World, phone: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = phone["metaPhoneNumberId"]
    monkeypatch.setattr(media, "MAX_MEDIA_BYTES", 4096)
    # Graph announces a file over the bound: refused before any download.
    big = world.sandbox.add_media(meta, b"x" * 5000)
    assert_error(
        await world.client.get(path(phone, big), headers=world.auth), 413, "media_too_large"
    )
    # Graph says it is small, the download's Content-Length says otherwise.
    lying = world.sandbox.add_media(meta, b"x" * 100, file_size=100, length=5000)
    assert_error(
        await world.client.get(path(phone, lying), headers=world.auth), 413, "media_too_large"
    )
    # Neither says: the stream is cut off past the bound (the response had begun).
    chunked = world.sandbox.add_media(meta, b"x" * 5000, file_size=100, length=None)
    with pytest.raises(media.MediaTooLarge):
        await world.client.get(path(phone, chunked), headers=world.auth)
    small = world.sandbox.add_media(meta, b"y" * 4096, length=None)
    response = await world.client.get(path(phone, small), headers=world.auth)
    assert (response.status_code, response.content) == (200, b"y" * 4096)


async def test_refusals(world: World, phone: dict[str, Any]) -> None:
    meta = phone["metaPhoneNumberId"]
    media_id = world.sandbox.add_media(meta, b"file")
    assert_error(await world.client.get(path(phone, media_id)), 401, "missing_api_key")
    _, _, other = await create_key(world.services.storage, "globex", world.services.clock())
    assert_error(
        await world.client.get(path(phone, media_id), headers={"Authorization": f"Bearer {other}"}),
        404,
        "resource_missing",
    )
    for unknown in ("999999", "1e5", "abc", "1" * 33):
        assert_error(
            await world.client.get(path(phone, unknown), headers=world.auth),
            404,
            "resource_missing",
        )
    # Another phone's file (a WABA this business token was not granted) is Graph's 100.
    stranger = await world.connect()
    theirs = world.sandbox.add_media(stranger["metaPhoneNumberId"], b"not yours")
    assert_error(
        await world.client.get(path(phone, theirs), headers=world.auth), 404, "resource_missing"
    )
    # The URL outlived (Meta's CDN no longer has the file).
    gone = world.sandbox.add_media(meta, b"", url="https://lookaside.fbsbx.com/_sandbox/media/1")
    assert_error(
        await world.client.get(path(phone, gone), headers=world.auth), 404, "resource_missing"
    )
    world.sandbox.fail("GET", media_id, status=503, times=3)
    assert_error(
        await world.client.get(path(phone, media_id), headers=world.auth), 502, "meta_unavailable"
    )
    world.sandbox.fail("GET", media_id, status=400, code=190, message="Token expired")
    assert_error(
        await world.client.get(path(phone, media_id), headers=world.auth), 502, "meta_error"
    )


async def test_the_body_is_relayed_as_it_arrives_and_the_download_closed() -> None:
    class Upstream(httpx.AsyncByteStream):
        def __init__(self) -> None:
            self.produced = 0
            self.closed = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for _ in range(3):
                self.produced += 1
                yield b"z" * 1000

        async def aclose(self) -> None:
            self.closed = True

    stream = Upstream()
    chunks = media._chunks(httpx.Response(200, stream=stream), limit=10_000)
    assert await chunks.__anext__() == b"z" * 1000
    assert stream.produced == 1  # nothing read ahead: one chunk in memory at a time
    await chunks.aclose()

    # The client leaves before the first byte: the download is closed all the same.
    stream = Upstream()
    relay = media._Relay(httpx.Response(200, stream=stream), {}, "image/jpeg")
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await relay({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    assert stream.closed
