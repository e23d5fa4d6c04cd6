"""GMX v2 parsers and normalization, checked against an independent transcription of
``PositionUtils.isPositionLiquidatable`` (early returns, integer math) and against the risk engine.

The recorded tickers figures are the Avalanche ``/prices/tickers`` snapshot of perps_options.md §3.5
(ETH 2376.2847, BTC.b 43039.74, USDC 1.0)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.assets import AssetInfo, AssetMap
from adapters.errors import VenueDataError
from adapters.gmx_v2 import (
    MarketParams,
    PositionData,
    TokenView,
    VenueCheck,
    data_store_key,
    exact_health,
    liquidation_figures,
    market_key,
    parse_position_account,
    parse_tickers,
    position_key,
    usd_price,
)
from risk.arrays import compile_book
from risk.health import current_state
from risk.model import AsOf, FactorId, Portfolio, PositionKind
from tests.unit.risk.builders import market

P30 = 10**30
ACCOUNT = "0x1111111111111111111111111111111111111111"
MARKET = "0x70d95587d40A2caf56bd97485aB3Eec10Bee6336"
WETH = "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1"
USDC = "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"
ASSETS = AssetMap({"ETH": AssetInfo(FactorId("ETH")), "USDC": AssetInfo(FactorId("USD"))})
AS_OF = AsOf(
    timestamp=datetime(2026, 11, 21, tzinfo=UTC), chain="arbitrum", block_number=1, block_hash="0x00"
)


# --- keys: manual ABI encoding, independent of eth_abi ---------------------------------------------------


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _string_key(name: str) -> bytes:
    raw = name.encode()
    padded = raw + bytes(-len(raw) % 32)
    return bytes(keccak(_word(32) + _word(len(raw)) + padded))


def test_keys_match_a_manual_abi_encoding() -> None:
    assert data_store_key("MIN_COLLATERAL_USD") == _string_key("MIN_COLLATERAL_USD")
    name = "MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION"
    assert market_key(name, MARKET) == bytes(keccak(_string_key(name) + _addr(MARKET)))
    expected = bytes(keccak(_addr(ACCOUNT) + _addr(MARKET) + _addr(USDC) + _word(1)))
    assert position_key(ACCOUNT, MARKET, USDC, True) == expected
    assert position_key(ACCOUNT, MARKET, USDC, False) != expected


# --- tickers -----------------------------------------------------------------------------------------------


def _ticker(address: str, symbol: str, low: str, high: str | None = None) -> dict[str, object]:
    return {
        "tokenAddress": address,
        "tokenSymbol": symbol,
        "minPrice": low,
        "maxPrice": high or low,
        "updatedAt": 1,
    }


def test_recorded_avalanche_snapshot_scales_by_30_minus_decimals() -> None:
    raw = [
        _ticker("0x49D5c2BdFfac6CE2BFdB6640F4F80f226bc10bAB", "WETH.e", "2376284700000000"),
        _ticker("0x152b9d0FdC40C096757F570A51E494bd4b943E50", "BTC.b", "430397400000000000000000000"),
        _ticker("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USDC", "1000000000000000000000000"),
    ]
    tickers = parse_tickers(raw)
    prices = [usd_price(t.minPrice, d) for t, d in zip(tickers.values(), (18, 8, 6), strict=True)]
    assert prices == [Decimal("2376.2847"), Decimal("43039.74"), Decimal(1)]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"oops": 1}, "tickers"),
        ([{"tokenAddress": WETH, "tokenSymbol": "ETH", "maxPrice": "1"}], "tickers.0.minPrice"),
        ([_ticker(WETH, "ETH", "1.5")], "tickers.0.minPrice"),
        ([{**_ticker(WETH, "ETH", "1"), "minPrice": 3000}], "tickers.0.minPrice"),
        ([_ticker("0x1234", "ETH", "1")], "tickers.0.tokenAddress"),
        ([_ticker(WETH, "ETH", "5", "4")], "tickers.0 (ETH)"),
        ([_ticker(WETH, "ETH", "0")], "tickers.0 (ETH)"),
    ],
)
def test_bad_tickers_are_data_errors_naming_the_field(raw: object, field: str) -> None:
    with pytest.raises(VenueDataError, match=field.replace("(", r"\(").replace(")", r"\)")):
        parse_tickers(raw)


# --- the rule ------------------------------------------------------------------------------------------------


def gmx_is_liquidatable(
    *,
    is_long: bool,
    size_in_usd: int,
    size_in_tokens: int,
    collateral_amount: int,
    cost_amount: int,
    index: tuple[int, int],
    collateral_min: int,
    impact: int,
    pnl_cap: int,
    min_usd: int,
    factor: int,
    max_impact_factor: int,
) -> tuple[bool, int, int]:
    """Transcription of PositionUtils.isPositionLiquidatable(shouldValidateMinCollateralUsd=true,
    forLiquidation=true): (liquidatable, remaining, requirement)."""
    value = size_in_tokens * (index[0] if is_long else index[1])
    pnl = (value - size_in_usd if is_long else size_in_usd - value) + pnl_cap
    if impact >= 0:
        impact = 0
    elif impact < -(size_in_usd * max_impact_factor // P30):
        impact = -(size_in_usd * max_impact_factor // P30)
    remaining = collateral_amount * collateral_min + pnl + impact - cost_amount * collateral_min
    min_for_leverage = size_in_usd * factor // P30
    requirement = max(min_usd, min_for_leverage)
    if remaining < min_usd:
        return True, remaining, requirement
    if remaining <= 0:
        return True, remaining, requirement
    return remaining < min_for_leverage, remaining, requirement


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    is_long = draw(st.booleans())
    index_decimals = draw(st.sampled_from([18, 8]))
    price = Decimal(draw(st.integers(10, 100_000)))
    spread = Decimal(draw(st.integers(0, 100))) / 10_000
    index = (
        int(price * (1 - spread) * 10 ** (30 - index_decimals)),
        int(price * (1 + spread) * 10 ** (30 - index_decimals)) + 1,
    )
    size_in_usd = draw(st.integers(10, 2_000_000)) * P30 + draw(st.integers(0, P30))
    entry = price * (1 + Decimal(draw(st.integers(-400, 400))) / 1000)
    size_in_tokens = size_in_usd // int(entry * 10 ** (30 - index_decimals))
    same_collateral = draw(st.booleans())
    coll_decimals, coll_min = (
        (index_decimals, index[0]) if same_collateral else (6, 10**24 - draw(st.integers(0, 10**21)))
    )
    collateral_usd = size_in_usd * draw(st.integers(1, 300)) // 1000
    collateral_amount = collateral_usd // coll_min
    cost_amount = collateral_amount * draw(st.integers(0, 80)) // 1000
    value = size_in_tokens * (index[0] if is_long else index[1])
    uncapped = value - size_in_usd if is_long else size_in_usd - value
    capped = uncapped if uncapped <= 0 else uncapped * draw(st.integers(500, 1000)) // 1000
    return {
        "is_long": is_long,
        "index_decimals": index_decimals,
        "index": index,
        "coll_decimals": coll_decimals,
        "coll_min": coll_min,
        "same_collateral": same_collateral,
        "size_in_usd": size_in_usd,
        "size_in_tokens": size_in_tokens,
        "collateral_amount": collateral_amount,
        "cost_amount": cost_amount,
        "impact": draw(st.integers(-size_in_usd // 20, size_in_usd // 50)),
        "uncapped": uncapped,
        "capped": capped,
        "min_usd": draw(st.sampled_from([0, 1, 5, 50])) * P30,
        "factor": draw(st.sampled_from([5, 10, 20, 100])) * P30 // 1000,
        "max_impact_factor": draw(st.integers(0, 100)) * P30 // 10_000,
    }


def _inputs(s: dict[str, object]) -> tuple[PositionData, TokenView, TokenView, MarketParams]:
    def i(name: str) -> int:
        value = s[name]
        assert isinstance(value, int)
        return value

    index = s["index"]
    assert isinstance(index, tuple)
    pos = PositionData(
        key=position_key(ACCOUNT, MARKET, WETH if s["same_collateral"] else USDC, bool(s["is_long"])),
        account=ACCOUNT,  # type: ignore[arg-type]
        market=MARKET,  # type: ignore[arg-type]
        collateral_token=(WETH if s["same_collateral"] else USDC),  # type: ignore[arg-type]
        is_long=bool(s["is_long"]),
        size_in_usd=i("size_in_usd"),
        size_in_tokens=i("size_in_tokens"),
        collateral_amount=i("collateral_amount"),
        pending_impact_amount=0,
        total_cost_amount=i("cost_amount"),
        price_impact_usd=i("impact"),
        total_impact_usd=i("impact"),
        base_pnl_usd=i("capped"),
        uncapped_base_pnl_usd=i("uncapped"),
    )
    index_view = TokenView("ETH", i("index_decimals"), index[0], index[1])
    coll_view = (
        index_view
        if s["same_collateral"]
        else TokenView("USDC", i("coll_decimals"), i("coll_min"), i("coll_min"))
    )
    params = MarketParams(i("factor"), i("factor"), i("max_impact_factor"), i("min_usd"))
    return pos, index_view, coll_view, params


def _expected(s: dict[str, object]) -> tuple[bool, int, int]:
    index = s["index"]
    assert isinstance(index, tuple)
    return gmx_is_liquidatable(
        is_long=bool(s["is_long"]),
        size_in_usd=int(str(s["size_in_usd"])),
        size_in_tokens=int(str(s["size_in_tokens"])),
        collateral_amount=int(str(s["collateral_amount"])),
        cost_amount=int(str(s["cost_amount"])),
        index=index,
        collateral_min=int(str(s["coll_min"])) if not s["same_collateral"] else index[0],
        impact=int(str(s["impact"])),
        pnl_cap=int(str(s["capped"])) - int(str(s["uncapped"])),
        min_usd=int(str(s["min_usd"])),
        factor=int(str(s["factor"])),
        max_impact_factor=int(str(s["max_impact_factor"])),
    )


def _account(s: dict[str, object], venue: VenueCheck | None = None):  # type: ignore[no-untyped-def]
    pos, index_view, coll_view, params = _inputs(s)
    liquidatable, remaining, requirement = _expected(s)
    check = venue or VenueCheck(liquidatable, "", remaining, params.min_collateral_usd, requirement)
    return parse_position_account(
        wallet=ACCOUNT,
        deployment="gmx_v2:arbitrum",
        pos=pos,
        index=index_view,
        collateral=coll_view,
        params=params,
        venue=check,
        assets=ASSETS,
        as_of=AS_OF,
    )


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_h_below_one_exactly_when_gmx_liquidates(s: dict[str, object]) -> None:
    liquidatable, remaining, requirement = _expected(s)
    pos, _, coll, params = _inputs(s)
    figures = liquidation_figures(pos, coll.min, params)
    assert figures.remaining_usd == remaining
    assert figures.requirement_usd == requirement
    assert figures.is_liquidatable == liquidatable
    account = _account(s)
    h = account.raw["exact_health"]
    assert isinstance(h, Decimal)
    assert (h < 1) == liquidatable
    assert account.raw["liquidatable_mismatch"] is False
    assert account.venue_health is not None
    assert (account.venue_health < 1) == liquidatable


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_positions_sum_to_gmx_remaining_collateral_and_the_engine_agrees(s: dict[str, object]) -> None:
    _, remaining, requirement = _expected(s)
    account = _account(s)
    kinds = [p.kind for p in account.positions]
    assert kinds == [PositionKind.PERP, PositionKind.SPOT, PositionKind.SPOT]
    with localcontext() as ctx:
        ctx.prec = 120
        total = sum((p.quantity * p.price for p in account.positions), Decimal(0))
    assert abs(total * P30 - remaining) <= Decimal(remaining).copy_abs() * Decimal("1e-25") + P30 // 10**12
    perp = account.positions[0].perp
    assert perp is not None
    notional = abs(account.positions[0].quantity) * perp.entry_price
    size = Decimal(int(str(s["size_in_usd"]))) / P30
    assert abs(notional - size) <= size * Decimal("1e-20")  # the requirement is on sizeInUsd
    # the float engine reads the same account: h = remaining / requirement
    index = s["index"]
    assert isinstance(index, tuple)
    eth = float(usd_price(index[0], int(str(s["index_decimals"]))))
    book = compile_book(Portfolio("p", (account,)), market({"ETH": eth, "USD": 1.0}))
    h = float(current_state(book).health[0])
    expected = remaining / requirement if requirement > 0 else math.inf
    if math.isfinite(expected):
        assert h == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_unknown_symbol_is_its_own_factor_with_a_warning() -> None:
    s = {
        "is_long": True,
        "index_decimals": 18,
        "index": (3000 * 10**12, 3001 * 10**12),
        "coll_decimals": 6,
        "coll_min": 10**24,
        "same_collateral": False,
        "size_in_usd": 10_000 * P30,
        "size_in_tokens": 10**19 // 3,
        "collateral_amount": 1_000 * 10**6,
        "cost_amount": 0,
        "impact": 0,
        "uncapped": 0,
        "capped": 0,
        "min_usd": P30,
        "factor": P30 // 100,
        "max_impact_factor": 0,
    }
    pos, index_view, coll_view, params = _inputs(s)
    account = parse_position_account(
        wallet=ACCOUNT, deployment="gmx_v2:arbitrum", pos=pos,
        index=TokenView("PEPE", 18, index_view.min, index_view.max), collateral=coll_view, params=params,
        venue=VenueCheck(False, "", 0, 0, 0), assets=ASSETS, as_of=AS_OF,
    )  # fmt: skip
    assert account.positions[0].factor == "PEPE"
    warnings = account.raw["warnings"]
    assert isinstance(warnings, list) and any("PEPE" in w for w in warnings)


def test_venue_figures_kept_apart_and_disagreement_flagged() -> None:
    s = {
        "is_long": False, "index_decimals": 18, "index": (3000 * 10**12, 3000 * 10**12), "coll_decimals": 6,
        "coll_min": 10**24, "same_collateral": False, "size_in_usd": 10_000 * P30,
        "size_in_tokens": 10**19 // 3, "collateral_amount": 1_000 * 10**6, "cost_amount": 0, "impact": 0,
        "uncapped": 0, "capped": 0, "min_usd": P30, "factor": P30 // 100, "max_impact_factor": 0,
    }  # fmt: skip
    # the venue says liquidatable with a ratio above 1: inconsistent -> no venue_health
    account = _account(s, VenueCheck(True, "min collateral", 2_000 * P30, P30, 100 * P30))
    assert account.venue_health is None
    assert account.raw["venue_inconsistent"] is True
    assert account.raw["liquidatable_mismatch"] is True  # ours: 1000 / 100 -> healthy
    assert account.raw["venue_reason"] == "min collateral"
    assert exact_health(1000 * P30, 100 * P30) == 10
    perp = account.positions[0]
    assert perp.price == Decimal(3000) and perp.perp is not None and perp.perp.oracle_price == Decimal(3000)


def test_exact_health_edges() -> None:
    assert exact_health(5, 0) == Decimal("Infinity")
    assert exact_health(0, 0) == 0
    assert exact_health(-1, 0) == 0
    big = 10**40
    assert exact_health(big - 1, big) < 1  # not rounded up to 1 at 28 digits


def test_venue_early_return_still_gives_a_comparable_venue_health() -> None:
    s = {
        "is_long": True, "index_decimals": 18, "index": (2700 * 10**12, 2700 * 10**12), "coll_decimals": 6,
        "coll_min": 10**24, "same_collateral": False, "size_in_usd": 30_000 * P30,
        "size_in_tokens": 10 * 10**18, "collateral_amount": 2_979 * 10**6, "cost_amount": 0, "impact": 0,
        "uncapped": -3_000 * P30, "capped": -3_000 * P30, "min_usd": P30, "factor": P30 // 100,
        "max_impact_factor": 0,
    }  # fmt: skip
    # remaining -21 < MIN_COLLATERAL_USD: the venue stops before minCollateralUsdForLeverage
    account = _account(s, VenueCheck(True, "min collateral", -21 * P30, P30, 0))
    assert account.raw["exact_health"] == Decimal("-0.07")
    assert account.venue_health == Decimal("-0.07")
    assert account.raw["venue_requirement_usd"] == 300 * P30
