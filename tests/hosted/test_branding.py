"""The organisation's branding over every storage backend: the API, the logo served
from our origin, and the page that shows them."""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from edge_onboard.onboarding.branding import BLACK, WHITE, contrast, sniff, text_on
from tests.conftest import Api

pytestmark = pytest.mark.anyio
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"/>'


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (0, 128, 105)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("color", ["#ffffff", "#ffd600", "#777777", "#767676", "#1a237e", "#000"])
def test_text_on_any_brand_colour_keeps_contrast(color: str) -> None:
    full = "#" + "".join(c * 2 for c in color[1:]) if len(color) == 4 else color
    assert contrast(full, text_on(full)) >= 4.5


def test_contrast_matches_wcag() -> None:
    assert round(contrast(BLACK, WHITE), 1) == 21.0
    assert round(contrast("#767676", WHITE), 2) == 4.54
    assert text_on("#ffd600") == BLACK and text_on("#1a237e") == WHITE


def test_logos_are_recognised_by_their_bytes() -> None:
    assert sniff(png()) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0" + b"\x00" * 20) == "image/jpeg"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>') is None
    assert sniff(b"GIF89a") is None


async def test_get_and_patch_the_organization(api: Api) -> None:
    auth = await api.key()
    got = await api.client.get("/v1/organization", headers=auth)
    assert got.status_code == 200
    org = got.json()["data"]
    assert org["name"] == "acme" and org["displayName"] is None and org["logoUrl"] is None
    changes = {
        "displayName": "Acme Payments",
        "brandColor": "#0A7CFF",
        "supportEmail": "help@acme.example",
        "supportUrl": "https://acme.example/help",
        "privacyUrl": "https://acme.example/privacy",
        "termsUrl": "https://acme.example/terms",
    }
    patched = await api.client.patch("/v1/organization", json=changes, headers=auth)
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["brandColor"] == "#0a7cff" and data["displayName"] == "Acme Payments"
    assert data["updatedAt"] is not None
    cleared = await api.client.patch("/v1/organization", json={"termsUrl": None}, headers=auth)
    assert cleared.json()["data"]["termsUrl"] is None
    assert cleared.json()["data"]["privacyUrl"] == "https://acme.example/privacy"
    # Another organisation sees its own.
    other = await api.client.get("/v1/organization", headers=await api.key("globex"))
    assert other.json()["data"]["displayName"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"brandColor": "blue"}, "brandColor"),
        ({"brandColor": "#12345"}, "brandColor"),
        ({"supportEmail": "not an address"}, "supportEmail"),
        ({"privacyUrl": "http://acme.example/privacy"}, "privacyUrl"),
        ({"supportUrl": "javascript:alert(1)"}, "supportUrl"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "x" * 101}, "displayName"),
        ({"logoUrl": "https://acme.example/logo.png"}, "logoUrl"),
        ({"name": "renamed"}, "name"),
        ({"colour": "#fff"}, None),
        ({}, None),
    ],
)
async def test_bad_branding_is_a_clear_400(api: Api, body: dict[str, object], param: str) -> None:
    response = await api.client.patch("/v1/organization", json=body, headers=await api.key())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    if param is not None:
        assert error["param"] == param


async def test_a_logo_is_served_from_our_origin_by_its_hash(api: Api) -> None:
    auth = await api.key()
    image = png()
    put = await api.client.put(
        "/v1/organization/logo", content=image, headers={**auth, "Content-Type": "image/png"}
    )
    assert put.status_code == 200, put.text
    url = put.json()["data"]["logoUrl"]
    assert re.fullmatch(r"https://onboard\.test/brand/[0-9a-f-]{36}/[0-9a-f]{64}", url)
    served = await api.client.get(url)
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"
    assert "immutable" in served.headers["cache-control"]
    assert served.headers["x-content-type-options"] == "nosniff"
    # The page shows it, as its favicon too.
    link = await api.client.post("/v1/onboarding-links", json={"name": "Shop"}, headers=auth)
    page = (await api.client.get(link.json()["data"]["hostedUrl"])).text
    path = url.removeprefix("https://onboard.test")
    assert f'<img class="logo" src="{path}"' in page and f'rel="icon" href="{path}"' in page
    # A new logo: a new URL; the old one is gone.
    other = png(rgb=(200, 0, 0))
    again = await api.client.put(
        "/v1/organization/logo", content=other, headers={**auth, "Content-Type": "image/png"}
    )
    assert again.json()["data"]["logoUrl"] != url
    assert (await api.client.get(url)).status_code == 404
    removed = await api.client.delete("/v1/organization/logo", headers=auth)
    assert removed.json()["data"]["logoUrl"] is None


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            "image/svg+xml",
            415,
            "unsupported_media_type",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/png", 415, "unsupported_media_type"),
        # Sent as bytes of no declared type, they are still read: not an image.
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            "application/octet-stream",
            415,
            "unsupported_media_type",
        ),
        (png(), "image/jpeg", 400, "parameter_invalid"),
        (b"", "image/png", 400, "parameter_invalid"),
        (png() + b"\x00" * (256 * 1024), "image/png", 413, "logo_too_large"),
    ],
)
async def test_bad_logos_are_refused(
    api: Api, content: bytes, content_type: str, status: int, code: str
) -> None:
    response = await api.client.put(
        "/v1/organization/logo",
        content=content,
        headers={**(await api.key()), "Content-Type": content_type},
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_the_page_shows_the_brand(api: Api) -> None:
    auth = await api.key()
    await api.client.patch(
        "/v1/organization",
        json={"displayName": "Acme", "brandColor": "#ffd600", "privacyUrl": "https://a.example/p"},
        headers=auth,
    )
    link = await api.client.post("/v1/onboarding-links", json={"name": "Shop"}, headers=auth)
    response = await api.client.get(link.json()["data"]["hostedUrl"])
    page = response.text
    assert "<title>Connect WhatsApp to Acme</title>" in page
    assert "Acme uses Meta&#x27;s secure sign-up" in page
    assert '<a href="https://a.example/p">Privacy policy</a>' in page
    # The colour arrives in one inline style that the CSP allows by its hash.
    style = re.search(r"<style>(.*?)</style>", page)
    assert style is not None and "--brand:#ffd600;--on-brand:#000000" in style.group(1)
    assert "'sha256-" in response.headers["content-security-policy"]
    # A link's own displayName wins.
    named = await api.client.post(
        "/v1/onboarding-links", json={"name": "Shop", "displayName": "Acme Brasil"}, headers=auth
    )
    assert "Acme Brasil" in (await api.client.get(named.json()["data"]["hostedUrl"])).text


async def test_link_options_are_checked(api: Api) -> None:
    auth = await api.key()
    for body, param in (
        ({"name": "x", "refreshUrl": "http://acme.example/refresh"}, "refreshUrl"),
        ({"name": "x", "locale": "pt_PT"}, "locale"),
        ({"name": "x", "displayName": ""}, "displayName"),
    ):
        response = await api.client.post("/v1/onboarding-links", json=body, headers=auth)
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    made = await api.client.post(
        "/v1/onboarding-links",
        json={"name": "x", "refreshUrl": "https://acme.example/r", "locale": "id_ID"},
        headers=auth,
    )
    data = made.json()["data"]
    assert data["refreshUrl"] == "https://acme.example/r" and data["locale"] == "id_ID"
