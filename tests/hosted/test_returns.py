"""Where the end-user goes after the page: the customer's URLs, never a dead end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from edge_onboard.onboarding.returns import dead_end_url, masked_phone, redirect_url
from edge_onboard.storage import LinkStatus, OnboardingLink

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def link(**fields: Any) -> OnboardingLink:
    return OnboardingLink("l1", "o1", "Shop", LinkStatus.EXPIRED, NOW, NOW, **fields)


def test_refresh_url_first_then_redirect_url_then_nothing() -> None:
    both = link(
        external_id="c1",
        refresh_url="https://a.example/new?src=mail#top",
        redirect_url="https://a.example/done",
    )
    url = dead_end_url(both, "expired")
    assert url is not None and url.startswith("https://a.example/new?") and url.endswith("#top")
    assert parse_qs(urlsplit(url).query) == {
        "src": ["mail"],
        "onboarding_link_id": ["l1"],
        "external_id": ["c1"],
        "reason": ["expired"],
    }
    back = dead_end_url(link(redirect_url="https://a.example/done"), "deleted")
    assert back is not None
    query = parse_qs(urlsplit(back).query)
    assert query["status"] == ["error"] and query["error_code"] == ["link_deleted"]
    assert dead_end_url(link(), "expired") is None
    done = redirect_url(link(redirect_url="https://a.example/done?"), ok=True)
    assert done == "https://a.example/done?onboarding_link_id=l1&status=success"


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+5511987654234", "+55 ••••••••234"),
        ("+15550381234", "+1 •••••••234"),
        ("+919876543210", "+91 •••••••210"),
        ("+971501234567", "+971 ••••••567"),
        ("+123", None),
        ("5511987654234", None),
        (None, None),
    ],
)
def test_numbers_are_masked(number: str | None, shown: str | None) -> None:
    assert masked_phone(number) == shown
