"""The organisation's branding on the hosted page: the API's view and rules
(``GET/PATCH /v1/organization``, ``PUT/DELETE /v1/organization/logo``), the logo's
bytes served back from our own origin, and what the page needs to show it.

The logo is PNG, JPEG or WebP, recognised by its first bytes (never SVG, which can
carry script), at most 256 KB and 4 096 x 4 096 pixels (read from its header, never
decoded: a small file can claim a huge canvas that every visitor's browser would
decode), and served at ``/brand/{orgId}/{sha256}``: the URL
changes with the content, so it is cached for a year, and the page's CSP stays
``img-src 'self'``. The brand colour is only ever a background; the text on it is
black or white, whichever contrasts more (always at least 4.58:1, above WCAG's 4.5:1).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import re
from typing import Any

from edge_onboard.core import validation as v
from edge_onboard.core.clock import Clock, isoformat
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.core.hot import HotCache
from edge_onboard.core.urls import check_https_url
from edge_onboard.onboarding.image_header import dimensions
from edge_onboard.storage import OnboardingLink, Organization, Storage

MAX_LOGO_BYTES = 256 * 1024
# The largest canvas a logo may declare, each way (a 4 096 x 4 096 RGBA image is 64 MB).
MAX_LOGO_SIDE = 4096
# The media types we take, and the first bytes that prove each.
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp")
BINARY = "application/octet-stream"  # also taken: then the first bytes say which type
FIELDS = {
    "displayName": "display_name",
    "brandColor": "brand_color",
    "supportEmail": "support_email",
    "supportUrl": "support_url",
    "privacyUrl": "privacy_url",
    "termsUrl": "terms_url",
}
READ_ONLY = ("id", "name", "logoUrl", "createdAt", "updatedAt")
HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
EMAIL = re.compile(
    r"^[^@\s<>\"'(),;:\\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z"
)
NON_BLANK = v.NON_BLANK
BLACK, WHITE = "#000000", "#ffffff"
# Logos served lately, by hash: their bytes never change, so they need no expiry.
_LOGOS: collections.OrderedDict[str, tuple[bytes, str]] = collections.OrderedDict()
LOGO_CACHE = 64


def sniff(data: bytes) -> str | None:
    """The image type the bytes are, by their signature; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def normal_color(value: str) -> str:
    """``#abc`` or ``#AABBCC`` as ``#aabbcc``."""
    digits = value[1:].lower()
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    channels = []
    for i in (1, 3, 5):
        c = int(color[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    return BLACK if contrast(background, BLACK) >= contrast(background, WHITE) else WHITE


def parse_patch(body: dict[str, Any]) -> dict[str, Any]:
    """The record changes a PATCH asks for; ``null`` clears a field."""
    for name in READ_ONLY:
        if name in body:
            hint = " Upload the logo with PUT /v1/organization/logo." if name == "logoUrl" else ""
            raise invalid(f"'{name}' is read-only.{hint}", param=name)
    v.reject_unknown(body, FIELDS)
    if not body:
        raise invalid(f"Give at least one field to change: {', '.join(FIELDS)}.")
    changes: dict[str, Any] = {}
    for field, attribute in FIELDS.items():
        if field not in body:
            continue
        value = body[field]
        if value is None:
            changes[attribute] = None
        elif field == "displayName":
            changes[attribute] = v.string(
                body, field, min_length=1, max_length=100, pattern=NON_BLANK, hint="not blank"
            )
        elif field == "brandColor":
            if not isinstance(value, str) or not HEX.match(value):
                raise invalid("'brandColor' must be a hex colour such as #0a7cff.", param=field)
            changes[attribute] = normal_color(value)
        elif field == "supportEmail":
            if not isinstance(value, str) or len(value) > 254 or not EMAIL.match(value):
                raise invalid("'supportEmail' must be an e-mail address.", param=field)
            changes[attribute] = value
        else:
            changes[attribute] = check_https_url(value, field)
    return changes


def logo_path(org: Organization) -> str | None:
    return f"/brand/{org.id}/{org.logo_hash}" if org.logo_hash else None


def org_view(org: Organization, public_url: str) -> dict[str, Any]:
    path = logo_path(org)
    return {
        "id": org.id,
        "name": org.name,
        "displayName": org.display_name,
        "brandColor": org.brand_color,
        "supportEmail": org.support_email,
        "supportUrl": org.support_url,
        "privacyUrl": org.privacy_url,
        "termsUrl": org.terms_url,
        "logoUrl": f"{public_url}{path}" if path else None,
        "createdAt": isoformat(org.created_at),
        "updatedAt": isoformat(org.updated_at),
    }


def check_logo(data: bytes, content_type: str | None) -> str:
    """The media type of an upload, or the 4xx that says what is wrong with it. Sent as
    ``application/octet-stream`` (what SDK generators send), the bytes say the type."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    accepted = ", ".join(LOGO_TYPES)
    if declared not in (*LOGO_TYPES, BINARY):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"The logo's Content-Type must be one of {accepted} or {BINARY} (SVG is not accepted).",
        )
    if not data:
        raise invalid("The logo is empty: send the image's bytes as the body.")
    if len(data) > MAX_LOGO_BYTES:
        raise ApiError(
            413, "logo_too_large", f"The logo must be at most {MAX_LOGO_BYTES // 1024} KB."
        )
    found = sniff(data)
    if found is None:
        raise ApiError(
            415, "unsupported_media_type", f"The body is not an image of type {accepted}."
        )
    if found != declared and declared != BINARY:
        raise invalid(f"The body is {found}, but the Content-Type says {declared}.")
    size = dimensions(data)
    if size is None:
        raise invalid(f"The logo's {found} header cannot be read: send a whole image file.")
    width, height = size
    if not (0 < width <= MAX_LOGO_SIDE and 0 < height <= MAX_LOGO_SIDE):
        raise invalid(
            f"The logo is {width} x {height} pixels; it must be at most"
            f" {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} (and not empty)."
        )
    return found


class Branding:
    """The organisation record behind the API and the page."""

    def __init__(self, storage: Storage, clock: Clock, cache: HotCache) -> None:
        self.storage = storage
        self.clock = clock
        self.cache = cache

    async def get(self, org_id: str) -> Organization:
        org = await self.storage.get_org(org_id)
        if org is None:  # a key outlived its organisation: nothing of it to show
            raise ApiError(404, "resource_missing", "The organization does not exist.")
        return org

    async def update(self, org_id: str, changes: dict[str, Any]) -> Organization:
        changes = {**changes, "updated_at": self.clock()}
        org = await self.storage.update_org(org_id, changes)
        if org is None:
            raise ApiError(404, "resource_missing", "The organization does not exist.")
        await self.cache.forget("org", org_id)
        return org

    async def set_logo(self, org_id: str, data: bytes, media_type: str) -> Organization:
        digest = hashlib.sha256(data).hexdigest()
        return await self.update(
            org_id, {"logo": data, "logo_type": media_type, "logo_hash": digest}
        )

    async def remove_logo(self, org_id: str) -> Organization:
        return await self.update(org_id, {"logo": None, "logo_type": None, "logo_hash": None})

    async def for_page(self, org_id: str) -> Organization | None:
        """The organisation as the page shows it, through the hot layer, without the
        logo's bytes (the page links to them)."""

        async def fetch() -> dict[str, Any] | None:
            org = await self.storage.get_org(org_id)
            if org is None:
                return None
            return {**org.to_doc(), "logo": None}

        entry = await self.cache.load("org", org_id, fetch)
        return entry.record(Organization.from_doc) if entry is not None else None

    async def logo(self, org_id: str, digest: str) -> tuple[bytes, str] | None:
        """The logo's bytes and type, while ``digest`` is the organisation's current one
        (checked through the hot layer: a replaced logo is gone everywhere within a
        second); the bytes of a hash never change, so they are kept in-process."""
        current = await self.for_page(org_id)
        if current is None or current.logo_hash != digest:
            return None
        kept = _LOGOS.get(digest)
        if kept is not None:
            _LOGOS.move_to_end(digest)
            return kept
        org = await self.storage.get_org(org_id)
        if org is None or org.logo is None or org.logo_hash != digest or not org.logo_type:
            return None
        kept = _LOGOS[digest] = (org.logo, org.logo_type)
        while len(_LOGOS) > LOGO_CACHE:
            _LOGOS.popitem(last=False)
        return kept


@dataclasses.dataclass(frozen=True, slots=True)
class Brand:
    """What the page shows of who is asking."""

    name: str
    color: str | None = None
    on_color: str | None = None
    logo: str | None = None
    support: str | None = None
    privacy: str | None = None
    terms: str | None = None


def brand_of(link: OnboardingLink, org: Organization | None) -> Brand:
    """The link's displayName, else the organisation's, else the link's name."""
    name = link.display_name or (org.display_name if org else None) or link.name
    if org is None:
        return Brand(name)
    support = org.support_url or (f"mailto:{org.support_email}" if org.support_email else None)
    color = org.brand_color
    return Brand(
        name=name,
        color=color,
        on_color=text_on(color) if color else None,
        logo=logo_path(org),
        support=support,
        privacy=org.privacy_url,
        terms=org.terms_url,
    )
