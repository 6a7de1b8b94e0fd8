"""What the hosted page reports when a signup did not finish: a reason from our catalog,
and Meta's data as data.

Anyone holding a link id can post a report, so nothing in it is shown to anyone as
words: ``lastError.message``, the callback's answer and the customer's redirect
(``error=``) carry the catalog's message for the reason. Meta's ``current_step``,
``error_code``/``error_id`` and ``session_id`` are kept on ``lastError`` only after a
length and character check, for the customer's support staff. A free-text ``message``
(older pages sent one) is accepted and dropped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge_onboard.core import validation as v
from edge_onboard.core.errors import invalid

# reason -> what the customer and the end user read.
REASONS: dict[str, str] = {
    "signup_cancelled": "The signup was cancelled before it finished.",
    "meta_signup_error": "Meta could not complete the signup. Please try again.",
    "missing_code": "Meta did not confirm the signup. Please try again.",
    "missing_session_info": "Meta did not say which WhatsApp account was chosen. Please try again.",
    "window_closed": "The Meta window was closed before the signup finished.",
}
FIELDS = frozenset({"code", "step", "metaErrorCode", "sessionId", "message"})
_STEP = re.compile(r"^[A-Z0-9_]{1,64}\Z")
_META_CODE = re.compile(r"^[0-9]{1,16}\Z")
_SESSION = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")


@dataclasses.dataclass(frozen=True, slots=True)
class Abandon:
    reason: str
    step: str | None = None
    meta_error_code: str | None = None
    session_id: str | None = None

    @property
    def message(self) -> str:
        return REASONS[self.reason]

    def last_error(self, now: datetime) -> dict[str, Any]:
        """The link's ``last_error`` record."""
        record: dict[str, Any] = {"code": self.reason, "message": self.message, "at": now}
        for name, value in (
            ("meta_step", self.step),
            ("meta_error_code", self.meta_error_code),
            ("meta_session_id", self.session_id),
        ):
            if value is not None:
                record[name] = value
        return record


def parse_abandon(error: object) -> Abandon:
    """The callback's ``error`` object. Its ``code`` is a reason from the catalog, or
    Meta's numeric error code (what older pages sent), which means ``meta_signup_error``."""
    if not isinstance(error, dict):
        raise invalid("'error' must be an object.", param="error")
    v.reject_unknown(error, FIELDS, where="error.")
    message = error.get("message")  # checked, then dropped: see above
    if message is not None and (not isinstance(message, str) or len(message) > 500):
        raise invalid(
            "'error.message' must be a string of at most 500 characters.", param="error.message"
        )
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    meta_code = _checked(error, "metaErrorCode", _META_CODE, "digits")
    if code is None:
        reason = "meta_signup_error" if meta_code else "signup_cancelled"
    elif isinstance(code, str) and _META_CODE.match(code):
        reason, meta_code = "meta_signup_error", meta_code or code
    elif isinstance(code, str) and code in REASONS:
        reason = code
    else:
        raise invalid(
            f"'error.code' must be one of {', '.join(sorted(REASONS))}, or Meta's numeric code.",
            param="error.code",
        )
    return Abandon(
        reason=reason,
        step=_checked(error, "step", _STEP, "Meta's step name, e.g. PHONE_NUMBER_SETUP"),
        meta_error_code=meta_code,
        session_id=_checked(error, "sessionId", _SESSION, "letters, digits, '.', '_' or '-'"),
    )


def _checked(body: Mapping[str, Any], name: str, pattern: re.Pattern[str], hint: str) -> str | None:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and pattern is _META_CODE:
        value = str(value)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise invalid(f"'error.{name}' is not valid: {hint}.", param=f"error.{name}")
    return value
