"""The business profile over the API, against the fake Meta over real HTTP: read, change
(Meta's limits checked before Meta is called), the photo through the resumable upload;
and the phone view's name, quality and limit."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.onboarding.profile import image_size
from edge_onboard.storage import Storage
from tests.conftest import FakeClock, real_meta_settings, running_app
from tests.hosted.test_branding import png
from tests.onboarding.test_signup_v4 import V4

pytestmark = pytest.mark.anyio


def jpeg_header(width: int, height: int) -> bytes:
    """The start of a JPEG: SOI, an APP0 segment, then a baseline frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.fixture
async def connected(
    storage: Storage, clock: FakeClock, meta_over_http: tuple[SandboxMeta, str]
) -> AsyncIterator[tuple[V4, str, str]]:
    """A flow with one connected number: (flow, phone id, Meta's phone id)."""
    fake, url = meta_over_http
    async with running_app(storage, clock, real_meta_settings(url)) as client:
        flow = V4(client, client.services, fake)
        from edge_onboard.api.auth import create_key

        _, _, key = await create_key(storage, "acme", clock())
        flow.auth = {"Authorization": f"Bearer {key}"}
        link = await flow.link()
        response, body = await flow.finish(link["id"], "ok")
        assert response.status_code == 200, response.text
        done = await flow.get(f"/v1/onboarding-links/{link['id']}")
        yield flow, done["phoneNumberId"], body["phoneNumberId"]


async def test_read_and_change_the_profile(connected: tuple[V4, str, str]) -> None:
    flow, phone_id, meta_id = connected
    posts = len(flow.fake.profile_posts)
    profile = await flow.get(f"/v1/phones/{phone_id}/profile")
    assert profile == {
        "about": "Hey there! I am using WhatsApp.",
        "description": None,
        "address": None,
        "email": None,
        "websites": [],
        "vertical": None,
        "photoUrl": None,
    }
    change = {"about": "Fresh bread daily", "websites": ["https://bakery.example"]}
    response = await flow.client.patch(
        f"/v1/phones/{phone_id}/profile", json={**change, "vertical": "RETAIL"}, headers=flow.auth
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["about"] == "Fresh bread daily" and data["vertical"] == "RETAIL"
    assert data["websites"] == ["https://bakery.example"]
    # Meta got exactly the fields given.
    assert list(flow.fake.profile_posts)[posts:] == [(meta_id, {**change, "vertical": "RETAIL"})]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"about": ""}, "about"),
        ({"about": "x" * 140}, "about"),
        ({"description": "x" * 513}, "description"),
        ({"address": "x" * 257}, "address"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 120 + "@b.example"}, "email"),
        ({"websites": ["https://a.example", "https://b.example", "https://c.example"]}, "websites"),
        ({"websites": ["ftp://files.example"]}, "websites[0]"),
        ({"websites": ["https://a.example/" + "x" * 240]}, "websites[0]"),
        ({"vertical": "BAKERY"}, "vertical"),
        ({"photo": "x"}, "photo"),
        ({}, "about"),
    ],
)
async def test_meta_limits_are_checked_before_meta_is_called(
    connected: tuple[V4, str, str], body: dict[str, Any], param: str
) -> None:
    flow, phone_id, _ = connected
    flow.fake.calls.clear()
    posts = len(flow.fake.profile_posts)
    response = await flow.client.patch(
        f"/v1/phones/{phone_id}/profile", json=body, headers=flow.auth
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert list(flow.fake.calls) == [] and len(flow.fake.profile_posts) == posts


async def test_the_photo_goes_through_the_resumable_upload(
    connected: tuple[V4, str, str],
) -> None:
    flow, phone_id, meta_id = connected
    flow.fake.calls.clear()
    posts = len(flow.fake.profile_posts)
    photo = png(200, 200)
    response = await flow.client.put(
        f"/v1/phones/{phone_id}/profile/photo",
        content=photo,
        headers={**flow.auth, "Content-Type": "image/png"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["photoUrl"].startswith("https://pps.whatsapp.net/")
    sent = [p for m, p in flow.fake.calls if m == "POST"]
    assert sent[0].endswith("/uploads") and sent[1].startswith("upload:")
    ((posted_to, fields),) = list(flow.fake.profile_posts)[posts:]
    assert posted_to == meta_id and list(fields) == ["profile_picture_handle"]
    assert flow.fake.handles[fields["profile_picture_handle"]] == hashlib.sha256(photo).hexdigest()


@pytest.mark.parametrize(
    ("data", "content_type", "status", "says"),
    [
        (png(300, 200), "image/png", 400, "square"),
        (png(100, 100), "image/png", 400, "192"),
        (png(200, 200), "image/jpeg", 400, "not an image of type image/jpeg"),
        (b"GIF89a" + b"\x00" * 20, "image/gif", 415, "image/jpeg or image/png"),
        (b"", "image/png", 400, "empty"),
    ],
)
async def test_a_wrong_photo_is_refused_before_meta_hears_of_it(
    connected: tuple[V4, str, str], data: bytes, content_type: str, status: int, says: str
) -> None:
    flow, phone_id, _ = connected
    flow.fake.calls.clear()
    response = await flow.client.put(
        f"/v1/phones/{phone_id}/profile/photo",
        content=data,
        headers={**flow.auth, "Content-Type": content_type},
    )
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
    assert list(flow.fake.calls) == []


async def test_meta_refusing_is_a_422_and_meta_down_a_502(connected: tuple[V4, str, str]) -> None:
    flow, phone_id, _ = connected
    flow.fake.fail("POST", "whatsapp_business_profile", status=400, code=100, message="Nope")
    refused = await flow.client.patch(
        f"/v1/phones/{phone_id}/profile", json={"about": "Hi"}, headers=flow.auth
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "meta_rejected"
    flow.fake.fail("GET", "whatsapp_business_profile", status=503, times=3)
    down = await flow.client.get(f"/v1/phones/{phone_id}/profile", headers=flow.auth)
    assert down.status_code == 502 and down.json()["error"]["code"] == "meta_unavailable"


async def test_the_phone_view_says_name_quality_and_limit(connected: tuple[V4, str, str]) -> None:
    flow, phone_id, _ = connected
    phone = await flow.get(f"/v1/phones/{phone_id}")
    assert phone["displayName"] == "Sandbox Business"
    assert phone["nameStatus"] == "APPROVED"
    assert phone["qualityRating"] == "GREEN"
    assert phone["messagingLimit"] is None  # the fake does not say


def test_image_sizes_are_read_from_the_headers() -> None:
    assert image_size(png(640, 480)) == (640, 480)
    assert image_size(jpeg_header(512, 512)) == (512, 512)
    assert image_size(b"\xff\xd8\x00garbage") is None
    assert image_size(b"plain text") is None
