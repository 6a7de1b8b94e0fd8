"""The hot routes answered ahead of the middleware stack (``HotStarlette``): the same
answer as through the router, with the app's exception handlers, a request id, and
an unexpected error logged and answered with a generic 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from edge_onboard.core.errors import ApiError, api_error_handler
from edge_onboard.core.middleware import HotStarlette, RequestIdMiddleware

pytestmark = pytest.mark.anyio
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")
ran: list[str] = []


async def item(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "missing":
        raise ApiError(404, "resource_missing", "No such item.")
    if name == "broken":
        raise RuntimeError("secret internal detail sk_live_leak")
    if name == "streamed":

        async def chunks() -> AsyncIterator[bytes]:
            yield b"one,"
            yield b"two"

        return StreamingResponse(chunks(), media_type="text/plain")
    if name == "background":
        return Response(b"later", background=BackgroundTask(ran.append, "background"))
    return Response(
        f"item {name}".encode(), media_type="text/plain", headers={"X-Frame-Options": "DENY"}
    )


def make_app(*, hot: bool) -> HotStarlette:
    return HotStarlette(
        hot={"/items/": (item, "name")} if hot else {},
        routes=[Route("/items/{name}", item, methods=["GET"])],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={ApiError: api_error_handler},
    )


async def get(app: HotStarlette, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


@pytest.mark.parametrize("name", ["plain", "missing", "streamed", "background"])
async def test_a_hot_read_answers_as_the_router_does(name: str) -> None:
    hot, routed = (
        await get(make_app(hot=True), f"/items/{name}"),
        await get(make_app(hot=False), f"/items/{name}"),
    )
    assert (hot.status_code, hot.content) == (routed.status_code, routed.content)
    assert {k: v for k, v in hot.headers.items() if k != "request-id"} == {
        k: v for k, v in routed.headers.items() if k != "request-id"
    }
    assert REQUEST_ID.fullmatch(hot.headers["request-id"])
    assert hot.headers.get_list("request-id") == [hot.headers["request-id"]]


async def test_a_background_task_of_a_hot_read_runs() -> None:
    ran.clear()
    response = await get(make_app(hot=True), "/items/background")
    assert response.content == b"later" and ran == ["background"]


async def test_every_request_gets_its_own_id() -> None:
    app = make_app(hot=True)
    ids = {(await get(app, "/items/a")).headers["request-id"] for _ in range(20)}
    assert len(ids) == 20


async def test_an_unexpected_error_on_a_hot_read_is_a_logged_500_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await get(make_app(hot=True), "/items/broken")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "sk_live_leak" not in response.text and "RuntimeError" not in response.text
    request_id = response.headers["request-id"]
    assert request_id in response.json()["error"]["message"]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_other_methods_and_deeper_paths_go_through_the_router() -> None:
    app = make_app(hot=True)
    refused = await get(app, "/items/a", method="POST")
    assert refused.status_code == 405  # the router's answer, with the middleware's id
    assert REQUEST_ID.fullmatch(refused.headers["request-id"])
    deeper = await get(app, "/items/a/b")
    assert deeper.status_code == 404
    head = await get(app, "/items/a", method="HEAD")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(b"item a"))
