"""List parameters and the list envelope, the same for every ``GET`` list.

``page``/``limit`` (the seed's) and Stripe's cursors ``startingAfter``/``endingBefore``
(object ids) become a storage ``Window``; storage/paging.py says what each costs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request

from edge_onboard.core import validation
from edge_onboard.core.errors import invalid
from edge_onboard.core.responses import JSONResponse
from edge_onboard.storage.paging import COUNT_CAP, MAX_OFFSET, Key, Page, Window

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSORS = ("startingAfter", "endingBefore")
PARAMS = ("page", "limit", *CURSORS)

# The key of the object a cursor names, or None when this caller cannot see it.
Locate = Callable[[str], Awaitable[Key | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class ListParams:
    limit: int
    page: int = 1
    starting_after: str | None = None
    ending_before: str | None = None


def parse(request: Request, filters: Sequence[str] = ()) -> ListParams:
    """The list parameters; any other query parameter but ``filters``, or any given
    more than once, is refused."""
    query = request.query_params
    validation.reject_unknown(query.keys(), {*PARAMS, *filters})
    # Every list endpoint comes through here before it reads its filters, so this covers them.
    validation.reject_repeated(name for name, _ in query.multi_items())
    limit = validation.query_int(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    after, before = query.get("startingAfter"), query.get("endingBefore")
    if after is not None and before is not None:
        raise invalid("Give 'startingAfter' or 'endingBefore', not both.", param="endingBefore")
    if after is not None or before is not None:
        if "page" in query:
            name = "startingAfter" if after is not None else "endingBefore"
            raise invalid(f"'page' cannot be combined with '{name}'.", param="page")
        return ListParams(limit, starting_after=after, ending_before=before)
    page = validation.query_int(query, "page", default=1, low=1, high=100_000)
    if (page - 1) * limit > MAX_OFFSET:
        raise invalid(
            f"'page' may reach the first {MAX_OFFSET} objects of a list; page on from there "
            "with 'startingAfter' (the last id of a page).",
            param="page",
            code="page_too_deep",
        )
    return ListParams(limit, page=page)


async def window(params: ListParams, locate: Locate) -> Window:
    """The storage window for ``params``; a cursor this caller cannot see is a 400."""
    for name, ident in (
        ("startingAfter", params.starting_after),
        ("endingBefore", params.ending_before),
    ):
        if ident is None:
            continue
        key = await locate(ident) if 0 < len(ident) <= 100 else None
        if key is None:
            raise invalid(
                f"'{name}' names no object in this list: '{ident[:100]}'.",
                param=name,
                code="invalid_cursor",
            )
        if name == "startingAfter":
            return Window(params.limit, after=key, count_cap=COUNT_CAP)
        return Window(params.limit, before=key, count_cap=COUNT_CAP)
    return Window(params.limit, offset=(params.page - 1) * params.limit, count_cap=COUNT_CAP)


def response(
    items: Sequence[Mapping[str, Any]], params: ListParams, page: Page[Any]
) -> JSONResponse:
    """The envelope: ``pagination.startingAfter``/``endingBefore`` are the cursors for the
    next (older) and previous (newer) page: the ids of the last and first item."""
    cursor = params.starting_after is not None or params.ending_before is not None
    return JSONResponse(
        {
            "data": list(items),
            "pagination": {
                "page": None if cursor else params.page,
                "limit": params.limit,
                "total": page.total,
                "totalIsEstimate": page.total_is_estimate,
                "hasMore": page.has_more,
                "startingAfter": items[-1]["id"] if items else None,
                "endingBefore": items[0]["id"] if items else None,
            },
        }
    )


async def list_page(
    request: Request,
    fetch: Callable[[Window], Awaitable[Page[Any]]],
    locate: Locate,
    view: Callable[[Any], Mapping[str, Any]],
    params: ListParams | None = None,
) -> JSONResponse:
    """Parse, window, fetch, render: a whole list endpoint but its filters."""
    params = params or parse(request)
    page = await fetch(await window(params, locate))
    return response([view(item) for item in page.items], params, page)
