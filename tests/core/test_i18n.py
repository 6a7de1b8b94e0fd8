"""The hosted pages' catalogs: complete, consistent and translated, and the choice of
language (Babel's negotiation and plural rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_onboard.core import i18n
from edge_onboard.hosted.page import ERROR_MESSAGES, SCRIPT_MESSAGES
from edge_onboard.meta.sandbox import dialog as sandbox_dialog
from edge_onboard.onboarding.reports import REASONS

FIELD = re.compile(r"\{[a-z_]+\}")
ENGLISH = i18n.catalog("en_US")
# Names that stay as they are in every language.
NAMES = {"WhatsApp", "WhatsApp Business", "Facebook", "Meta", "JavaScript"}


def singular_keys(cat: i18n.Catalog) -> set[str]:
    return {key for key in cat.messages if "." not in key}


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_catalog_has_every_message(locale: str) -> None:
    cat = i18n.catalog(locale)
    assert singular_keys(cat) == singular_keys(ENGLISH)
    assert "ratelimit_body.other" in cat.messages
    for key in singular_keys(cat):
        # The same fields, so nothing is lost or left unfilled.
        assert sorted(FIELD.findall(cat.messages[key])) == sorted(
            FIELD.findall(ENGLISH.messages[key])
        ), (locale, key)


@pytest.mark.parametrize("locale", [name for name in i18n.SUPPORTED if name != "en_US"])
def test_nothing_is_left_in_english(locale: str) -> None:
    cat = i18n.catalog(locale)
    same = [
        key
        for key in singular_keys(cat)
        if cat.messages[key] == ENGLISH.messages[key] and cat.messages[key] not in NAMES
    ]
    assert same == []


def test_every_error_code_has_a_message() -> None:
    codes = set(ERROR_MESSAGES)
    assert set(REASONS) <= codes
    for key in [*ERROR_MESSAGES.values(), *SCRIPT_MESSAGES]:
        assert key in ENGLISH.messages


def test_every_sentence_of_the_sandbox_dialog_is_in_the_catalog() -> None:
    template = (
        Path(__file__).resolve().parents[2] / "pages" / "sandbox" / "dialog.html"
    ).read_text()
    placeholders = set(re.findall(r"\{\{([a-z_]+)\}\}", template))
    dialog = {key for key in ENGLISH.messages if key.startswith(sandbox_dialog.PREFIX)}
    # Every catalog sentence is used, in the HTML or by the script, and nothing else.
    assert dialog == (placeholders | set(sandbox_dialog.SCRIPT_MESSAGES)) - {
        "lang",
        "dir",
        "sandbox",
        "messages",
    }
    # No sentence is left in the HTML: between tags, only placeholders and Meta's names.
    body = re.sub(r"<script[^>]*>.*?</script>|<[^>]+>", "\n", template, flags=re.S)
    words = {line.strip() for line in body.splitlines()} - {"", "—", "{}"}
    assert {w for w in words if not re.fullmatch(r"\{\{[a-z_]+\}\}|[A-Z_]+", w)} == set()
    for locale in i18n.SUPPORTED:
        page = sandbox_dialog.render(locale, "000000").decode()
        assert "{{" not in page and "{extras}" not in page and "{verify_code}" not in page


def test_plurals_follow_each_languages_rules() -> None:
    arabic = i18n.catalog("ar_AR")
    assert arabic.plural("ratelimit_body", 1) == "انتظر ثانية واحدة ثم أعد تحميل الصفحة."
    assert arabic.plural("ratelimit_body", 2) == "انتظر ثانيتين ثم أعد تحميل الصفحة."
    assert "ثوانٍ" in arabic.plural("ratelimit_body", 5)
    assert ENGLISH.plural("ratelimit_body", 1) == "Please wait 1 second, then reload the page."
    assert i18n.catalog("pt_BR").plural("ratelimit_body", 0).startswith("Aguarde 0 segundo ")
    assert "1.000" in i18n.catalog("de_DE").plural("ratelimit_body", 1000)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en_US"),
        ("", "en_US"),
        ("pt-BR,pt;q=0.9", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("es-ES", "es_ES"),
        ("es-MX,es;q=0.9", "es_LA"),
        ("es", "es_LA"),
        ("ar-EG", "ar_AR"),
        ("in-ID", "id_ID"),
        ("ja,hi;q=0.5", "hi_IN"),
        ("fr;q=0.1, de;q=0.9", "de_DE"),
        ("de;q=0, fr", "fr_FR"),
        ("ja, zh-CN", "en_US"),
        ("*", "en_US"),
        ("x" * 600, "en_US"),
        ("de;q=2", "en_US"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_the_links_locale_wins() -> None:
    assert i18n.page_locale("tr_TR", "de-DE") == "tr_TR"
    assert i18n.page_locale(None, "de-DE") == "de_DE"
    # A link made before the list was enforced: its language, then the browser's.
    assert i18n.page_locale("pt_PT", "de") == "pt_BR"
    assert i18n.page_locale("ja_JP", "de") == "de_DE"


def test_direction_and_tags() -> None:
    assert i18n.catalog("ar_AR").rtl and i18n.catalog("ar_AR").lang == "ar"
    assert i18n.catalog("es_LA").lang == "es-419"
    assert not i18n.catalog("hi_IN").rtl
