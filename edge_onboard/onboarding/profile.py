"""A number's WhatsApp business profile: ``GET/PATCH /v1/phones/{id}/profile`` and ``PUT
/v1/phones/{id}/profile/photo``.

Meta's limits are checked here, before Meta is called, from one declaration (``TEXTS``,
``VERTICALS``, the website rules) that the OpenAPI schema is built from too
(``profile_schema``). The photo goes through Meta's resumable upload for its handle.
"""

from __future__ import annotations

import struct
from typing import Any
from urllib.parse import urlsplit

from edge_onboard.core.crypto import SecretBox
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.meta.graph import GraphClient, GraphError
from edge_onboard.meta.modes import MetaModes
from edge_onboard.onboarding.branding import BINARY, EMAIL, sniff
from edge_onboard.onboarding.phones import PhoneService, business_token
from edge_onboard.storage import PhoneStatus, Storage

# Field -> (min, max) characters, as Meta's Business Profiles reference gives them.
TEXTS = {"about": (1, 139), "description": (0, 512), "address": (0, 256), "email": (0, 128)}
MAX_WEBSITES = 2
MAX_WEBSITE = 256
# Meta's list of business categories.
VERTICALS = (
    "UNDEFINED OTHER AUTO BEAUTY APPAREL EDU ENTERTAIN EVENT_PLAN FINANCE GROCERY GOVT "
    "HOTEL HEALTH NONPROFIT PROF_SERVICES RETAIL TRAVEL RESTAURANT NOT_A_BIZ"
).split()
PHOTO_TYPES = ("image/jpeg", "image/png")
MIN_PHOTO_SIDE = 192  # Meta: smaller pictures are blurred when WhatsApp resizes them
# Meta takes up to 5 MB; this API's request bodies stop at 1 MB (core/validation.py).
MAX_PHOTO_BYTES = 1024 * 1024
FIELDS = (*TEXTS, "websites", "vertical")


def profile_schema() -> dict[str, Any]:
    """The OpenAPI schema of the PATCH body, from the same limits the validator uses."""
    properties: dict[str, Any] = {
        name: {"type": "string", "minLength": low, "maxLength": high}
        for name, (low, high) in TEXTS.items()
    }
    properties["email"]["format"] = "email"
    # What EMAIL accepts, said as the organisation's supportEmail says it (a subset: the
    # schema never calls valid an address the check refuses, such as one with a quote).
    properties["email"]["pattern"] = (
        r"^$|^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$"
    )
    properties["websites"] = {
        "type": "array",
        "maxItems": MAX_WEBSITES,
        "items": {"type": "string", "format": "uri", "maxLength": MAX_WEBSITE},
    }
    properties["vertical"] = {"type": "string", "enum": VERTICALS}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def parse_patch(body: dict[str, Any]) -> dict[str, Any]:
    """The fields to send Meta, or the 400 that names the first wrong one."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise invalid(
            f"Received unknown parameter: {unknown[0]}", param=unknown[0], code="unknown_parameter"
        )
    if not body:
        raise invalid(
            f"Give at least one of {', '.join(FIELDS)}.", param=FIELDS[0], code="parameter_missing"
        )
    for name, (low, high) in TEXTS.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise invalid(f"'{name}' must be a string of {low} to {high} characters.", param=name)
        if name == "email" and value and not EMAIL.match(value):
            raise invalid("'email' must be an email address.", param=name)
    if "websites" in body:
        sites = body["websites"]
        if not isinstance(sites, list) or len(sites) > MAX_WEBSITES:
            raise invalid(f"'websites' must be a list of at most {MAX_WEBSITES}.", param="websites")
        for index, site in enumerate(sites):
            if not _website(site):
                raise invalid(
                    f"'websites[{index}]' must be an http(s) URL of at most {MAX_WEBSITE} "
                    "characters.",
                    param=f"websites[{index}]",
                )
    if "vertical" in body and body["vertical"] not in VERTICALS:
        raise invalid(f"'vertical' must be one of {', '.join(VERTICALS)}.", param="vertical")
    return dict(body)


def _website(site: Any) -> bool:
    """An http(s) URL with a host, of at most ``MAX_WEBSITE`` characters (one urlsplit
    refuses, such as ``http://[x``, is not one)."""
    if not isinstance(site, str) or len(site) > MAX_WEBSITE:
        return False
    try:
        parts = urlsplit(site)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def profile_view(raw: dict[str, Any]) -> dict[str, Any]:
    """Meta's profile as the API shows it (absent fields are null, websites a list)."""
    view: dict[str, Any] = {name: raw.get(name) for name in TEXTS}
    view["websites"] = [w for w in raw.get("websites") or [] if isinstance(w, str)]
    view["vertical"] = raw.get("vertical") or None
    view["photoUrl"] = raw.get("profile_picture_url")
    return view


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, read from its header; None if unreadable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        # Start of frame: every SOFn but DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def check_photo(data: bytes, content_type: str | None) -> str:
    """The photo's media type, or the 4xx that says what is wrong with it. Sent as
    ``application/octet-stream`` (what SDK generators send), the bytes say the type."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in (*PHOTO_TYPES, BINARY):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"The photo's Content-Type must be image/jpeg or image/png (or {BINARY}: the bytes"
            " then say which).",
        )
    if not data:
        raise invalid("The photo is empty: send the image's bytes as the body.")
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(413, "photo_too_large", "The photo must be at most 1 MB.")
    found = sniff(data)
    if found not in PHOTO_TYPES or (declared != BINARY and found != declared):
        wanted = "JPEG or PNG" if declared == BINARY else declared
        raise invalid(f"The body is not an image of type {wanted}.")
    size = image_size(data)
    if size is None:
        raise invalid("The photo's size could not be read: send a plain JPEG or PNG.")
    width, height = size
    if width != height:
        raise invalid(f"The photo must be square; it is {width} by {height} pixels.")
    if width < MIN_PHOTO_SIDE:
        raise invalid(f"The photo must be at least {MIN_PHOTO_SIDE} pixels a side.")
    return found


def _meta_error(exc: GraphError, action: str) -> ApiError:
    if exc.unreachable:
        return ApiError(502, "meta_unavailable", "Meta could not be reached; try again shortly.")
    return ApiError(
        422, "meta_rejected", f"Meta refused to {action} (code {exc.code}): {exc.message}"
    )


class ProfileService:
    def __init__(
        self, storage: Storage, box: SecretBox, phones: PhoneService, meta: MetaModes
    ) -> None:
        self.storage = storage
        self.box = box
        self.phones = phones
        self.meta = meta

    async def _target(
        self, org_id: str, phone_id: str, livemode: bool
    ) -> tuple[str, GraphClient, str]:
        phone = await self.phones.get(org_id, phone_id, livemode=livemode)
        if phone.status is PhoneStatus.DISCONNECTED:
            raise ApiError(
                409, "phone_disconnected", "The business took back access to this number."
            )
        graph = self.meta.graph(phone.livemode)
        if graph is None:
            raise ApiError(503, "meta_not_configured", "No Meta app is configured.")
        waba = await self.storage.get_waba(phone.waba_id)
        if waba is None:
            raise ApiError(409, "phone_disconnected", "This number has no WABA.")
        return phone.meta_phone_number_id, graph, business_token(self.box, waba)

    async def get(self, org_id: str, phone_id: str, *, livemode: bool) -> dict[str, Any]:
        """The profile as Meta has it now."""
        meta_id, graph, token = await self._target(org_id, phone_id, livemode)
        try:
            return profile_view(await graph.business_profile(meta_id, token))
        except GraphError as exc:
            raise _meta_error(exc, "read the business profile") from exc

    async def update(
        self, org_id: str, phone_id: str, body: dict[str, Any], *, livemode: bool
    ) -> dict[str, Any]:
        """Change the fields given (checked first), then the profile as Meta has it."""
        fields = parse_patch(body)
        meta_id, graph, token = await self._target(org_id, phone_id, livemode)
        try:
            await graph.set_business_profile(meta_id, token, fields)
            return profile_view(await graph.business_profile(meta_id, token))
        except GraphError as exc:
            raise _meta_error(exc, "change the business profile") from exc

    async def set_photo(
        self, org_id: str, phone_id: str, data: bytes, content_type: str | None, *, livemode: bool
    ) -> dict[str, Any]:
        """Upload the photo (resumable upload), set it by its handle, return the profile."""
        media_type = check_photo(data, content_type)
        meta_id, graph, token = await self._target(org_id, phone_id, livemode)
        name = "profile." + ("png" if media_type == "image/png" else "jpg")
        try:
            handle = await graph.upload_handle(token, data, media_type, name)
            await graph.set_business_profile(meta_id, token, {"profile_picture_handle": handle})
            return profile_view(await graph.business_profile(meta_id, token))
        except GraphError as exc:
            raise _meta_error(exc, "set the profile photo") from exc
