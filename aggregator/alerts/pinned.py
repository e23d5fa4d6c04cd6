"""An httpx transport that connects only to the address it has just validated (no DNS rebinding).

The SSRF guard (``aggregator.alerts.ssrf``) checks where a URL resolves, but a plain httpx client then
resolves the host a second time when it connects, and a rebinding DNS server can answer a private
address the second time. :class:`PinnedBackend` is an httpcore network backend that does the one and
only resolution itself (``ssrf.resolve_host``), refuses the host if ANY resolved address is blocked, and
opens the TCP connection to a validated IP literal. httpcore still sends the original ``Host`` header and
uses the URL's host for TLS SNI and certificate checks (it passes ``server_hostname`` = the origin host
to ``start_tls``), so HTTPS works unchanged. Redirects are never followed by our callers, proxies from
the environment are ignored (``trust_env=False``), and Unix sockets are refused.

``private_hosts`` lists the hosts of channels configured with ``allow_private`` (the devnet, a LAN
gateway); those are still pinned but may resolve to private addresses.
"""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.ssrf import BlockedDestination, is_blocked_address, resolve_host

__all__ = ["PinnedBackend", "PinnedTransport", "pinned_client", "private_hosts"]

DEFAULT_TELEGRAM_HOST = "api.telegram.org"


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, validate every address, connect to the validated IP."""

    def __init__(
        self, *, private_hosts: Iterable[str] = (), inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._private = frozenset(h.lower() for h in private_hosts)
        self._inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> tuple[str, ...]:
        addresses = tuple(dict.fromkeys(await anyio.to_thread.run_sync(resolve_host, host, port)))
        if not addresses:
            raise BlockedDestination("webhook host does not resolve")
        if host.lower() not in self._private and any(is_blocked_address(a) for a in addresses):
            raise BlockedDestination("webhook host resolves to a private, loopback or link-local address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._addresses(host, port)
        except OSError:
            raise BlockedDestination("webhook host does not resolve") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedDestination("unix sockets are not an alert destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool uses :class:`PinnedBackend`."""

    def __init__(
        self,
        *,
        private_hosts: Iterable[str] = (),
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        chosen = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=chosen)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=chosen.max_connections,
            max_keepalive_connections=chosen.max_keepalive_connections,
            keepalive_expiry=chosen.keepalive_expiry,
            network_backend=PinnedBackend(private_hosts=private_hosts),
        )


def private_hosts(alerts: AlertsSettings) -> frozenset[str]:
    """Hosts of the channels that opted in to private destinations (``allow_private = true``)."""
    hosts: set[str] = set()
    for channel in alerts.channels.values():
        if not channel.allow_private:
            continue
        urls = [channel.api_base] if channel.api_base else []
        if channel.webhook_url is not None:
            urls.append(channel.webhook_url.get_secret_value())
        if channel.type == "telegram" and not channel.api_base:
            urls.append(f"https://{DEFAULT_TELEGRAM_HOST}")
        for url in urls:
            host = urlsplit(url).hostname
            if host:
                hosts.add(host.lower())
    return frozenset(hosts)


def pinned_client(
    alerts: AlertsSettings,
    *,
    timeout: float | httpx.Timeout = 15.0,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """A client for alert deliveries: pinned connections, no redirects, no proxies from the env."""
    return httpx.AsyncClient(
        transport=PinnedTransport(private_hosts=private_hosts(alerts), verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
