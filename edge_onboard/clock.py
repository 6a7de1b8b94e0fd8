"""Time, injectable: tests pass their own clock instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from edge_onboard.storage.models import utc_ms

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return utc_ms(datetime.now(UTC))


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2026-11-25T00:34:54.123Z``."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
