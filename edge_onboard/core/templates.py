"""Filling the pages' HTML templates: ``{{name}}`` placeholders and JSON inside ``<script>``.

Shared by the hosted pages and the fake Meta's dialog, which render the same way."""

from __future__ import annotations

import re
from typing import Any

import orjson

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def fill(page: str, values: dict[str, str]) -> str:
    """``page`` with each ``{{name}}`` replaced by ``values[name]`` (unknown names stay)."""
    # One pass, so a value that looks like a placeholder (a link named "{{config}}") stays text.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), page)


def script_json(value: Any) -> str:
    """JSON inside <script>: no "<", ">" or "&" may appear raw."""
    return (
        orjson.dumps(value)
        .replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace(b"&", b"\\u0026")
        .decode()
    )
