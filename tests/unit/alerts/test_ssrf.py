"""Outbound webhook URLs: the SSRF corpus of the reliability notes (S2) is refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from aggregator.alerts.ssrf import BlockedDestination, check_url


def fake_resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


RESOLVE = fake_resolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "internal.example.com": ["10.1.2.3"],
        "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
        "v6private.example.com": ["fd00::1"],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/x",
        "https://172.16.3.4/x",
        "https://192.168.1.1/x",
        "https://100.64.0.1/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[fe80::1]/x",
        "https://[fc00::1]/x",
        "https://0.0.0.0/x",
        "https://2130706433/x",
        "https://0177.0.0.1/x",
        "https://0x7f.0.0.1/x",
        "https://internal.example.com/x",
        "https://rebind.example.com/x",
        "https://v6private.example.com/x",
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https:///nohost",
        "https://nxdomain.example.com/",
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(BlockedDestination):
        check_url(url, resolver=RESOLVE)


def test_public_https_is_pinned() -> None:
    dest = check_url("https://hooks.example.com:8443/x", resolver=RESOLVE)
    assert dest.addresses == ("93.184.216.34",)
    assert dest.port == 8443


def test_private_allowed_only_by_opt_in() -> None:
    dest = check_url("http://127.0.0.1:9999/hook", allow_private=True, resolver=RESOLVE)
    assert dest.addresses == ("127.0.0.1",)
