"""The SSRF guard: cloud-metadata addresses are refused whatever EDGE_WEBHOOK_ALLOW_PRIVATE says."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest

from edge_onboard.core.errors import ApiError
from edge_onboard.core.urls import address_problem, check_webhook_url
from edge_onboard.webhooks.delivery import Sender

pytestmark = pytest.mark.anyio

METADATA = "a cloud metadata address"

ALWAYS_REFUSED = [
    "169.254.169.254",  # AWS, GCP, Azure
    "fd00:ec2::254",  # AWS over IPv6
    "fd20:ce::254",  # GCP over IPv6
    "fd00:c1::a9fe:a9fe",  # Oracle Cloud over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud (Classic)
    "fe80::a9fe:a9fe",  # link-local IPv6 form of 169.254.169.254
    "fe80::1",
    # The IPv4 entries wrapped in IPv6: each reaches the IPv4 host it carries.
    "::ffff:100.100.100.200",  # IPv4-mapped
    "::ffff:192.0.0.192",
    "::ffff:169.254.169.254",
    "64:ff9b::6464:64c8",  # NAT64 of 100.100.100.200
    "64:ff9b::c000:c0",  # NAT64 of 192.0.0.192
    "2002:6464:64c8::1",  # 6to4 of 100.100.100.200
    "2002:c000:c0::1",  # 6to4 of 192.0.0.192
    "2001:0:4136:e378:8000:63bf:9b9b:9b37",  # Teredo, client 100.100.100.200
    "::6464:64c8",  # deprecated IPv4-compatible
]


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hook"


@pytest.mark.parametrize("allow_private", [True, False])
@pytest.mark.parametrize("address", ALWAYS_REFUSED)
async def test_metadata_addresses_are_refused_always(address: str, allow_private: bool) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_private=allow_private) == METADATA
    with pytest.raises(ApiError) as caught:
        await check_webhook_url(_url(address), allow_private=allow_private)
    error = caught.value
    assert (error.status_code, error.code, error.param) == (400, "url_not_allowed", "webhookUrl")
    assert "metadata" in error.message


async def test_only_the_metadata_hosts_themselves_are_refused_always() -> None:
    # Neighbours of the single-address entries are ordinary private or public hosts.
    for neighbour in ("100.100.100.201", "192.0.0.193", "fd20:ce::253", "fec0::1"):
        assert address_problem(ipaddress.ip_address(neighbour), allow_private=True) is None
        assert address_problem(ipaddress.ip_address(neighbour), allow_private=False) != METADATA
    assert await check_webhook_url(_url("8.8.8.8"), allow_private=False) == _url("8.8.8.8")


def _resolving_to(*addresses: str) -> Any:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in addresses
        ]

    return getaddrinfo


@pytest.mark.parametrize("allow_private", [True, False])
@pytest.mark.parametrize(
    "addresses",
    [("100.100.100.200",), ("192.0.0.192",), ("8.8.8.8", "fe80::a9fe:a9fe")],
)
async def test_names_resolving_to_metadata_are_refused(
    monkeypatch: pytest.MonkeyPatch, addresses: tuple[str, ...], allow_private: bool
) -> None:
    monkeypatch.setattr(anyio, "getaddrinfo", _resolving_to(*addresses))
    with pytest.raises(ApiError) as caught:
        await check_webhook_url("https://hooks.example.com/h", allow_private=allow_private)
    assert (caught.value.code, caught.value.param) == ("url_not_allowed", "webhookUrl")

    # A name that changes its answer after the check is caught again at send time.
    requests: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    sender = Sender(allow_private=allow_private, transport=httpx.MockTransport(receive))
    try:
        result = await sender.send("https://hooks.example.com/h", b"{}", {}, datetime.now(UTC))
    finally:
        await sender.aclose()
    assert result.status_code is None and result.error and "metadata" in result.error
    assert requests == []
