"""Hyperliquid golden tests through the pure parsers: the official docs example (current shape) and
the 2023 SDK cassette (old shape: identities only, its margin parameters are gone)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import hyperliquid as hl
from adapters.assets import AssetMap
from adapters.errors import VenueDataError
from risk.model import AsOf, MarginTier, PositionKind
from tests.unit.adapters.conftest import load_fixture

AS_OF = AsOf(timestamp=datetime(2024, 2, 22, tzinfo=UTC))
WALLET = "0x5e9ee1089755c3435139848e47e6635505d5a13a"


def accounts(state_raw: object, assets: AssetMap, markets: dict[str, hl.MarketInfo] | None = None):
    return hl.parse_accounts(
        wallet=WALLET,
        deployment="hyperliquid:main",
        state=hl.parse_clearinghouse_state(state_raw),
        spot=None,
        mode="default",
        markets=markets or {},
        assets=assets,
        as_of=AS_OF,
    )


def test_docs_example_liquidation_price_and_mm(assets: AssetMap) -> None:
    raw = load_fixture("hyperliquid", "clearinghouse_state_docs.json")
    state = hl.parse_clearinghouse_state(raw)
    p = state.assetPositions[0].position
    tiers = hl.tiers_for_leverage([(Decimal(0), 50)])
    mm = hl.maintenance_margin(p.positionValue, tiers)
    assert mm == Decimal("1.0002765")  # 100.02765 * 1/(2*50)
    mark = p.positionValue / abs(p.szi)
    assert mark == Decimal("2985.9")
    liq = hl.liquidation_price(price=mark, szi=p.szi, margin_available=p.marginUsed - mm, mmr=Decimal("0.01"))
    assert liq is not None
    assert liq.quantize(Decimal("0.0001")) == Decimal("2866.2694")
    # The venue computes from unexposed internals and prints marginUsed cut to 6 decimals (the
    # liquidationPx implies an internal margin of 4.9678265002, printed 4.967826: truncated, not
    # rounded). One unit of the 6th decimal moves liq by 1e-6 / (|szi| * (1 - mmr)): the venue's
    # figure must lie within that propagated bound, and no closer bound can be claimed from these
    # inputs (about 5e-9 relative here; the formula itself is reproduced to 1e-9 above).
    rounding_bound = Decimal("1e-6") / (abs(p.szi) * (1 - Decimal("0.01")))
    assert abs(liq - p.liquidationPx) <= rounding_bound
    assert abs(liq - p.liquidationPx) / p.liquidationPx < Decimal("1e-8")
    assert state.crossMaintenanceMarginUsed == Decimal(0)


def test_docs_example_accounts(assets: AssetMap) -> None:
    (iso,) = accounts(load_fixture("hyperliquid", "clearinghouse_state_docs.json"), assets)[1:]
    cross = accounts(load_fixture("hyperliquid", "clearinghouse_state_docs.json"), assets)[0]
    # cross: cash only, equity = crossMarginSummary.accountValue, no requirement
    assert cross.account_id == f"{WALLET}/cross"
    assert sum(p.value for p in cross.positions) == Decimal("13104.514502")
    assert cross.venue_health == Decimal("Infinity")
    # no cross position, so no margin is held: everything in the cross account can be withdrawn
    assert cross.withdrawable == sum(p.value for p in cross.positions)
    assert iso.withdrawable is None  # isolated margin: the venue reports no figure
    # isolated: rawUsd + szi*mark = marginUsed; health = marginUsed / MM
    assert iso.account_id == f"{WALLET}/isolated/ETH"
    assert sum(p.value for p in iso.positions) == Decimal("4.967826")
    assert iso.venue_health == Decimal("4.967826") / Decimal("1.0002765")
    perp = next(p for p in iso.positions if p.kind is PositionKind.PERP)
    assert perp.factor == "ETH" and perp.quantity == Decimal("0.0335")
    assert perp.perp is not None and perp.perp.entry_price == Decimal("2986.3")
    cash = next(p for p in iso.positions if p.kind is PositionKind.SPOT)
    assert (cash.factor, cash.basis_factor, cash.quantity) == ("USD", "USDC/USD", Decimal("-95.059824"))
    # all accounts together = marginSummary.accountValue
    total = sum(p.value for a in (cross, iso) for p in a.positions)
    assert total == Decimal("13109.482328")


def test_2023_cassette_identities(assets: AssetMap) -> None:
    """Old shape (no crossMaintenanceMarginUsed, cumFunding, maxLeverage; maxTradeSzs extra) parses;
    accountValue = totalRawUsd + sum(szi * mark), with tiers from the recorded 2023 meta."""
    markets = hl.parse_meta_and_ctxs(load_fixture("hyperliquid", "meta_2023.json"))
    assert markets["BTC"].tiers == (MarginTier(Decimal(0), Decimal("0.01")),)
    (cross,) = accounts(load_fixture("hyperliquid", "clearinghouse_state_2023.json"), assets, markets)
    assert sum(p.value for p in cross.positions) == Decimal("1182.312496")
    assert len(cross.positions) == 13  # cash + 12 perps
    assert cross.venue_health is None  # the old shape publishes no maintenance margin
    # APE, DYDX, ATOM, MATIC... are unknown to the asset map: own factor, warning kept
    ape = next(p for p in cross.positions if p.token == "APE")
    assert ape.factor == "APE"
    assert any("APE" in w for w in cross.raw["warnings"])  # type: ignore[attr-defined]


def test_zero_size_positions_are_dropped(assets: AssetMap) -> None:
    raw = load_fixture("hyperliquid", "clearinghouse_state_docs.json")
    raw["assetPositions"][0]["position"]["szi"] = "0"
    raw["assetPositions"][0]["position"]["positionValue"] = "0.0"
    result = accounts(raw, assets)
    assert [a.account_id for a in result] == [f"{WALLET}/cross"]


def test_missing_field_names_it(assets: AssetMap) -> None:
    raw = load_fixture("hyperliquid", "clearinghouse_state_docs.json")
    del raw["assetPositions"][0]["position"]["szi"]
    with pytest.raises(VenueDataError, match=r"assetPositions\.0\.position\.szi"):
        hl.parse_clearinghouse_state(raw)
    raw = load_fixture("hyperliquid", "clearinghouse_state_docs.json")
    raw["marginSummary"]["accountValue"] = 13109.48  # a float would have lost digits
    with pytest.raises(VenueDataError, match=r"marginSummary\.accountValue"):
        hl.parse_clearinghouse_state(raw)


def test_margin_tables_from_meta() -> None:
    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
            {"name": "DOGE", "szDecimals": 0, "maxLeverage": 10, "marginTableId": 10},
        ],
        "marginTables": [
            [
                56,
                {
                    "description": "tiered 40x",
                    "marginTiers": [
                        {"lowerBound": "0.0", "maxLeverage": 40},
                        {"lowerBound": "150000000.0", "maxLeverage": 20},
                    ],
                },
            ],
        ],
    }
    markets = hl.parse_meta_and_ctxs(meta)
    assert markets["DOGE"].tiers == (MarginTier(Decimal(0), Decimal("0.05")),)
    btc = markets["BTC"].tiers
    assert [t.maintenance_fraction for t in btc] == [Decimal("0.0125"), Decimal("0.025")]
    # deduction continuity: at the boundary both tiers give the same MM
    bound = Decimal(150_000_000)
    assert hl.maintenance_margin(bound, btc) == bound * Decimal("0.0125")
    # above: ntl*0.025 - 150M*(0.025-0.0125)
    assert hl.maintenance_margin(Decimal(200_000_000), btc) == Decimal(200_000_000) * Decimal(
        "0.025"
    ) - bound * Decimal("0.0125")


@given(
    st.lists(
        st.tuples(st.integers(1, 10**9), st.integers(1, 50)), min_size=1, max_size=4, unique_by=lambda r: r[0]
    ),
    st.integers(1, 50),
    st.integers(0, 2 * 10**9),
)
def test_maintenance_margin_is_continuous_and_monotone(rows, first_lev, ntl) -> None:
    """MM is continuous across every tier bound and never decreases with size (when leverage falls)."""
    levs = sorted([first_lev] + [lev for _, lev in rows], reverse=True)
    bounds = sorted(b for b, _ in rows)
    tiers = hl.tiers_for_leverage(
        [(Decimal(0), levs[0])] + [(Decimal(b), lv) for b, lv in zip(bounds, levs[1:], strict=False)]
    )
    for t in tiers[1:]:
        below = hl.maintenance_margin(t.lower_bound - Decimal("1e-9"), tiers)
        at = hl.maintenance_margin(t.lower_bound, tiers)
        assert abs(at - below) < Decimal("1e-8")
    n = Decimal(ntl)
    assert hl.maintenance_margin(n + 1, tiers) >= hl.maintenance_margin(n, tiers)
