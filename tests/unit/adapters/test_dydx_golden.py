"""dYdX v4 golden tests through the pure parsers (shapes per comlink types.ts; see the fixture README)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters import dydx_v4 as dx
from adapters.assets import AssetMap
from adapters.errors import VenueDataError
from risk.model import AsOf, PositionKind
from tests.unit.adapters.conftest import load_fixture

AS_OF = AsOf(timestamp=datetime(2026, 3, 1, tzinfo=UTC))


def test_equity_free_collateral_and_health_equal_the_indexer(assets: AssetMap) -> None:
    markets = dx.parse_markets(load_fixture("dydx_v4", "markets.json"))
    subs = dx.parse_addresses(load_fixture("dydx_v4", "address.json"))
    for sub in subs:
        ours = dx.figures(sub, markets)
        assert ours["equity"] == sub.equity
        assert ours["free_collateral"] == sub.freeCollateral
    main = dx.subaccount_account(
        subs[0], wallet="0xW", deployment="dydx_v4:main", markets=markets, assets=assets, as_of=AS_OF
    )
    # by hand: NC = -4345.678901 + 3.5*3123.456789 + 0.25*64012.35
    nc = Decimal("-4345.678901") + Decimal("10932.0987615") + Decimal("16003.0875")
    mmr = (Decimal("10932.0987615") + Decimal("16003.0875")) * Decimal("0.03")
    assert sum(p.value for p in main.positions) == nc
    assert main.venue_health == nc / mmr
    assert main.raw["liquidatable"] is False
    # withdrawable = free collateral = NC - IMR, the figure our own computation matched above
    assert main.withdrawable == dx.figures(subs[0], markets)["free_collateral"] == Decimal("21242.748047425")
    usdc = next(p for p in main.positions if p.kind is PositionKind.SPOT)
    assert usdc.quantity == Decimal("-4345.678901")  # side SHORT -> negative
    eth = next(p for p in main.positions if p.token == "ETH-USD")
    assert (eth.factor, eth.perp.oracle_price if eth.perp else None) == ("ETH", Decimal("3123.456789"))
    child = dx.subaccount_account(
        subs[1], wallet="0xW", deployment="dydx_v4:main", markets=markets, assets=assets, as_of=AS_OF
    )
    assert child.raw["parent"] == 0 and child.account_id.endswith("/128")


def test_liquidatable_iff_mmr_positive_and_nc_below() -> None:
    markets = dx.parse_markets(load_fixture("dydx_v4", "markets.json"))
    raw = load_fixture("dydx_v4", "address.json")
    raw["subaccounts"][1]["assetPositions"]["USDC"]["size"] = (
        "6100"  # NC = 6100 - 5827.156 = 272.844 < MMR 291.36
    )
    sub = dx.parse_addresses(raw)[1]
    ours = dx.figures(sub, markets)
    assert 0 < ours["equity"] < ours["mmr"]


def test_subaccount_wrapper_and_unknown_market() -> None:
    sub = load_fixture("dydx_v4", "address.json")["subaccounts"][0]
    assert dx.parse_subaccount({"subaccount": sub}).subaccountNumber == 0
    with pytest.raises(VenueDataError, match="subaccount"):
        dx.parse_subaccount(sub)  # the wrapper is required
    markets = dx.parse_markets(load_fixture("dydx_v4", "markets.json"))
    del markets["BTC-USD"]
    with pytest.raises(VenueDataError, match="BTC-USD"):
        dx.figures(dx.parse_subaccount({"subaccount": sub}), markets)
