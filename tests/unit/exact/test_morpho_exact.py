"""Morpho Blue shares math, accrual and health."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from risk.exact.morpho import (
    MorphoMarket,
    borrowed_assets,
    expected_market,
    health,
    is_healthy,
    liquidation_incentive_factor,
    max_borrow,
    to_assets_down,
    to_assets_up,
    to_shares_down,
    to_shares_up,
    w_taylor_compounded,
)

WAD = 10**18
u128 = st.integers(min_value=0, max_value=2**128 - 1)


def test_lif_examples_from_the_docs() -> None:
    assert round(liquidation_incentive_factor(86 * 10**16) / WAD, 5) == 1.04384
    assert round(liquidation_incentive_factor(945 * 10**15) / WAD, 5) == 1.01678
    assert round(liquidation_incentive_factor(77 * 10**16) / WAD, 5) == 1.07411
    assert liquidation_incentive_factor(385 * 10**15) == 115 * 10**16


def test_recorded_shares_rounding() -> None:
    # 10 shares of (A=100, S=1e6*100): 10*101/(1e8+1e6) = 0.0099.. -> down 0, up 1
    assert to_assets_down(10, 100, 10**8) == 0
    assert to_assets_up(10, 100, 10**8) == 1
    assert to_shares_down(1, 0, 0) == 10**6
    assert to_shares_up(1, 0, 0) == 10**6


@given(u128, u128, u128)
def test_up_and_down_differ_by_at_most_one(s: int, a: int, t: int) -> None:
    down, up = to_assets_down(s, a, t), to_assets_up(s, a, t)
    assert 0 <= up - down <= 1
    assert to_shares_down(s, a, t) <= to_shares_up(s, a, t) <= to_shares_down(s, a, t) + 1


@given(st.integers(min_value=0, max_value=2**100), u128, u128)
def test_round_trip_never_creates_assets(assets: int, a: int, t: int) -> None:
    assert to_assets_down(to_shares_down(assets, a, t), a, t) <= assets
    assert to_assets_up(to_shares_up(assets, a, t), a, t) >= assets


@given(
    st.integers(min_value=0, max_value=WAD // (365 * 86400)), st.integers(min_value=0, max_value=365 * 86400)
)
def test_taylor_is_below_and_close_to_exp(rate: int, n: int) -> None:
    approx = w_taylor_compounded(rate, n) / WAD
    exact = math.expm1(rate * n / WAD)
    assert approx <= exact * (1 + 1e-12) + 1e-15
    assert approx >= exact - exact**4 / 24 - 1e-12 - exact * 1e-12


MARKET = MorphoMarket(
    total_supply_assets=1_000_000 * 10**6,
    total_supply_shares=1_000_000 * 10**12,
    total_borrow_assets=800_000 * 10**6,
    total_borrow_shares=800_000 * 10**12,
    last_update=1_000,
    fee=10**17,
)


def test_accrual_recorded_values() -> None:
    rate = 1_585_489_599  # ~5% a year per second, wad
    accrued = expected_market(MARKET, rate, 1_000 + 86_400)
    first = rate * 86_400
    second = first * first // (2 * WAD)
    third = second * first // (3 * WAD)
    interest = MARKET.total_borrow_assets * (first + second + third) // WAD
    assert accrued.total_borrow_assets == MARKET.total_borrow_assets + interest
    assert accrued.total_supply_assets == MARKET.total_supply_assets + interest
    fee = interest * MARKET.fee // WAD
    fee_shares = (
        fee * (MARKET.total_supply_shares + 10**6) // (MARKET.total_supply_assets + interest - fee + 1)
    )
    assert accrued.total_supply_shares == MARKET.total_supply_shares + fee_shares
    assert accrued.total_borrow_shares == MARKET.total_borrow_shares
    assert expected_market(MARKET, rate, 1_000) == MARKET
    assert expected_market(MARKET, rate, 5_000, has_irm=False) == MARKET


@given(
    shares=st.integers(min_value=1, max_value=10**30),
    collateral=st.integers(min_value=0, max_value=10**30),
    price=st.integers(min_value=1, max_value=10**40),
    lltv=st.integers(min_value=1, max_value=WAD - 1),
)
def test_health_below_one_iff_unhealthy(shares: int, collateral: int, price: int, lltv: int) -> None:
    h = health(shares, collateral, price, lltv, MARKET)
    healthy = is_healthy(shares, collateral, price, lltv, MARKET)
    assert (h is not None and h < 1) == (not healthy)
    assert max_borrow(collateral, price, lltv) >= 0
    assert borrowed_assets(shares, MARKET) >= 1


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_accrual_is_monotone_in_time(rate: int, dt: int) -> None:
    a = expected_market(MARKET, rate, MARKET.last_update + dt)
    b = expected_market(MARKET, rate, MARKET.last_update + dt + 1)
    assert b.total_borrow_assets >= a.total_borrow_assets
