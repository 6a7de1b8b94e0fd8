"""URL rules for redirect and webhook targets, including the SSRF guard.

Webhook targets that resolve to loopback, private, link-local or otherwise
non-public addresses are refused unless ``EDGE_WEBHOOK_ALLOW_PRIVATE`` is on;
cloud-metadata addresses and link-local ranges are refused always. The same check runs
again at send time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit

import anyio
import idna

from edge_onboard.core.errors import invalid

MAX_URL_LENGTH = 2048
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Instance-metadata endpoints: never a webhook target, even with EDGE_WEBHOOK_ALLOW_PRIVATE,
# because they hand out the host's cloud credentials.
METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # AWS, GCP, Azure and most others: 169.254.169.254
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS over IPv6: fd00:ec2::254
    ipaddress.ip_network("fd20:ce::254/128"),  # GCP over IPv6
    ipaddress.ip_network("fd00:c1::a9fe:a9fe/128"),  # Oracle Cloud over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("192.0.0.192/32"),  # Oracle Cloud (Classic)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local: fe80::a9fe:a9fe mirrors 169.254.169.254
)
_RESOLVE_TIMEOUT = 3.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Whitespace (exactly what str.isspace calls whitespace) or a control character.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


class UnsafeAddressError(ValueError):
    """The target address is not one we may connect to."""


def _parse_absolute(url: object, param: str) -> SplitResult:
    if not isinstance(url, str):
        raise invalid(f"'{param}' must be a string URL.", param=param)
    if len(url) > MAX_URL_LENGTH:
        raise invalid(f"'{param}' must be at most {MAX_URL_LENGTH} characters.", param=param)
    if _SPACE_OR_CONTROL.search(url):
        raise invalid(f"'{param}' must not contain whitespace.", param=param)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise invalid(f"'{param}' is not a valid URL.", param=param) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise invalid(f"'{param}' must be an absolute https:// URL.", param=param)
    if parts.username is not None or parts.password is not None:
        raise invalid(f"'{param}' must not contain credentials.", param=param)
    if port == 0:
        raise invalid(f"'{param}' has an invalid port.", param=param)
    host = _host(parts)
    if not host:
        raise invalid(f"'{param}' has no host name.", param=param)
    if not _valid_host(host):
        raise invalid(f"'{param}' has an invalid host name.", param=param)
    return parts


def _valid_host(host: str) -> bool:
    if host.startswith("[") or ":" in host:
        return True  # an IPv6 literal; urlsplit has parsed it
    if len(host) > 253 or any(not 1 <= len(label) <= 63 for label in host.split(".")):
        return False
    if host.isascii():
        return True
    try:
        idna.encode(host)  # IDNA 2008, as the resolver will encode it
    except (idna.IDNAError, UnicodeError):
        return False
    return True


def _host(parts: SplitResult) -> str:
    host = parts.hostname or ""
    return host.rstrip(".").lower()


def check_redirect_url(url: object, param: str = "redirectUrl") -> str:
    """An absolute https URL; plain http only for localhost (development)."""
    parts = _parse_absolute(url, param)
    if parts.scheme == "http" and _host(parts) not in LOCAL_HOSTS:
        raise invalid(
            f"'{param}' must use https (http is allowed only for localhost).", param=param
        )
    assert isinstance(url, str)
    return url


def check_https_url(url: object, param: str) -> str:
    """An absolute https URL (a page the end-user is sent to, or a link shown to them)."""
    parts = _parse_absolute(url, param)
    if parts.scheme != "https":
        raise invalid(f"'{param}' must be an https URL.", param=param)
    assert isinstance(url, str)
    return url


NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What a developer whose endpoint runs on this machine or network needs to know.
_ALLOW_PRIVATE_HINT = "(for local development, start the server with EDGE_WEBHOOK_ALLOW_PRIVATE=1)"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why we must not connect to ``address``, or None when it is fine."""
    # An IPv6 form that carries an IPv4 address reaches that IPv4 host, so the IPv4 address
    # is judged first, metadata list included.
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded, allow_private=allow_private)
            if problem:
                return problem
            if address.ipv4_mapped is not None:
                return None
    if any(address in net for net in METADATA_NETWORKS):
        return "a cloud metadata address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
        return "a private or reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (empty when the name does not resolve in time)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    with anyio.move_on_after(_RESOLVE_TIMEOUT):
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        return [ipaddress.ip_address(info[4][0]) for info in infos]
    return []


async def check_webhook_url(url: object, *, allow_private: bool, param: str = "webhookUrl") -> str:
    parts = _parse_absolute(url, param)
    host = _host(parts)
    if parts.scheme == "http" and not allow_private:
        raise invalid(
            f"'{param}' must use https (http needs EDGE_WEBHOOK_ALLOW_PRIVATE=1).",
            param=param,
            code="url_not_allowed",
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # A name that does not resolve now is accepted: DNS may lag a new endpoint, and the
    # address is checked again, and pinned, at every send.
    for address in await resolve(host, port):
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            # The setting is named only where it would help (never the metadata addresses).
            helps = not address_problem(address, allow_private=True)
            hint = f" {_ALLOW_PRIVATE_HINT}" if helps else ""
            raise invalid(
                f"'{param}' points to {problem}; webhooks must target a public host{hint}.",
                param=param,
                code="url_not_allowed",
            )
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise invalid(
            f"'{param}' points to a loopback address; webhooks must target a public host "
            f"{_ALLOW_PRIVATE_HINT}.",
            param=param,
            code="url_not_allowed",
        )
    assert isinstance(url, str)
    return url
