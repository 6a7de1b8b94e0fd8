"""The sandbox's stand-in for Meta's Embedded Signup popup, rendered in the locale the
hosted page passes (``/_sandbox/dialog?locale=pt_BR``), every sentence from the message
catalogs. Meta's identifiers (events, steps, option values) stay as they are: they are
what a developer tests against."""

from __future__ import annotations

import functools
import html
from importlib import resources

from edge_onboard.core import i18n
from edge_onboard.core.templates import fill, script_json

PREFIX = "dialog_"
# What dialog.js writes itself (the rest is in the HTML).
SCRIPT_MESSAGES = (
    "dialog_finishing",
    "dialog_finish_failed",
    "dialog_report_failed",
    "dialog_meta_error_message",
)
# Identifiers written into sentences as they are, never translated.
IDENTIFIERS = {
    "extras": "<code>extras</code>",
    "fields": "error_message, error_code",
}


def locale_of(requested: str | None) -> str:
    """The dialog's locale: the page's (or its language's), else English."""
    return i18n.page_locale(requested, None)


@functools.cache
def render(locale: str, verify_code: str) -> bytes:
    """The dialog in one of ``i18n.SUPPORTED`` (rendered once per locale); ``verify_code``
    is the code that verifies an unverified sandbox number."""
    cat = i18n.catalog(locale)
    identifiers = {**IDENTIFIERS, "verify_code": verify_code}
    values = {
        key: i18n.fill(html.escape(cat.text(key)), identifiers)
        for key in i18n.catalog(i18n.DEFAULT).messages
        if key.startswith(PREFIX)
    }
    values |= {
        "lang": cat.lang,
        "dir": "rtl" if cat.rtl else "ltr",
        "sandbox": html.escape(cat.text("sandbox")),
        "messages": script_json({key: cat.text(key) for key in SCRIPT_MESSAGES}),
    }
    source = resources.files("edge_onboard.pages").joinpath("sandbox", "dialog.html")
    return fill(source.read_text(), values).encode()
