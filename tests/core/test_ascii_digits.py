"""Digits from outside (a header, a query, a pass, a number) are ASCII digits or nothing:
``str.isdigit`` also takes "²" (which ``int()``/``float()`` then refuse: a 500) and other
scripts' digits (read as a number nobody sent)."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_onboard.core.validation import ascii_digits
from edge_onboard.meta.graph import e164
from edge_onboard.onboarding.page_verification import read_pass
from edge_onboard.onboarding.returns import masked_phone
from edge_onboard.webhooks.sender import parse_retry_after


def test_only_ascii_digits_are_digits() -> None:
    assert ascii_digits("0123456789")
    assert ascii_digits("123", most=3) and not ascii_digits("1234", most=3)
    for other in ("", "\u00b2", "1\u00b2", "\u0661\u0662", "\uff11", "12a", " 1", "-1", "1.0"):
        assert not ascii_digits(other), other


def test_what_reads_digits_from_outside_takes_ascii_only() -> None:
    assert read_pass("\u00b2.abc") is None and read_pass("\u0661.abc") is None
    assert read_pass("1234567890123.abc") is None  # more than 12 digits
    assert read_pass("17.abc") == (17, "abc")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("\u00b2", now) is None
    assert parse_retry_after("30", now) == 30.0
    assert e164("+1 555\u00b2078 3881") == "+15550783881"
    assert masked_phone("+1555\u00b20783881") is None
