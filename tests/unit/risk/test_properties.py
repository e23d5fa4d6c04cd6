"""Hypothesis properties of the composite figures (design section 4)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.arrays import compile_book
from risk.crossview import cross_view
from risk.health import current_state
from risk.margin import evaluate
from risk.params import RiskParams
from risk.stress import build_grid, run_stress
from tests.unit.risk.builders import account, cash, collateral, cross, debt, market, perp, portfolio

amounts = st.floats(min_value=0.01, max_value=1e4, allow_nan=False)
prices = st.floats(min_value=1.0, max_value=1e5, allow_nan=False)
lts = st.floats(min_value=0.3, max_value=0.95)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(amounts, amounts, lts), min_size=1, max_size=6), prices)
def test_chf_is_min_health_and_invariant_to_order(specs: list[tuple[float, float, float]], eth: float) -> None:
    accounts = [account(f"acct{i}", collateral(q, eth, lt=lt), debt(d * eth)) for i, (q, d, lt) in enumerate(specs)]
    book = compile_book(portfolio(*accounts), market({"ETH": eth}))
    state = current_state(book)
    h = state.health
    assert state.chf == h.min()
    expected = [q * lt / d for q, d, lt in specs]
    assert math.isclose(state.chf, min(expected), rel_tol=1e-12)
    reversed_book = compile_book(portfolio(*reversed(accounts)), market({"ETH": eth}))
    reversed_state = current_state(reversed_book)
    assert reversed_state.chf == state.chf and reversed_state.chf_account == state.chf_account
    np.testing.assert_array_equal(reversed_state.health, h)


@settings(max_examples=40, deadline=None)
@given(amounts, amounts, st.floats(min_value=0.001, max_value=10), prices)
def test_health_rises_with_collateral_and_falls_with_debt(q: float, d: float, extra: float, eth: float) -> None:
    def h(coll: float, owed: float) -> float:
        book = compile_book(portfolio(account("a", collateral(coll, eth), debt(owed))), market({"ETH": eth}))
        return float(evaluate(book, book.prices0[None, :]).health[0, 0])

    base = h(q, d)
    assert h(q + extra, d) > base
    assert h(q, d + extra) < base


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=0.1, max_value=100), prices, st.floats(min_value=0.2, max_value=0.7))
def test_netted_requirement_of_a_perfect_hedge_is_below_venue_requirements(
    q: float, eth: float, debt_share: float
) -> None:
    pf = portfolio(
        account("aave", collateral(q, eth), debt(debt_share * q * eth)),
        cross("hl", perp(-q, eth, mmr="0.02"), cash(2 * q * eth)),
    )
    book = compile_book(pf, market({"ETH": eth}))
    params = RiskParams()
    view = cross_view(current_state(book).evaluation, run_stress(book, build_grid(book, params)), params)
    venue = debt_share * q * eth + 0.02 * q * eth
    assert math.isclose(view.venue_requirement_usd, venue, rel_tol=1e-9)
    assert view.netted_requirement_usd < venue
    assert view.netted_requirement_usd <= 1e-9 * q * eth  # delta-neutral: no scan loss
    assert view.fragmentation_cost_usd > 0.99 * venue


def test_no_requirement_gives_infinite_views() -> None:
    book = compile_book(portfolio(account("a", collateral(1, 3000))), market({"ETH": 3000.0}))
    params = RiskParams()
    state = current_state(book)
    view = cross_view(state.evaluation, run_stress(book, build_grid(book, params)), params)
    assert math.isinf(state.chf) and math.isinf(view.pooled_hf)
