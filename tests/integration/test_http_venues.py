"""HTTP venue adapters end to end over real HTTP against the local venue servers (in-process, free
port): read, move a price through the admin API, read again; faults map to UNAVAILABLE per venue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from adapters.base import AdapterContext
from adapters.derive import DeriveAdapter
from adapters.dydx_v4 import DydxV4Adapter
from adapters.hyperliquid import HyperliquidAdapter, maintenance_margin, parse_meta_and_ctxs
from aggregator.devnet.venues import VenueServer
from risk.model import AccountStatus, MarginAccount, PositionKind
from tests.support.venues import fast_adapter

WALLET = "0x1111111111111111111111111111111111111111"
OTHER = "0x2222222222222222222222222222222222222222"
DYDX = "dydx1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq0"


@pytest.fixture(scope="module")
def server() -> Iterator[VenueServer]:
    with VenueServer() as s:
        yield s


def hl_adapter(server: VenueServer, context: AdapterContext) -> HyperliquidAdapter:
    return fast_adapter(HyperliquidAdapter, server.url, context)


def dydx_adapter(server: VenueServer, context: AdapterContext) -> DydxV4Adapter:
    return fast_adapter(DydxV4Adapter, server.url, context, accounts={WALLET: (DYDX,)})


def derive_adapter(server: VenueServer, context: AdapterContext) -> DeriveAdapter:
    return fast_adapter(DeriveAdapter, server.url, context)


def equity(account: MarginAccount) -> Decimal:
    return sum((p.value for p in account.positions), Decimal(0))


async def seed_hl(admin: httpx.AsyncClient, mode: str = "default") -> None:
    (
        await admin.post(
            "/_devnet/seed/hyperliquid",
            json={
                "wallet": WALLET,
                "usdc": 2000,
                "mode": mode,
                "positions": [
                    {"coin": "ETH", "szi": "-2", "entryPx": "3000", "leverage": 10},
                    {"coin": "SOL", "szi": "10", "entryPx": "140", "leverage": 5},
                    {
                        "coin": "BTC",
                        "szi": "0.1",
                        "entryPx": "60000",
                        "leverage": 10,
                        "isolated": True,
                        "margin": 800,
                    },
                ],
            },
        )
    ).raise_for_status()


async def seed_dydx(admin: httpx.AsyncClient) -> None:
    (
        await admin.post(
            "/_devnet/seed/dydx_v4",
            json={
                "address": DYDX,
                "subaccounts": [
                    {
                        "number": 0,
                        "usdc": "-1000",
                        "positions": [{"ticker": "ETH-USD", "size": "2", "entryPrice": "2900"}],
                    },
                    {
                        "number": 128,
                        "usdc": "300",
                        "positions": [{"ticker": "ARB-USD", "size": "-1000", "entryPrice": "0.85"}],
                    },
                ],
            },
        )
    ).raise_for_status()


async def test_hyperliquid_read_matches_venue_and_moves_with_price(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_hl(admin)
    adapter = hl_adapter(server, context)
    accounts = await adapter.read_accounts([WALLET])
    cross, iso = accounts
    assert cross.account_id == f"{WALLET}/cross" and iso.account_id == f"{WALLET}/isolated/BTC"
    state = (await admin.post("/info", json={"type": "clearinghouseState", "user": WALLET.lower()})).json()
    meta = parse_meta_and_ctxs((await admin.post("/info", json={"type": "metaAndAssetCtxs"})).json())
    # our equity = the venue's accountValue; our tiered MM = crossMaintenanceMarginUsed (6-dp rounding)
    assert abs(equity(cross) - Decimal(state["crossMarginSummary"]["accountValue"])) <= Decimal("1e-6")
    ours_mm = sum(
        maintenance_margin(p.quantity * p.price, meta[p.token].tiers)
        for p in cross.positions
        if p.kind is PositionKind.PERP
    )
    assert abs(ours_mm - Decimal(state["crossMaintenanceMarginUsed"])) <= Decimal("1e-6")
    # independent: ETH 25x -> 2%, SOL 20x -> 2.5%
    assert ours_mm == 2 * 3000 * Decimal("0.02") + 10 * 150 * Decimal("0.025")
    assert abs(equity(iso) - Decimal("800") - Decimal("0.1") * (60000 - 60000)) <= Decimal("1e-6")
    eth = next(p for p in cross.positions if p.token == "ETH")
    assert eth.perp is not None and eth.perp.oracle_price == Decimal(3000)
    h0 = cross.venue_health
    assert h0 is not None and h0 > 1

    (await admin.post("/_devnet/price", json={"factor": "ETH", "price": 3300})).raise_for_status()
    cross2 = (await adapter.read_accounts([WALLET]))[0]
    assert cross2.venue_health is not None and cross2.venue_health < h0  # the short loses
    assert equity(cross2) == equity(cross) - 2 * 300
    (await admin.post("/_devnet/price", json={"factor": "BTC", "price": 52000})).raise_for_status()
    iso2 = (await adapter.read_accounts([WALLET]))[1]
    assert iso.venue_health is not None and iso2.venue_health is not None
    assert iso2.venue_health < iso.venue_health


async def test_hyperliquid_unified_account_reads_spot_collateral(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_hl(admin)
    standard = await hl_adapter(server, context).read_accounts([WALLET])
    await seed_hl(admin, mode="unifiedAccount")
    unified = await hl_adapter(server, context).read_accounts([WALLET])
    assert unified[0].raw["mode"] == "unifiedAccount"
    assert [equity(a) for a in unified] == [equity(a) for a in standard]


async def test_hyperliquid_empty_wallet_is_empty_ok(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    assert await hl_adapter(server, context).read_accounts([OTHER]) == []


async def test_dydx_equity_and_free_collateral_equal_the_indexer(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_dydx(admin)
    adapter = dydx_adapter(server, context)
    accounts = await adapter.read_accounts([WALLET, OTHER])  # OTHER has no dYdX address: nothing
    assert [a.account_id for a in accounts] == [f"{DYDX}/0", f"{DYDX}/128"]
    for account in accounts:
        assert account.status is AccountStatus.OK
        assert Decimal(str(account.raw["equity"])) == Decimal(str(account.raw["indexer_equity"]))
        assert Decimal(str(account.raw["free_collateral"])) == Decimal(
            str(account.raw["indexer_free_collateral"])
        )
        assert equity(account) == Decimal(str(account.raw["indexer_equity"]))
    main = accounts[0]
    # independent: NC = -1000 + 2*3000 = 5000; MMR = 6000*0.03 = 180
    assert main.venue_health == Decimal(5000) / Decimal(180)
    assert accounts[1].raw["parent"] == 0
    (await admin.post("/_devnet/price", json={"factor": "ETH", "price": 2600})).raise_for_status()
    moved = (await adapter.read_accounts([WALLET]))[0]
    assert moved.venue_health == Decimal(4200) / Decimal(156)
    assert moved.venue_health < main.venue_health


async def test_dydx_unknown_address_is_empty_ok(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    assert await dydx_adapter(server, context).read_accounts([WALLET]) == []


async def test_dydx_geo_block_is_unavailable_with_reason(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_dydx(admin)
    (await admin.post("/_devnet/fault", json={"venue": "dydx_v4", "mode": "403"})).raise_for_status()
    (account,) = await dydx_adapter(server, context).read_accounts([WALLET])
    assert account.status is AccountStatus.UNAVAILABLE
    assert account.status_reason is not None and "403" in account.status_reason
    assert "jurisdiction" in account.status_reason


async def test_derive_reads_options_and_normalizes_health(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y%m%d")
    (
        await admin.post(
            "/_devnet/seed/derive",
            json={
                "wallet": WALLET,
                "subaccounts": [
                    {
                        "id": 42,
                        "collaterals": {"USDC": 20000},
                        "positions": [
                            {"instrument": f"ETH-{expiry}-3500-C", "amount": "-10", "iv": "0.65"},
                            {"instrument": "ETH-PERP", "amount": "2", "avg_price": "2900"},
                        ],
                    }
                ],
            },
        )
    ).raise_for_status()
    adapter = derive_adapter(server, context)
    (account,) = await adapter.read_accounts([WALLET])
    sv, mm = Decimal(str(account.raw["subaccount_value"])), Decimal(str(account.raw["maintenance_margin"]))
    assert account.venue_health == sv / (sv - mm)
    assert abs(equity(account) - sv) <= Decimal("1e-6")
    option = next(p for p in account.positions if p.kind is PositionKind.OPTION)
    assert option.option is not None
    assert (option.option.strike, option.option.option_type) == (Decimal(3500), "call")
    assert abs(option.option.mark_iv - Decimal("0.65")) < Decimal("1e-4")  # implied back from the mark
    perp = next(p for p in account.positions if p.kind is PositionKind.PERP)
    assert perp.perp is not None and perp.perp.entry_price == Decimal(2900)
    h0 = account.venue_health
    assert h0 is not None and h0 > 1
    (await admin.post("/_devnet/price", json={"factor": "ETH", "price": 4500})).raise_for_status()
    (moved,) = await adapter.read_accounts([WALLET])
    assert moved.venue_health is not None and moved.venue_health < h0  # 10 short calls vs 2 long perps


async def test_429_then_200_is_retried_and_read(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_hl(admin)
    (
        await admin.post(
            "/_devnet/fault", json={"venue": "hyperliquid", "mode": "429", "times": 1, "retry_after": 0.2}
        )
    ).raise_for_status()
    accounts = await hl_adapter(server, context).read_accounts([WALLET])
    assert [a.status for a in accounts] == [AccountStatus.OK, AccountStatus.OK]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("500", "HTTP 500"),
        ("timeout", "timed out"),
        ("garbage", "not JSON"),
        ("missing_field", "shape"),
    ],
)
async def test_fault_makes_that_venue_unavailable_only(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext, mode: str, reason: str
) -> None:
    await seed_hl(admin)
    await seed_dydx(admin)
    (
        await admin.post("/_devnet/fault", json={"venue": "hyperliquid", "mode": mode, "hang_seconds": 2})
    ).raise_for_status()
    hl = await hl_adapter(server, context).read_accounts([WALLET, OTHER])
    assert [a.status for a in hl] == [AccountStatus.UNAVAILABLE, AccountStatus.UNAVAILABLE]
    assert all(a.status_reason and reason in a.status_reason for a in hl), hl[0].status_reason
    assert {a.account_id for a in hl} == {WALLET, OTHER} and all(not a.positions for a in hl)
    dydx = await dydx_adapter(server, context).read_accounts([WALLET])
    assert [a.status for a in dydx] == [AccountStatus.OK, AccountStatus.OK]


async def test_missing_field_error_names_the_field(
    server: VenueServer, admin: httpx.AsyncClient, context: AdapterContext
) -> None:
    await seed_dydx(admin)
    (
        await admin.post(
            "/_devnet/fault",
            json={
                "venue": "dydx_v4",
                "mode": "missing_field",
                "times": 1,
                "field": "markets.ETH-USD.oraclePrice",
            },
        )
    ).raise_for_status()
    (account,) = await dydx_adapter(server, context).read_accounts([WALLET])
    assert account.status is AccountStatus.UNAVAILABLE
    assert account.status_reason is not None and "markets.ETH-USD.oraclePrice" in account.status_reason
    # the default drops the first top-level key: the subaccount listing loses "subaccounts"
    (
        await admin.post("/_devnet/fault", json={"venue": "dydx_v4", "mode": "missing_field", "times": 2})
    ).raise_for_status()
    (account,) = await dydx_adapter(server, context).read_accounts([WALLET])
    assert account.status is AccountStatus.UNAVAILABLE
