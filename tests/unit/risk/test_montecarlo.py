"""p_liq by Monte Carlo against the closed-form barrier-hitting probability of GBM (with the
Broadie-Glasserman-Kou discrete-monitoring correction), reproducibility, Student-t and chunking."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from risk.arrays import compile_book
from risk.model import MarginAccount, MarketState
from risk.montecarlo import p_liq
from risk.params import RiskParams
from tests.unit.risk.builders import account, cash, collateral, cross, debt, perp, portfolio
from tests.unit.risk.builders import market as make_market

BGK = 0.5826  # -zeta(1/2)/sqrt(2 pi)


def lending_account(coll: float, owed: float, lt: str = "0.8", key: str = "a") -> MarginAccount:
    return account(key, collateral(coll, 3000, lt=lt), debt(owed))


def market(vol: float) -> MarketState:
    return make_market({"ETH": 3000.0}, vols={"ETH": vol})


def closed_form_touch(s0: float, barrier: float, sigma: float, horizon_years: float, steps: int) -> float:
    """P(min of a driftless log-price Brownian motion over T <= ln(B/S0)), reflection principle,
    with the barrier shifted by exp(-0.5826 sigma sqrt(dt)) for monitoring at `steps` dates."""
    dt = horizon_years / steps
    b = math.log(barrier / s0) - BGK * sigma * math.sqrt(dt)
    return float(2.0 * norm.cdf(b / (sigma * math.sqrt(horizon_years))))


@pytest.mark.parametrize(("vol", "distance", "steps"), [(0.8, 0.05, 24), (1.2, 0.10, 12)])
def test_p_liq_matches_closed_form_barrier_probability(vol: float, distance: float, steps: int) -> None:
    # h = 10 ETH * P * 0.8 / debt < 1  <=>  P < debt / 8 = barrier
    barrier = 3000.0 * math.exp(-distance)
    acct = lending_account(10, barrier * 8)
    params = RiskParams(mc_distribution="normal", mc_paths=20_000, mc_steps=steps, horizon_hours=24.0)
    book = compile_book(portfolio(acct), market(vol))
    result = p_liq(book, market(vol), params, seed=11)
    expect = closed_form_touch(3000.0, barrier, vol, 24.0 / (365 * 24), steps)
    assert 0.05 < expect < 0.5
    assert abs(result.p_liq - expect) <= 3 * result.stderr, (result.p_liq, expect, result.stderr)
    assert result.stderr == pytest.approx(math.sqrt(result.p_liq * (1 - result.p_liq) / 20_000))
    assert result.account_p_liq == {"aave_v3:test/a": result.p_liq}
    # the continuous-monitoring figure is further off than the corrected one would be allowed to be
    continuous = 2.0 * norm.cdf(-distance / (vol * math.sqrt(1 / 365)))
    assert continuous - expect > 0.01


def test_expected_penalty_is_bonus_on_close_factor_of_debt() -> None:
    barrier = 3000.0 * math.exp(-0.05)
    owed = barrier * 8
    params = RiskParams(mc_distribution="normal", mc_paths=4000)
    book = compile_book(portfolio(lending_account(10, owed)), market(0.8))
    result = p_liq(book, market(0.8), params, seed=3)
    # USD debt does not move: penalty per liquidated path = 0.5 * debt * 0.05
    assert result.expected_penalty_usd == pytest.approx(result.p_liq * 0.5 * owed * 0.05, rel=1e-9)


def test_same_seed_same_result_and_chunk_size_does_not_matter() -> None:
    accounts = (lending_account(10, 22_000, key="a"), lending_account(5, 11_500, key="b"))
    book = compile_book(portfolio(*accounts), market(0.9))
    params = RiskParams(mc_paths=3000)  # Student-t
    a = p_liq(book, market(0.9), params, seed=5)
    b = p_liq(book, market(0.9), params, seed=5, chunk_scenarios=1000)
    c = p_liq(book, market(0.9), params, seed=6)
    assert a == b
    assert a.p_liq != c.p_liq
    assert a.p_liq >= max(a.account_p_liq.values())
    assert a.p_liq <= sum(a.account_p_liq.values())


def test_student_t_has_fatter_tails_than_normal_far_from_the_barrier() -> None:
    # a barrier 4 daily sigmas away: the fat-tailed model must see more liquidations
    barrier = 3000.0 * math.exp(-4 * 0.7 * math.sqrt(1 / 365))
    book = compile_book(portfolio(lending_account(10, barrier * 8)), market(0.7))
    normal = p_liq(book, market(0.7), RiskParams(mc_distribution="normal", mc_paths=20_000), seed=1)
    fat = p_liq(book, market(0.7), RiskParams(mc_distribution="student_t", student_t_df=3.0, mc_paths=20_000),
                seed=1)
    assert fat.p_liq > normal.p_liq + 3 * fat.stderr


def test_hedged_book_correlated_legs() -> None:
    # ETH collateral vs ETH short perp on another venue: with perfect correlation, prices move
    # together, so a down move liquidates the lending leg and an up move the perp leg.
    short = cross("x", perp(-10, 3000, mmr="0.02"), cash(33_000))
    book = compile_book(portfolio(lending_account(10, 22_000), short), market(1.5))
    r = p_liq(book, market(1.5), RiskParams(mc_paths=5000, mc_distribution="normal"), seed=2)
    assert set(r.account_p_liq) == {"aave_v3:test/a", "hyperliquid:test/x"}
    assert all(v > 0 for v in r.account_p_liq.values())
    # the two legs liquidate on opposite sides: a path rarely hits both within a day
    total = sum(r.account_p_liq.values())
    assert max(r.account_p_liq.values()) < r.p_liq <= total
    assert total - r.p_liq < 0.01
