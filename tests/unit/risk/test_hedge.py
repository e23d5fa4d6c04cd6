"""Hedge breaks (design section 4.7) on a lending + short-perp ETH hedge, against prices computed
independently of the engine (Hyperliquid's documented liquidation-price formula, Aave's health)."""

from __future__ import annotations

import math

import pytest

from risk.arrays import compile_book
from risk.engine import assess
from risk.params import RiskParams
from risk.stress import scan_range, stress_bounds
from tests.unit.risk.builders import account, cash, collateral, cross, debt, market, perp, portfolio

# the book of config/examples/portfolio.toml without the options leg
COLL, LT, DEBT = 20.0, 0.83, 30_000.0  # Aave: 20 WETH at LT 0.83, 30,000 USDC borrowed
SHORT, CASH, MMR = 20.0, 70_000.0, 0.0125  # Hyperliquid cross: short 20 ETH at 3,000 on 70,000 USDC


def hl_liquidation_price(price: float, size: float, side: int, account_value: float, mmr: float) -> float:
    """Hyperliquid docs ("Liquidations"): ``liq_price = price - side * margin_available / position_size
    / (1 - l * side)`` with ``l = 1 / MAINTENANCE_LEVERAGE`` (= the maintenance fraction) and
    ``margin_available = account_value - maintenance_margin_required`` (cross margin)."""
    margin_available = account_value - size * price * mmr
    return price - side * margin_available / size / (1.0 - mmr * side)


def hedged_book() -> tuple[object, ...]:
    return (
        account("aave", collateral(COLL, 3000, lt=LT), debt(DEBT)),
        cross("hl", perp(-SHORT, 3000, mmr=MMR), cash(CASH)),
    )


def test_short_leg_beyond_the_scan_range_is_a_hedge_break() -> None:
    pf = portfolio(*hedged_book())  # type: ignore[arg-type]
    mk = market({"ETH": 3000.0})
    params = RiskParams()
    a = assess(pf, mk, params, rng_seed=1)

    expect = hl_liquidation_price(3000.0, SHORT, -1, CASH - SHORT * 3000.0, MMR)
    assert expect == pytest.approx(3456.790123456790, rel=1e-12)  # 3000 + 462.5 / 1.0125
    move = expect / 3000.0 - 1.0
    book = compile_book(pf, mk)
    # the case the finder used to miss: beyond the +-1 scan range, within the extreme moves
    assert scan_range(book, params) < move < stress_bounds(0.7, params)[1]

    (brk,) = a.hedge_breaks
    assert brk.factor == "ETH"
    assert brk.leg_account.endswith("/hl")
    assert brk.trigger_price == pytest.approx(expect, rel=1e-9)
    assert brk.trigger_move == pytest.approx(move, rel=1e-9)
    # what is left unhedged once the short is gone: the Aave leg's 20 ETH at the trigger price
    assert brk.unhedged_exposure_usd == pytest.approx(COLL * expect, rel=1e-6)
    # the group is solvent there: Aave's resources plus the perp account's equity (= its maintenance
    # margin at its liquidation price) over the debt plus that maintenance margin
    mm = SHORT * expect * MMR
    pooled = (COLL * expect * LT + (CASH - SHORT * expect)) / (DEBT + mm)
    assert brk.group_health_at_trigger == pytest.approx(pooled, rel=1e-9)
    assert pooled > 1

    # the Aave leg liquidates at debt / (collateral x LT): -39.8%, beyond the extreme move, no break
    aave_price = DEBT / (COLL * LT)
    assert aave_price / 3000.0 - 1.0 < stress_bounds(0.7, params)[0]
    assert not any(b.leg_account.endswith("/aave") for b in a.hedge_breaks)
    down = next(s for s in a.liquidation_ladder if s.factor == "ETH" and s.direction == "down")
    assert down.price == pytest.approx(aave_price, rel=1e-9)


def test_stress_bounds_reach_the_extreme_moves_and_cap_the_down_side() -> None:
    params = RiskParams(scan_sigmas=3.0, scan_range_floor=0.10, extreme_multiple=2.0, horizon_hours=24.0)
    r = 3 * 0.7 * math.sqrt(24 / 8760)
    assert stress_bounds(0.7, params) == pytest.approx((-2 * r, 2 * r))
    assert stress_bounds(0.0, params) == pytest.approx((-0.2, 0.2))  # the floor
    wild = RiskParams(scan_sigmas=3.0, extreme_multiple=3.0, horizon_hours=24.0 * 365)
    assert stress_bounds(2.0, wild) == pytest.approx((-0.99, 18.0))
