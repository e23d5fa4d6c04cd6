"""Refuse outbound webhook URLs that reach loopback, private, link-local, CGNAT or other internal
addresses (OWASP SSRF guidance; /work reliability notes section 5).

The host is resolved once; the URL is refused if ANY resolved address is blocked; the caller then
connects to the pinned address (defeating DNS rebinding) and never follows redirects. Self-hosters
opt in to a LAN or the devnet with ``allow_private``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BlockedDestination", "Destination", "check_url", "is_blocked_address", "resolve_host"]

Resolver = Callable[[str, int], Sequence[str]]

_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


class BlockedDestination(ValueError):
    """The URL may not be called: wrong scheme, no host, or an internal address."""


@dataclass(frozen=True, slots=True)
class Destination:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]  # pinned resolution to connect to


def _system_resolver(host: str, port: int) -> Sequence[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_host(host: str, port: int) -> Sequence[str]:
    """Resolve ``host`` through the module's resolver (looked up at call time, so tests can patch
    ``_system_resolver`` with one they control)."""
    return _system_resolver(host, port)


def is_blocked_address(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", maxsplit=1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_blocked_address(str(mapped))
    return any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version)


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Destination:
    """Validate a webhook URL and pin its resolution. https only unless ``allow_private``."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise BlockedDestination("webhook URL must use https")
    if parts.scheme == "http" and not allow_private:
        raise BlockedDestination("webhook URL must use https")
    host = parts.hostname
    if not host:
        raise BlockedDestination("webhook URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
        addresses: tuple[str, ...] = (str(literal),)
    except ValueError:
        if _looks_numeric(host):
            raise BlockedDestination(
                "webhook host is a numeric form that is not a plain IP address"
            ) from None
        try:
            addresses = tuple(dict.fromkeys((resolver or resolve_host)(host, port)))
        except OSError:
            raise BlockedDestination("webhook host does not resolve") from None
    if not addresses:
        raise BlockedDestination("webhook host does not resolve")
    if not allow_private and any(is_blocked_address(a) for a in addresses):
        raise BlockedDestination("webhook host resolves to a private, loopback or link-local address")
    return Destination(url=url, host=host, port=port, addresses=addresses)


def _looks_numeric(host: str) -> bool:
    """Decimal (2130706433), octal (0177.0.0.1) or hex (0x7f.1) host forms that some resolvers accept."""
    labels = host.split(".")
    return all(label.isdigit() or label.lower().startswith("0x") for label in labels if label)
