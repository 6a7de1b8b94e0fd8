"""Where the end-user goes after the hosted page: the customer's ``redirectUrl`` with
the result, or, for a link that can no longer be used, its ``refreshUrl`` (the customer
mints a fresh link there, as with Stripe's ``refresh_url``). Never a dead end when the
customer gave either."""

from __future__ import annotations

from urllib.parse import urlencode

from edge_onboard.core.validation import ascii_digits
from edge_onboard.storage import OnboardingLink

GONE = {
    "expired": "This onboarding link has expired.",
    "deleted": "This onboarding link was deleted.",
}


def with_query(url: str, params: list[tuple[str, str]]) -> str:
    """``url`` with ``params`` added to its query (before any ``#fragment``)."""
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}{urlencode(params)}{hash_mark}{fragment}"


def _ids(link: OnboardingLink) -> list[tuple[str, str]]:
    params = [("onboarding_link_id", link.id)]
    if link.external_id:
        params.append(("external_id", link.external_id))
    return params


def redirect_url(
    link: OnboardingLink,
    *,
    ok: bool,
    code: str | None = None,
    message: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> str | None:
    """``redirectUrl`` with the result in its query (and ``extra`` after it)."""
    if not link.redirect_url:
        return None
    params = [*_ids(link), ("status", "success" if ok else "error"), *(extra or [])]
    if not ok:
        params.append(("error", (message or "Signup failed")[:200]))
        params.append(("error_code", code or "signup_failed"))
    return with_query(link.redirect_url, params)


def dead_end_url(link: OnboardingLink, reason: str) -> str | None:
    """For an ``expired`` or ``deleted`` link: ``refreshUrl?…&reason=…``, else
    ``redirectUrl?…&status=error&error_code=link_…``, else None (the page says so)."""
    if link.refresh_url:
        return with_query(link.refresh_url, [*_ids(link), ("reason", reason)])
    return redirect_url(link, ok=False, code=f"link_{reason}", message=GONE[reason])


# ITU country codes of one and two digits; every other one has three.
_CC1 = frozenset("17")
_CC2 = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 "
    "62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)


def masked_phone(number: str | None) -> str | None:
    """An E.164 number as the end-user may see it on a shared screen: its country code
    and last three digits, ``+55 ••••••••234``."""
    if not number or not number.startswith("+") or not ascii_digits(number[1:]):
        return None
    digits = number[1:]
    if len(digits) < 7:
        return None
    head = 1 if digits[0] in _CC1 else 2 if digits[:2] in _CC2 else 3
    return f"+{digits[:head]} {'•' * (len(digits) - head - 3)}{digits[-3:]}"
