"""The Graph client's error mapping and retry policy, over a mock transport."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from edge_onboard.meta.graph import GraphClient, GraphError, PhoneInfo, e164

pytestmark = pytest.mark.anyio


def client(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[GraphClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    graph = GraphClient(
        base_url="https://graph.test",
        version="v25.0",
        app_id="1",
        app_secret="s",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
    )
    return graph, sleeps


def graph_error(code: int, subcode: int | None = None, status: int = 400) -> httpx.Response:
    error: dict[str, object] = {"message": "nope", "type": "OAuthException", "code": code}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("+1 555-078-3881", "+15550783881"),
        ("15550783881", "+15550783881"),
        ("+55 (11) 91234-5678", "+5511912345678"),
        ("", None),
        (None, None),
        ("12", None),
    ],
)
def test_e164(display: str | None, expected: str | None) -> None:
    assert e164(display) == expected


def test_phone_info_knows_when_registration_is_needed() -> None:
    assert PhoneInfo.from_graph(
        {"id": "1", "status": "CONNECTED", "platform_type": "CLOUD_API"}
    ).on_cloud_api
    assert not PhoneInfo.from_graph(
        {"id": "1", "status": "PENDING", "platform_type": "NOT_APPLICABLE"}
    ).on_cloud_api


async def test_code_exchange_is_never_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return graph_error(2, status=500)  # retryable anywhere else

    graph, sleeps = client(handler)
    with pytest.raises(GraphError) as info:
        await graph.exchange_code("c")
    assert len(calls) == 1 and sleeps == []
    assert info.value.retryable and info.value.unreachable
    assert calls[0].url.path == "/v25.0/oauth/access_token"
    assert calls[0].url.params["code"] == "c"


async def test_retryable_errors_back_off_then_succeed() -> None:
    answers = [
        graph_error(80007),
        httpx.Response(503, text="<html>down</html>"),
        httpx.Response(200, json={"success": True}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        return answers.pop(0)

    graph, sleeps = client(handler)
    await graph.subscribe_app("123", "tok")
    assert answers == [] and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


@pytest.mark.parametrize("code", [100, 190, 200, 131031, 133005, 133016])
async def test_final_errors_are_not_retried(code: int) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return graph_error(code)

    graph, sleeps = client(handler)
    with pytest.raises(GraphError) as info:
        await graph.register_phone("1", "tok", "123456")
    assert sleeps == []
    assert calls == [1] and not info.value.retryable and not info.value.unreachable
    assert info.value.code == code


async def test_transport_failures_are_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    graph, sleeps = client(handler)
    with pytest.raises(GraphError) as info:
        await graph.phone("1", "tok")
    assert info.value.unreachable and len(sleeps) == 2  # three attempts


async def test_granted_wabas_from_granular_scopes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer 1|s"
        assert request.url.params["input_token"] == "tok"
        return httpx.Response(
            200,
            json={
                "data": {
                    "is_valid": True,
                    "granular_scopes": [
                        {"scope": "whatsapp_business_management", "target_ids": ["111", "222"]},
                        {"scope": "whatsapp_business_manage_events", "target_ids": ["333"]},
                        {"scope": "business_management", "target_ids": ["999"]},
                    ],
                }
            },
        )

    graph, _ = client(handler)
    assert await graph.granted_waba_ids("tok") == {"111", "222", "333"}
