"""One logging set-up for every command, which cannot print a secret.

Every log record, whoever creates it (our code, httpx, pymongo, hypercorn), is
redacted when it is made: a record factory replaces its message with one in which
URL query values, ``Authorization`` values, API keys, webhook secrets, Meta tokens and
the values of secret-named fields (``pin``, ``access_token``, ``client_secret``, ``token``
…) read ``[redacted]``. Handlers format tracebacks later, so the formatter redacts the
whole formatted text again. Third-party loggers that print request URLs stay at
WARNING whatever ``EDGE_LOG_LEVEL`` says.

``EDGE_LOG_FORMAT=json`` writes one JSON object per line; ``text`` (the default) the
familiar ``time LEVEL logger: message``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

REDACTED = "[redacted]"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR
FORMATS = ("text", "json")
# Loggers that print request URLs, headers or documents at INFO/DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "pymongo", "hypercorn.error", "hypercorn.access")

# Field names whose values are secrets wherever they appear: query parameters,
# JSON or form fields, "name=value" in messages.
_SECRET_NAMES = (
    r"access_token|input_token|fb_exchange_token|client_secret|app_secret|appsecret_proof"
    r"|secret|password|passwd|token|pin|api_key|authorization"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # Every value of an http(s) URL's query string: what a Graph URL carries.
    (
        re.compile(r"(https?://[^\s?#\"'<>]+\?)([^\s#\"'<>]+)"),
        lambda m: m[1] + re.sub(r"=[^&;]*", "=" + REDACTED, m[2]),
    ),
    # Credentials in a URL's authority (mongodb://user:pass@host).
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@:\"']+:[^\s/@\"']+@", re.I),
        r"\1" + REDACTED + "@",
    ),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic|OAuth)\s+[A-Za-z0-9._~+/=-]+", re.I), r"\1 " + REDACTED),
    # Values shaped like our API keys, webhook secrets and Meta access tokens.
    (re.compile(r"\bsk_(?:org|live|test)_[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), REDACTED),
    (re.compile(r"\bEAA[A-Za-z0-9]{20,}"), REDACTED),
    # name=value / "name": "value" / 'name': 'value' for secret-named fields.
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9_])([\"']?(?:{_SECRET_NAMES})[\"']?\s*[:=]\s*)"
            r"(?!\[redacted\])(\"[^\"]*\"|'[^']*'|[^\s&,;)}\]]+)"
        ),
        lambda m: m[1] + (m[2][0] + REDACTED + m[2][0] if m[2][0] in "\"'" else REDACTED),
    ),
)


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: keep what logging itself would show
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = redact(message), None
    return record


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(entry).decode())


class _RedactFilter(logging.Filter):
    """On the handler too: a record made before the factory was installed, or whose
    message was changed after it was made, is redacted all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


def install_redaction() -> None:
    """Redact every record from now on (idempotent)."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


def configure(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """The process's logging: one handler on the root logger, redacting, in ``fmt``."""
    install_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, LEVELS[level]))
