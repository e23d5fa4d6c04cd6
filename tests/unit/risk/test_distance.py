"""Distance to liquidation and the ladder against closed forms (not the code checking itself)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from risk.arrays import compile_book
from risk.distance import account_liquidation_prices, distances, ladder, liquidation_moves, paths
from tests.unit.risk.builders import account, cash, collateral, cross, debt, isolated, market, perp, portfolio


@pytest.mark.parametrize(
    ("qty", "price", "lt", "debt_usd"),
    [(2, 3000, 0.825, 4000), (10.5, 2500, 0.86, 1000), (1, 60000, 0.78, 46000.5), (3, 100, 0.5, 149.99)],
)
def test_lending_liquidation_price_is_debt_over_collateral_lt(
    qty: float, price: float, lt: float, debt_usd: float
) -> None:
    pf = portfolio(account("a", collateral(qty, price, lt=lt), debt(debt_usd)))
    book = compile_book(pf, market({"ETH": float(price)}))
    lm = liquidation_moves(book, paths(book))
    (eth,) = [d for d in distances(book, lm) if d.factor == "ETH"]
    expected = debt_usd / (qty * lt)
    assert eth.down_price == pytest.approx(expected, rel=1e-9)
    assert eth.down == pytest.approx(1 - expected / price, rel=1e-9)
    assert eth.up is None and eth.up_price is None
    assert account_liquidation_prices(book, lm)[0]["ETH"] == pytest.approx(expected, rel=1e-9)


def test_hyperliquid_documented_liquidation_price() -> None:
    """perps_options.md 1.4: isolated ETH long, szi 0.0335, entry 2986.3, mark 2985.9, rawUsd
    -95.059824, maxLeverage 50 -> liquidation 2866.2694 (venue: 2866.26936529)."""
    mark = Decimal("100.02765") / Decimal("0.0335")
    pf = portfolio(isolated("eth", perp("0.0335", mark, mmr="0.01", entry="2986.3"), cash("-95.059824")))
    book = compile_book(pf, market({"ETH": float(mark)}))
    lm = liquidation_moves(book, paths(book))
    (eth,) = [d for d in distances(book, lm) if d.factor == "ETH"]
    # the docs' closed form: price - side * margin_available / |szi| / (1 - mmr * side)
    closed = 2985.9 - (4.967826 - 100.02765 * 0.01) / 0.0335 / (1 - 0.01)
    assert eth.down_price == pytest.approx(closed, rel=1e-9)
    assert eth.down_price == pytest.approx(2866.2694, abs=1e-4)
    assert eth.down_price == pytest.approx(2866.26936529, rel=1e-8)  # the venue's own rounding


def test_short_perp_liquidates_up_at_closed_form() -> None:
    # equity = cash - q P ; MM = q P mmr -> P* = cash / (q (1 + mmr))
    pf = portfolio(cross("s", perp(-2, 3000, mmr="0.02"), cash(6400)))
    book = compile_book(pf, market({"ETH": 3000.0}))
    (eth,) = [d for d in distances(book, liquidation_moves(book, paths(book))) if d.factor == "ETH"]
    assert eth.up_price == pytest.approx(6400 / (2 * 1.02), rel=1e-10)
    assert eth.down is None


def test_market_direction_uses_betas() -> None:
    # SOL collateral, USD debt, beta 2 to ETH: SOL price P0 (1 + m)^2 hits debt / (q LT)
    pf = portfolio(account("a", collateral(100, 150, factor="SOL", lt=0.8), debt(6000)))
    book = compile_book(pf, market({"ETH": 3000.0, "SOL": 150.0}, betas={"SOL": 2.0}))
    lm = liquidation_moves(book, paths(book))
    by = {d.factor: d for d in distances(book, lm)}
    sol_liq = 6000 / (100 * 0.8)
    assert by["SOL"].down_price == pytest.approx(sol_liq, rel=1e-9)
    growth = (sol_liq / 150) ** 0.5
    assert by["market"].down == pytest.approx(1 - growth, rel=1e-9)
    assert by["market"].down_price == pytest.approx(3000 * growth, rel=1e-9)


def test_ladder_orders_liquidations_and_reports_exposure_left() -> None:
    pf = portfolio(
        account("a_far", collateral(2, 3000), debt(3000)),  # liquidates at 1818.18
        account("b_near", collateral(1, 3000), debt(2200)),  # liquidates at 2666.67
        cross("c_short", perp(-1, 3000, mmr="0.02"), cash(3500)),  # up at 3431.37
    )
    book = compile_book(pf, market({"ETH": 3000.0}))
    steps = [s for s in ladder(book, liquidation_moves(book, paths(book))) if s.factor == "ETH"]
    assert [(s.direction, s.account_key.split("/")[1]) for s in steps] == [
        ("down", "b_near"),
        ("down", "a_far"),
        ("up", "c_short"),
    ]
    near, far, up = steps
    assert near.price == pytest.approx(2200 / 0.825, rel=1e-9)
    # after b_near: a_far's 2 ETH and c_short's -1 ETH at that price
    assert near.exposure_left_usd["ETH"] == pytest.approx((2 - 1) * near.price, rel=1e-6)
    assert far.exposure_left_usd["ETH"] == pytest.approx(-1 * far.price, rel=1e-6)
    assert up.exposure_left_usd["ETH"] == pytest.approx(3 * up.price, rel=1e-6)
    # Aave-style penalty: close factor 0.5 x debt x bonus 0.05
    assert near.penalty_usd == pytest.approx(0.5 * 2200 * 0.05, rel=1e-9)
    assert up.penalty_usd == pytest.approx(0.01 * up.price, rel=1e-9)
