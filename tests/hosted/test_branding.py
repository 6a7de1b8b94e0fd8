"""The organisation's branding over every storage backend: the API, the logo served
from our origin, and the page that shows them."""

from __future__ import annotations

import functools
import re
import struct
import zlib

import pytest

from edge_onboard.onboarding.branding import BLACK, WHITE, contrast, sniff, text_on
from edge_onboard.onboarding.image_header import dimensions
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


@functools.cache
def png_bomb(width: int = 20_000, height: int = 3_495) -> bytes:
    """A small PNG that decodes to ``width`` x ``height`` RGB pixels (200 MB for the
    default, in under 256 KB): every row black, compressed as a stream."""
    deflate = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    data = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
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


def jpeg(width: int, height: int) -> bytes:
    """A JPEG's start: APP0, then the frame header (SOF0) that declares its size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xda" + b"\x00" * 16


def webp(kind: bytes, width: int, height: int) -> bytes:
    if kind == b"VP8 ":
        body = b"\x00" * 3 + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    elif kind == b"VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        body = b"\x2f" + bits.to_bytes(4, "little")
    else:
        body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = kind + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def test_dimensions_come_from_the_header_alone() -> None:
    assert dimensions(png(3, 7)) == (3, 7)
    assert dimensions(png_bomb()) == (20_000, 3_495)
    assert dimensions(jpeg(640, 480)) == (640, 480)
    assert dimensions(webp(b"VP8 ", 300, 200)) == (300, 200)
    assert dimensions(webp(b"VP8L", 16384, 5)) == (16384, 5)
    assert dimensions(webp(b"VP8X", 5000, 9)) == (5000, 9)
    # Truncated or malformed headers read as nothing (and are refused).
    assert dimensions(png()[:20]) is None
    assert dimensions(b"\xff\xd8\xff\xe0" + b"\x00" * 20) is None
    assert dimensions(jpeg(640, 480)[:24]) is None
    assert dimensions(b"RIFF\x10\x00\x00\x00WEBPVP8 ") is None


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (jpeg(4097, 10), "image/jpeg"),
        (webp(b"VP8L", 10, 8000), "image/webp"),
        (webp(b"VP8X", 16_000_000, 2), "image/webp"),
        (png(0, 0), "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
    ],
)
async def test_oversized_or_unreadable_logos_are_a_clear_400(
    api: Api, content: bytes, content_type: str
) -> None:
    response = await api.client.put(
        "/v1/organization/logo",
        content=content,
        headers={**(await api.key()), "Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "parameter_invalid"


async def test_logos_at_the_limit_are_taken(api: Api) -> None:
    auth = await api.key()
    for content, content_type in (
        (jpeg(4096, 4096), "image/jpeg"),
        (webp(b"VP8 ", 120, 40), "image/webp"),
        (png(4096, 1), "image/png"),
    ):
        response = await api.client.put(
            "/v1/organization/logo", content=content, headers={**auth, "Content-Type": content_type}
        )
        assert response.status_code == 200, response.text


async def test_a_decompression_bomb_is_refused_before_any_decode(api: Api) -> None:
    """A 20 000 x 3 495 PNG in ~200 KB (200 MB once decoded, in every visitor's browser)
    is refused by the dimensions in its header, with a 400 that says the limit."""
    bomb = png_bomb()
    assert len(bomb) < 256 * 1024
    response = await api.client.put(
        "/v1/organization/logo",
        content=bomb,
        headers={**(await api.key()), "Content-Type": "image/png"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "parameter_invalid"
    assert "20000 x 3495" in error["message"] and "4096 x 4096" in error["message"]


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
