"""The hosted pages' languages: one message catalog per locale (``edge_onboard/locales``,
gettext ``.po`` files keyed by message id), read with Babel, which also supplies the
plural rules, number formats, text direction and the negotiation of ``Accept-Language``.

Locales are named as Meta names them (``es_LA``, ``ar_AR``), so a link's ``locale`` is
also the locale of Meta's SDK; each maps to the CLDR locale whose rules apply
(``es_419``, ``ar``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from importlib import resources

from babel import Locale, negotiate_locale
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DEFAULT = "en_US"
# Meta's locale name -> the CLDR locale whose plural, number and direction rules apply.
CLDR = {
    "en_US": "en_US",
    "es_LA": "es_419",
    "es_ES": "es_ES",
    "pt_BR": "pt_BR",
    "id_ID": "id_ID",
    "hi_IN": "hi_IN",
    "ar_AR": "ar",
    "fr_FR": "fr_FR",
    "de_DE": "de_DE",
    "it_IT": "it_IT",
    "tr_TR": "tr_TR",
}
SUPPORTED = tuple(CLDR)
# A browser language without a territory we have (pt-PT, es-MX, ar-EG, de-AT, bare "es"),
# matched by its language: Latin American Spanish and Brazilian Portuguese are what most
# of WhatsApp's Spanish and Portuguese speakers read.
_BY_LANGUAGE = {
    "en": "en-US",
    "es": "es-LA",
    "pt": "pt-BR",
    "id": "id-ID",
    "in": "id-ID",  # the old ISO code some Android versions still send
    "hi": "hi-IN",
    "ar": "ar-AR",
    "fr": "fr-FR",
    "de": "de-DE",
    "it": "it-IT",
    "tr": "tr-TR",
}
_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
_QUALITY = re.compile(r"^q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")
_FIELD = re.compile(r"\{([a-z_]+)\}")
MAX_ACCEPT_LANGUAGE = 512


@dataclasses.dataclass(frozen=True, slots=True)
class Catalog:
    locale: str  # Meta's name: en_US, ar_AR
    messages: Mapping[str, str]
    cldr: Locale

    @property
    def lang(self) -> str:
        """The BCP 47 tag for ``<html lang>``: es-419 and ar, not Meta's es-LA and ar-AR
        (which would name Laos and Argentina)."""
        return str(self.cldr).replace("_", "-")

    @property
    def rtl(self) -> bool:
        return self.cldr.text_direction == "rtl"

    def text(self, key: str, **values: str) -> str:
        """The message, its ``{fields}`` filled in one pass (a value that looks like a
        field stays text)."""
        message = self.messages.get(key) or catalog(DEFAULT).messages[key]
        return fill(message, values)

    def plural(self, key: str, count: int, **values: str) -> str:
        """The form of ``key`` for ``count`` by the locale's plural rules (``key.one``,
        ``key.few``, …; ``key.other`` when the catalog has no form of its own), with
        ``{count}`` written in the locale's digits."""
        form = self.messages.get(f"{key}.{self.cldr.plural_form(count)}")
        message = form or self.messages.get(f"{key}.other") or self.text(f"{key}.other")
        return fill(message, {**values, "count": format_decimal(count, locale=self.cldr)})


def fill(message: str, values: Mapping[str, str]) -> str:
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), message)


@functools.cache
def catalog(locale: str) -> Catalog:
    """The catalog of one of ``SUPPORTED`` (read once per process)."""
    if locale not in CLDR:
        raise KeyError(locale)
    source = resources.files("edge_onboard.core.locales").joinpath(f"{locale}.po")
    with source.open("rb") as handle:
        po = read_po(handle, locale=CLDR[locale], ignore_obsolete=True)
    messages = {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}
    return Catalog(locale, messages, Locale.parse(CLDR[locale]))


def supported(locale: str) -> str | None:
    """``locale`` if the pages have it, else the locale of its language, else None."""
    if locale in CLDR:
        return locale
    language = locale.split("_", 1)[0].lower()
    match = _BY_LANGUAGE.get(language)
    return match.replace("-", "_") if match else None


@functools.lru_cache(maxsize=1024)
def negotiate(accept_language: str | None) -> str:
    """The best of ``SUPPORTED`` for an ``Accept-Language`` header, else English."""
    if not accept_language or len(accept_language) > MAX_ACCEPT_LANGUAGE:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        match = _QUALITY.match(params.strip().replace(" ", "")) if params else None
        if params and match is None:
            continue
        if match is not None:
            quality = float(match.group(1))
        if quality > 0 and _TAG.match(tag):
            ranked.append((-quality, position, tag))
    preferred: list[str] = []
    for _, _, tag in sorted(ranked):
        # RFC 4647 lookup: the full tag, then its language.
        preferred += [tag, tag.split("-", 1)[0]]
    available = [name.replace("_", "-") for name in SUPPORTED]
    found = negotiate_locale(preferred, available, sep="-", aliases=_BY_LANGUAGE)
    if found is None:
        return DEFAULT
    return next(name for name in SUPPORTED if name.lower() == found.replace("-", "_").lower())


def page_locale(link_locale: str | None, accept_language: str | None) -> str:
    """The link's locale wins (or its language's), then the browser's, then English."""
    if link_locale:
        chosen = supported(link_locale)
        if chosen is not None:
            return chosen
    return negotiate(accept_language)
