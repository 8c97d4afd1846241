"""Requests the service makes to URLs others gave it (webhook deliveries, did:web documents): only to public
addresses, unless the host operator allows more.

A URL given by a subscriber could name the service's own host, the cloud metadata endpoint (169.254.169.254)
or a machine on the operator's private network (server-side request forgery). ``check_outbound_url`` resolves
the URL's host — every address ``getaddrinfo`` gives, so a name with one public and one private address is
refused, as are numeric forms such as ``2130706433`` or ``0x7f.1`` — and raises ``OutboundTargetRefused`` (400)
unless each is a public unicast address or lies in a range of ``AllowedTargets`` (the operator's setting
``outbound_allow``, e.g. ``127.0.0.0/8`` for a receiver on the same host). Refused: unspecified, loopback,
link-local, multicast, private (RFC 1918, RFC 6598 shared, ...), unique-local (fc00::/7), site-local, reserved
and other not globally routable addresses; an IPv4 address mapped into IPv6 (``::ffff:a.b.c.d``) is judged as
that IPv4 address, and a 6to4 address (2002::/16) by the IPv4 address it embeds as well.

Names can resolve differently a moment later (DNS rebinding): check right before each request and connect to
the address checked, not to the name again — ``pinned_target`` gives the URL with that address in place of the
host name, the ``Host`` header and the TLS server name (certificates are still verified for the name).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

from schemas.errors import ConfigurationError, OutboundTargetRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as text: ``resolve_host``, or a stand-in in tests."""

SCHEMES: Final = {"http": 80, "https": 443}
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")
_SEPARATORS: Final = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class AllowedTargets:
    """Address ranges the operator allows outbound requests to reach although they are not public."""

    networks: tuple[IpNetwork, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> AllowedTargets:
        """Comma- or space-separated CIDR ranges or single addresses (``"127.0.0.0/8, ::1"``); empty: none."""
        networks = []
        for item in _SEPARATORS.split(text.strip()):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ConfigurationError(f"outbound_allow: {item[:60]!r} is not an address range: {exc}") from exc
        return cls(tuple(networks))

    def __str__(self) -> str:
        return ",".join(str(network) for network in self.networks)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (TCP)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_address(address: IpAddress, allow: AllowedTargets, what: str = "the target") -> None:
    """Raise ``OutboundTargetRefused`` unless ``address`` is public unicast or inside an allowed range."""
    ip: IpAddress = address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allow.networks):
        return
    v6 = isinstance(ip, ipaddress.IPv6Address)
    categories = (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast), ("unique-local", v6 and ip in _UNIQUE_LOCAL), ("private", ip.is_private),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local), ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    for name, matches in categories:
        if matches:
            raise OutboundTargetRefused(
                f"{what} resolves to {address}, a {name} address; the operator can allow it (outbound_allow)"
            )
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        check_address(ip.sixtofour, allow, f"{what} (6to4 of {ip.sixtofour})")


def _split(url: str) -> tuple[SplitResult, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundTargetRefused(f"{url[:200]!r} is not a URL: {exc}") from exc
    host = parts.hostname
    if parts.scheme not in SCHEMES or not host:
        raise OutboundTargetRefused(f"{url[:200]!r} is not an http or https URL with a host")
    return parts, host, SCHEMES[parts.scheme] if port is None else port


def check_outbound_url(url: str, *, allow: AllowedTargets, resolve: Resolver = resolve_host) -> list[IpAddress]:
    """The addresses of ``url``'s host, each one checked (``check_address``); raise ``OutboundTargetRefused`` if
    any is refused, or if the URL is not http(s) or its host does not resolve. Connect to one of them
    (``pinned_target``), not to the name again."""
    _, host, port = _split(url)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in resolve(host, port)))
        except (OSError, UnicodeError, ValueError) as exc:
            raise OutboundTargetRefused(f"the host {host[:200]!r} does not resolve: {exc}") from exc
    if not addresses:
        raise OutboundTargetRefused(f"the host {host[:200]!r} has no address")
    for address in addresses:
        check_address(address, allow, f"the host {host[:200]!r}")
    return addresses


@dataclass(frozen=True)
class PinnedTarget:
    """How to send a request to ``address`` for a URL naming a host: pass ``headers`` and ``extensions`` (httpx)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned_target(url: str, address: IpAddress) -> PinnedTarget:
    """``url`` with ``address`` in place of its host, the ``Host`` header it had and, for https, the server name
    (SNI, and the name the certificate is verified for)."""
    parts, host, port = _split(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{literal}:{port}" if userinfo else f"{literal}:{port}"
    host_header = parts.netloc.rpartition("@")[2]
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    return PinnedTarget(parts._replace(netloc=netloc).geturl(), {"host": host_header}, extensions)
