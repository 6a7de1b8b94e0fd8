"""JSON responses rendered with orjson, in the API's envelope."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content  # already rendered (an idempotent replay)
        return orjson.dumps(content)


def single(data: Mapping[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code=status_code)


def page(items: Sequence[Mapping[str, Any]], *, page: int, limit: int, total: int) -> JSONResponse:
    return JSONResponse(
        {
            "data": list(items),
            "pagination": {
                "page": page,
                "limit": limit,
                "total": total,
                "totalIsEstimate": False,
                "hasMore": (page - 1) * limit + len(items) < total,
                "startingAfter": None,
                "endingBefore": None,
            },
        }
    )
