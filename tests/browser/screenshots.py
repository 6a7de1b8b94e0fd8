"""The README's screenshots of the hosted page, regenerated from the real page:

    python -m tests.browser.screenshots [--out docs/screenshots]

A sandbox server with a branded organisation; the pending, error, success and expired
states, the verification step of an unverified number (its first view and a wrong
code), and an update link's states (reconnect after the business removed the app,
another account refused, the business profile, an invalid field, done), in Brazilian
Portuguese and Arabic (right to left), at 390 and 1280 px. ``--only update`` makes the
update link's states alone."""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from tests.browser.support import ARGS, CHROMIUM, Site, run_popup
from tests.live import create_key, run_cli, serve

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("pt_BR", "ar_AR")
WIDTHS = {390: 844, 1280: 860}
BRAND = "#5b2a86"


def logo(size: int = 96) -> bytes:
    """A round mark in the brand's colour, as a PNG."""
    r, g, b = (int(BRAND[i : i + 2], 16) for i in (1, 3, 5))
    rows = []
    centre = (size - 1) / 2
    for y in range(size):
        row = bytearray(b"\x00")
        for x in range(size):
            d = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5 / (size / 2)
            if d > 1:
                row += b"\x00\x00\x00\x00"
            elif 0.42 < d < 0.62:
                row += b"\xff\xff\xff\xff"
            else:
                row += bytes((r, g, b, 255))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def shoot(site: Site, browser: Any, out: Path, locale: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": WIDTHS[width]})
    page = context.new_page()

    def save(state: str) -> None:
        page.wait_for_timeout(300)  # fonts and the logo settle
        page.screenshot(path=str(out / f"{locale}-{state}-{width}.png"))

    page.goto(site.link(locale=locale)["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    save("pending")
    run_popup(page, cancel_step="PHONE_NUMBER_VERIFICATION")
    page.wait_for_selector("#retry", state="visible")
    page.evaluate("document.activeElement.blur()")
    save("error")
    page.goto(site.link(locale=locale)["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page)
    page.wait_for_selector("#success", state="visible")
    page.evaluate("document.activeElement.blur()")
    save("success")
    # An unverified number: the page goes on to its code (edge_onboard/hosted/verification.py).
    page.goto(site.link(locale=locale)["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    run_popup(page, scenario="unverified")
    page.wait_for_selector("#verify", state="visible")
    page.evaluate("document.activeElement.blur()")
    save("verify")
    page.click("#send-code")
    page.wait_for_selector("#code-form", state="visible")
    page.keyboard.insert_text("123456")
    page.click("#check-code")
    page.wait_for_selector("#verify-error", state="visible")
    page.evaluate("document.activeElement.blur()")
    save("verify-wrong-code")
    expired = site.link(locale=locale)
    site.expire(expired["id"])
    time.sleep(1.2)  # the server's copy of the link lives a second
    page.goto(expired["hostedUrl"])
    save("expired")
    context.close()


def _api(site: Site, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{site.base}{path}", json=body, headers=site.auth)
    response.raise_for_status()
    return response.json().get("data")


def _removed_phone(test: Site) -> tuple[dict[str, Any], dict[str, Any]]:
    """A test number whose business then removed the app (the fake's PARTNER_REMOVED)."""
    link = test.link()
    done = _api(test, "POST", f"/v1/test-helpers/onboarding-links/{link['id']}/complete", {})
    waba = _api(test, "GET", f"/v1/wabas/{done['wabaId']}")
    _api(test, "POST", "/_sandbox/remove-access", {"waba_id": waba["metaWabaId"]})
    deadline = time.monotonic() + 10
    while _api(test, "GET", f"/v1/phones/{done['phoneNumberId']}")["status"] != "disconnected":
        assert time.monotonic() < deadline, "PARTNER_REMOVED did not arrive"
        time.sleep(0.1)
    return {"id": done["phoneNumberId"]}, waba


def shoot_updates(test: Site, browser: Any, out: Path, locale: str, width: int) -> None:
    """An update link's states (edge_onboard/onboarding/updates.py)."""
    context = browser.new_context(viewport={"width": width, "height": WIDTHS[width]})
    page = context.new_page()

    def save(state: str) -> None:
        page.evaluate("document.activeElement.blur()")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / f"{locale}-{state}-{width}.png"))

    phone, waba = _removed_phone(test)
    link = test.link(type="update", phoneNumberId=phone["id"], locale=locale)
    page.goto(link["hostedUrl"])
    page.wait_for_selector("#connect:enabled")
    save("update-reconnect")
    run_popup(page)  # a new account, not the one the link updates: refused
    page.wait_for_selector("#retry", state="visible")
    save("update-other-account")
    run_popup(page, button="#retry", account=waba)
    page.wait_for_selector("#profile", state="visible")
    save("update-profile")
    page.fill("#pf-email", "ajuda@@aurora")
    page.click("#profile-save")
    page.wait_for_selector("#profile-error", state="visible")
    save("update-profile-invalid")
    page.fill("#pf-email", "ajuda@aurora.example")
    page.click("#profile-save")
    page.wait_for_selector("#success", state="visible")
    save("update-done")
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", choices=("all", "update"), default="all")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        key = create_key(cwd)
        with serve(cwd, "--sandbox") as (base, _), sync_playwright() as playwright:
            site = Site(base, key, cwd)
            site.brand(
                displayName="Loja Aurora",
                brandColor=BRAND,
                supportEmail="ajuda@aurora.example",
                privacyUrl="https://aurora.example/privacidade",
                termsUrl="https://aurora.example/termos",
            )
            site.logo(logo())
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            made = run_cli("keys", "create", "--org", "acme", "--test", cwd=cwd).stdout
            test = Site(base, made.strip().splitlines()[-1], cwd)
            for locale in LOCALES:
                for width in WIDTHS:
                    if args.only == "all":
                        shoot(site, browser, args.out, locale, width)
                    shoot_updates(test, browser, args.out, locale, width)
            browser.close()
    for path in sorted(args.out.glob("*.png")):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
