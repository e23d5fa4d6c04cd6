"""Aevo and Deribit adapters end to end over real HTTP against the credentialed devnet venue server
(in-process, free port): read, move a price, read again; auth (keys, bearer token, re-auth once);
faults map to UNAVAILABLE with the reason; no credentials = not configured; secrets never leak.

The engine's health of every account read (``risk.margin.evaluate`` at current prices, the venue's
standard-margin model) equals the server's own ``equity / maintenance_margin`` (Aevo) and
``margin_balance / maintenance_margin`` (Deribit) within 1e-9: the server computes its figures by
the venues' documented rules, written apart from the adapters. Option marks decay with time, so a
test that compares two reads freezes the server's clock (``POST /_devnet/clock``) first."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.aevo import AevoAdapter
from adapters.base import AdapterContext
from adapters.deribit import DeribitAdapter
from adapters.derive import black76_price
from aggregator.devnet.venues.aevo import CredVenueServer
from risk.model import AccountStatus, MarginAccount, PositionKind
from tests.support.engine import engine_health as support_engine_health
from tests.support.venues import fast_adapter

WALLET = "0x1111111111111111111111111111111111111111"
OTHER = "0x2222222222222222222222222222222222222222"
KEY, SECRET = "aevo-key-1", "CANARY-aevo-secret-7f3a9c"
CLIENT, CLIENT_SECRET = "deribit-client-1", "CANARY-deribit-secret-5b1e2d"
EXPIRY = (datetime.now(UTC) + timedelta(days=45)).strftime("%d%b%y").upper().lstrip("0")


@pytest.fixture(scope="module")
def server() -> Iterator[CredVenueServer]:
    with CredVenueServer() as s:
        yield s


def aevo(server: CredVenueServer, context: AdapterContext, **creds: Any) -> AevoAdapter:
    return fast_adapter(AevoAdapter, server.url, context, **creds)


def deribit(server: CredVenueServer, context: AdapterContext, **creds: Any) -> DeribitAdapter:
    return fast_adapter(DeribitAdapter, server.url + "/api/v2", context, **creds)


def equity(account: MarginAccount) -> Decimal:
    return sum((p.value for p in account.positions), Decimal(0))


def engine_health(account: MarginAccount) -> float:
    """``h`` of the account by the engine at current prices (the factor prices do not matter there:
    every position is at the venue's own price)."""
    return support_engine_health(account, factor_price=1.0)


async def freeze_clock(admin: httpx.AsyncClient) -> None:
    """Freeze the server's clock so that two reads price the options at the same instant."""
    (await admin.post("/_devnet/clock", json={"freeze": True})).raise_for_status()


async def seed_aevo(admin: httpx.AsyncClient) -> None:
    body = {
        "api_key": KEY,
        "api_secret": SECRET,
        "account": WALLET,
        "usdc": "20000",
        "positions": [
            {"instrument": f"ETH-{EXPIRY}-3500-C", "amount": "-5", "avg_entry_price": "100", "iv": "0.6"},
            {"instrument": "ETH-PERP", "amount": "2", "avg_entry_price": "2900"},
        ],
    }
    (await admin.post("/_devnet/seed/aevo", json=body)).raise_for_status()


async def seed_deribit(admin: httpx.AsyncClient) -> None:
    body = {
        "client_id": CLIENT,
        "client_secret": CLIENT_SECRET,
        "user_id": 77,
        "username": "fund",
        "balances": {"BTC": "2", "USDC": "5000"},
        "positions": [
            {"instrument": f"BTC-{EXPIRY}-70000-C", "size": "-3", "average_price": "0.02", "iv": "0.55"},
            {"instrument": "BTC-PERPETUAL", "size": "30000", "average_price": "58000"},
            {"instrument": "ETH_USDC-PERPETUAL", "size": "-1.5", "average_price": "3100"},
        ],
    }
    (await admin.post("/_devnet/seed/deribit", json=body)).raise_for_status()


def aevo_creds() -> dict[str, Any]:
    return {"api_key": KEY, "api_secret": SECRET}


def deribit_creds() -> dict[str, Any]:
    return {"client_id": CLIENT, "client_secret": CLIENT_SECRET}


def configured(venue: str, server: CredVenueServer, context: AdapterContext) -> AevoAdapter | DeribitAdapter:
    """The ``venue``'s adapter with the credentials ``seed_aevo`` / ``seed_deribit`` seed."""
    return (
        aevo(server, context, **aevo_creds())
        if venue == "aevo"
        else deribit(server, context, **deribit_creds())
    )


async def test_aevo_reads_positions_margin_and_moves_with_price(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_aevo(admin)
    await freeze_clock(admin)  # the option's mark is the same in both reads below
    adapter = aevo(server, context, **aevo_creds())
    [account] = await adapter.read_accounts([WALLET, OTHER])  # OTHER: nothing there
    assert account.status is AccountStatus.OK and account.wallet == WALLET
    body = (await admin.get("/account", headers={"AEVO-KEY": KEY, "AEVO-SECRET": SECRET})).json()
    api_equity, api_mm = Decimal(body["equity"]), Decimal(body["maintenance_margin"])
    assert equity(account) == api_equity  # sum of our positions = the venue's equity
    assert account.venue_health == api_equity / api_mm
    assert engine_health(account) == pytest.approx(float(api_equity / api_mm), rel=1e-9)
    option = next(p for p in account.positions if p.kind is PositionKind.OPTION)
    assert option.option is not None and option.option.strike == 3500 and option.option.option_type == "call"
    years = (option.option.expiry - datetime.now(UTC)).total_seconds() / (365 * 24 * 3600)
    ours = black76_price(3000.0, 3500.0, years, float(option.option.mark_iv), True)
    assert abs(ours - float(option.price)) < 1e-3 * float(option.price)  # engine's Black-76 vs the mark
    perp = next(p for p in account.positions if p.kind is PositionKind.PERP)
    assert perp.quantity == 2 and perp.perp is not None and perp.perp.oracle_price == 3000
    (await admin.post("/_devnet/price", json={"factor": "ETH", "price": 3600})).raise_for_status()
    [moved] = await adapter.read_accounts([WALLET])
    assert moved.venue_health is not None and moved.venue_health < account.venue_health
    assert engine_health(moved) == pytest.approx(float(moved.venue_health), rel=1e-9)


async def test_frozen_clock_keeps_option_marks_still(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_aevo(admin)
    headers = {"AEVO-KEY": KEY, "AEVO-SECRET": SECRET}
    at = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    answer = (await admin.post("/_devnet/clock", json={"at": at.isoformat()})).json()
    assert answer == {"clock": at.isoformat()}
    first = (await admin.get("/positions", headers=headers)).json()["positions"][0]
    second = (await admin.get("/positions", headers=headers)).json()["positions"][0]
    assert first["mark_price"] == second["mark_price"]
    (await admin.post("/_devnet/clock", json={"freeze": False})).raise_for_status()
    now = (await admin.get("/positions", headers=headers)).json()["positions"][0]
    assert Decimal(now["mark_price"]) > Decimal(first["mark_price"])  # 10 days less theta decay
    assert (await admin.post("/_devnet/clock", json={"at": "yesterday"})).status_code == 400
    assert (await admin.post("/_devnet/clock", json={"at": "2026-11-21T00:00:00"})).status_code == 400


async def test_engine_health_equals_the_venue_figure_with_a_mark_apart(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    """Mark apart from the index (futures' margin is on the index, PnL on the mark); puts and
    calls, long and short; every Deribit currency account and the Aevo account."""
    await freeze_clock(admin)
    for factor, price, mark in (("BTC", 60000, 60450), ("ETH", 3000, 2990)):
        body = {"factor": factor, "price": price, "mark": mark}
        (await admin.post("/_devnet/price", json=body)).raise_for_status()
    deribit_body = {
        "client_id": CLIENT,
        "client_secret": CLIENT_SECRET,
        "balances": {"BTC": "3", "ETH": "10", "USDC": "8000"},
        "positions": [
            {"instrument": f"BTC-{EXPIRY}-70000-C", "size": "-3", "iv": "0.55"},
            {"instrument": f"BTC-{EXPIRY}-50000-P", "size": "-4", "iv": "0.7"},
            {"instrument": f"BTC-{EXPIRY}-65000-C", "size": "2", "iv": "0.6"},
            {"instrument": "BTC-PERPETUAL", "size": "-250000", "average_price": "61000"},
            {"instrument": f"ETH-{EXPIRY}-2500-P", "size": "-20", "iv": "0.8"},
            {"instrument": "ETH-PERPETUAL", "size": "90000", "average_price": "2800"},
            {"instrument": "ETH_USDC-PERPETUAL", "size": "-4", "average_price": "3100"},
        ],
    }
    (await admin.post("/_devnet/seed/deribit", json=deribit_body)).raise_for_status()
    aevo_body = {
        "api_key": KEY,
        "api_secret": SECRET,
        "account": WALLET,
        "usdc": "30000",
        "positions": [
            {"instrument": f"ETH-{EXPIRY}-3500-C", "amount": "-5", "iv": "0.6"},
            {"instrument": f"ETH-{EXPIRY}-2600-P", "amount": "-7", "iv": "0.75"},
            {"instrument": f"ETH-{EXPIRY}-3200-C", "amount": "3", "iv": "0.6"},
            {"instrument": "ETH-PERP", "amount": "-2", "avg_entry_price": "3050"},
        ],
    }
    (await admin.post("/_devnet/seed/aevo", json=aevo_body)).raise_for_status()
    accounts = await deribit(server, context, **deribit_creds()).read_accounts([WALLET])
    accounts += await aevo(server, context, **aevo_creds()).read_accounts([WALLET])
    assert sorted(a.account_id for a in accounts) == sorted(["10/BTC", "10/ETH", "10/USDC", WALLET])
    for account in accounts:
        assert account.status is AccountStatus.OK and account.venue_health is not None
        assert 0 < float(account.venue_health) < 1e6
        assert engine_health(account) == pytest.approx(float(account.venue_health), rel=1e-9), account.key


async def test_deribit_reads_every_currency_and_matches_the_summary(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_deribit(admin)
    await freeze_clock(admin)  # the summary read below prices the option at the adapter's instant
    adapter = deribit(server, context, **deribit_creds(), accounts={OTHER: ("fund",)})
    accounts = await adapter.read_accounts([WALLET, OTHER])
    assert {a.account_id for a in accounts} == {"77/BTC", "77/USDC"}
    assert all(a.wallet == OTHER for a in accounts)  # attributed through [venues.deribit].accounts
    btc = next(a for a in accounts if a.account_id == "77/BTC")
    summary = (
        await admin.post(
            "/api/v2/public/auth",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "public/auth",
                "params": {
                    "grant_type": "client_credentials",
                    "client_id": CLIENT,
                    "client_secret": CLIENT_SECRET,
                },
            },
        )
    ).json()
    token = summary["result"]["access_token"]
    raw = (
        await admin.post(
            "/api/v2/private/get_account_summary",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "jsonrpc": "2.0",
                "id": 2,
                "method": "private/get_account_summary",
                "params": {"currency": "BTC"},
            },
        )
    ).json()["result"]
    index = Decimal(60000)
    assert abs(equity(btc) - Decimal(repr(raw["equity"])) * index) < Decimal("1e-6")
    assert btc.venue_health == Decimal(repr(raw["margin_balance"])) / Decimal(repr(raw["maintenance_margin"]))
    for account in accounts:
        assert account.venue_health is not None
        assert engine_health(account) == pytest.approx(float(account.venue_health), rel=1e-9)
    perp = next(p for p in btc.positions if p.kind is PositionKind.PERP)
    assert perp.quantity == Decimal(30000) / Decimal(58000)  # inverse: N / average_price coins
    option = next(p for p in btc.positions if p.kind is PositionKind.OPTION)
    assert option.option is not None and option.option.mark_iv == Decimal("0.55")
    years = (option.option.expiry - datetime.now(UTC)).total_seconds() / (365 * 24 * 3600)
    usd = black76_price(60000.0, 70000.0, years, 0.55, True)
    assert abs(usd - float(option.price)) < 1e-3 * usd + 1.0  # coin mark x index vs our Black-76
    assert abs((btc.as_of.timestamp - datetime.now(UTC)).total_seconds()) < 60  # usOut
    (await admin.post("/_devnet/price", json={"factor": "BTC", "price": 50000})).raise_for_status()
    moved = await adapter.read_accounts([OTHER])
    assert next(a for a in moved if a.account_id == "77/BTC").venue_health != btc.venue_health


async def test_deribit_reauthenticates_once_after_token_expiry(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_deribit(admin)
    adapter = deribit(server, context, **deribit_creds())
    assert all(a.status is AccountStatus.OK for a in await adapter.read_accounts([WALLET]))
    assert (await admin.get("/_devnet/state")).json()["deribit_auth_calls"] == 1
    (await admin.post("/_devnet/deribit/expire")).raise_for_status()
    accounts = await adapter.read_accounts([WALLET])
    assert accounts and all(a.status is AccountStatus.OK for a in accounts)
    assert (await admin.get("/_devnet/state")).json()["deribit_auth_calls"] == 2


@pytest.mark.parametrize("venue", ["aevo", "deribit"])
async def test_no_credentials_is_not_configured_never_empty(
    venue: str, server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    adapter = aevo(server, context) if venue == "aevo" else deribit(server, context)
    accounts = await adapter.read_accounts([WALLET, OTHER])
    assert [a.wallet for a in accounts] == [WALLET, OTHER]
    for a in accounts:
        assert a.status is AccountStatus.UNAVAILABLE and a.raw["not_configured"] is True
        assert a.status_reason is not None and a.status_reason.startswith("not configured:")


@pytest.mark.parametrize("venue", ["aevo", "deribit"])
async def test_wrong_credentials_are_a_clear_reason_and_never_leak(
    venue: str,
    server: CredVenueServer,
    admin: httpx.AsyncClient,
    context: AdapterContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await seed_aevo(admin)
    await seed_deribit(admin)
    canary = "CANARY-wrong-secret-0000"
    if venue == "aevo":
        adapter: AevoAdapter | DeribitAdapter = aevo(server, context, api_key=KEY, api_secret=canary)
    else:
        adapter = deribit(server, context, client_id=CLIENT, client_secret=canary)
    [account] = await adapter.read_accounts([WALLET])
    assert account.status is AccountStatus.UNAVAILABLE
    assert account.status_reason is not None and "credentials refused" in account.status_reason
    assert canary not in account.status_reason and canary not in caplog.text
    assert canary not in repr(adapter.venue_spec) and canary not in str(adapter.venue_spec)


@pytest.mark.parametrize("venue", ["aevo", "deribit"])
async def test_429_then_200_is_retried_and_read(
    venue: str, server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_aevo(admin)
    await seed_deribit(admin)
    fault = {"venue": venue, "mode": "429", "times": 1, "retry_after": 0}
    (await admin.post("/_devnet/fault", json=fault)).raise_for_status()
    adapter = configured(venue, server, context)
    accounts = await adapter.read_accounts([WALLET])
    assert accounts and all(a.status is AccountStatus.OK for a in accounts)


@pytest.mark.parametrize("venue", ["aevo", "deribit"])
@pytest.mark.parametrize(
    ("mode", "field", "expected"),
    [
        ("500", None, "HTTP 500"),
        ("timeout", None, "timed out"),
        ("garbage", None, "not JSON"),
        ("missing_field", "equity", "equity"),
    ],
)
async def test_faults_make_the_account_unavailable_with_the_reason(
    venue: str,
    mode: str,
    field: str | None,
    expected: str,
    server: CredVenueServer,
    admin: httpx.AsyncClient,
    context: AdapterContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await seed_aevo(admin)
    await seed_deribit(admin)
    fault: dict[str, Any] = {"venue": venue, "mode": mode, "hang_seconds": 2}
    if field:
        fault["field"] = field if venue == "aevo" else f"result.{field}"
    (await admin.post("/_devnet/fault", json=fault)).raise_for_status()
    adapter = configured(venue, server, context)
    [account] = await adapter.read_accounts([WALLET, OTHER])
    assert account.status is AccountStatus.UNAVAILABLE and account.wallet == WALLET
    assert account.status_reason is not None and expected in account.status_reason
    for secret in (SECRET, CLIENT_SECRET):
        assert secret not in account.status_reason and secret not in caplog.text


async def test_unknown_account_is_an_empty_ok_result(
    server: CredVenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    empty = {"api_key": KEY, "api_secret": SECRET, "account": OTHER, "usdc": "0", "positions": []}
    (await admin.post("/_devnet/seed/aevo", json=empty)).raise_for_status()
    body = {"client_id": CLIENT, "client_secret": CLIENT_SECRET, "balances": {}, "positions": []}
    (await admin.post("/_devnet/seed/deribit", json=body)).raise_for_status()
    assert await aevo(server, context, **aevo_creds()).read_accounts([WALLET, OTHER]) == []
    assert await deribit(server, context, **deribit_creds()).read_accounts([WALLET, OTHER]) == []


async def test_scan_json_lists_unconfigured_venues_as_not_configured(tmp_path: Any) -> None:
    from aggregator.config import load_config
    from aggregator.report import report_from_scan
    from aggregator.scan import run_scan

    settings = load_config(environ={"XDG_CONFIG_HOME": str(tmp_path)}).settings
    result = await run_scan(settings, [WALLET], only="aevo,deribit")
    assert not result.any_unavailable  # missing credentials are not a failed read (exit code)
    doc = report_from_scan(result).model_dump(mode="json")
    assert sorted((r["deployment"], r["status"]) for r in doc["reads"]) == [
        ("aevo:main", "not_configured"),
        ("deribit:main", "not_configured"),
    ]
    assert len(doc["accounts"]) == 2  # listed, never empty
    assert all(a["status_reason"].startswith("not configured:") for a in doc["accounts"])


async def test_env_credentials_reach_the_adapter_and_a_canary_never_leaks(
    server: CredVenueServer, admin: httpx.AsyncClient, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from aggregator.config import load_config
    from aggregator.report import report_from_scan
    from aggregator.scan import run_scan

    caplog.set_level(logging.DEBUG)
    await seed_aevo(admin)
    canary = "CANARY-env-secret-91c0"
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "CROSSMARGIN__VENUES__AEVO__API_URL": server.url,
        "CROSSMARGIN__VENUES__AEVO__API_KEY": KEY,
        "CROSSMARGIN__VENUES__AEVO__API_SECRET": canary,
    }
    settings = load_config(environ=env).settings
    result = await run_scan(settings, [WALLET], only="aevo")
    doc = report_from_scan(result).model_dump_json()
    assert "credentials refused" in doc  # the wrong secret was sent and refused ...
    assert canary not in doc and canary not in caplog.text  # ... and never shown
