"""The Monte Carlo's health kernel and its parts against ``risk.margin.evaluate`` and brute force.

``risk.margin.evaluate`` is the reference (its own tests check it against closed forms and scalar
loops); the kernel must give the same resources and requirements on the same scenarios, and the
same ``h < 1`` flags, whatever its shortcuts (pairs, batch-linear perps, options tables, screen).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from risk.arrays import KIND_OPTION, Book, compile_book
from risk.margin import derive_pm_model, equity, evaluate
from risk.margin.blas import blocked_matmul, column_extremes
from risk.margin.kernel import health_kernel
from risk.margin.options_bounds import options_bounds
from risk.margin.options_table import _envelope
from risk.margin.valuation import scenario_prices
from risk.model import FactorId, MarginTier, PerpParams, Position, PositionKind, StandardMarginModel
from risk.montecarlo import _log_paths, _PathSpec, clear_path_cache, p_liq, step_factor
from risk.params import RiskParams
from risk.subbook import select_accounts
from tests.unit.risk.builders import (
    account,
    cash,
    collateral,
    cross,
    debt,
    isolated,
    market,
    option,
    perp,
    portfolio,
)

MK = market({"ETH": 3000.0, "BTC": 60000.0, "USDC/USD": 1.0}, vols={"ETH": 0.9, "BTC": 0.7, "USDC/USD": 0.05})


def gmx(qty: float, entry: float, floor: float) -> Position:
    return Position(
        token="ETH",
        factor=FactorId("ETH"),
        kind=PositionKind.PERP,
        quantity=Decimal(str(qty)),
        price=Decimal(str(entry)),
        perp=PerpParams(
            entry_price=Decimal(str(entry)),
            margin_tiers=(MarginTier(Decimal(0), Decimal("0.01")),),
            requirement_basis="entry_notional",
            min_requirement=Decimal(str(floor)),
        ),
    )


def usdc_cash(amount: float) -> Position:
    return dataclasses.replace(cash(amount), basis_factor=FactorId("USDC/USD"))


def mixed_book() -> Book:
    tiers = ((0, "0.01"), (100_000, "0.02"), (200_000, "0.05"))
    accounts = (
        account("lend", collateral(10, 3000), collateral(0.5, 60000, factor="BTC", lt="0.75"), debt(30000)),
        cross("tiers", perp(-40, 3000, tiers=tiers), perp(1, 60000, factor="BTC"), usdc_cash(133_000)),
        isolated("iso", perp(5, 3000, mmr="0.02"), cash(-13_800)),
        isolated("gmx", gmx(2, 3000, 50), cash(-5_850)),
        account(
            "opt",
            option(-10, 120, 3200, 10, "call"),
            option(5, 95, 2800, 40, "put"),
            usdc_cash(9000),
            model=derive_pm_model(),
            venue="derive",
        ),
        account(
            "opt2",  # two underlyings: no table, evaluated exactly
            option(-4, 120, 3200, 10, "call"),
            option(-0.2, 2000, 60000, 20, "call", under=60000, factor="BTC"),
            cash(9000),
            model=derive_pm_model(),
            venue="derive",
        ),
        cross("stray", perp(1, 3000), option(2, 95, 2800, 40, "put"), cash(400)),  # an option outside
        account(  # a venue's standard margin: not compiled, evaluated exactly
            "std",
            option(-3, 120, 3200, 10, "call"),
            perp(2, 3000, mmr="0.02"),
            cash(5000),
            model=StandardMarginModel(),
            venue="deribit",
        ),
    )
    return compile_book(portfolio(*accounts), MK)


def scenarios(book: Book, n: int, sd: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    live = np.flatnonzero(book.vols > 0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, live.size)) * sd * book.vols[live] / book.vols[live].max()
    prices = np.repeat(book.prices0[None, :], n, axis=0)
    prices[:, live] *= np.exp(x)
    return x, live, prices


def test_kernel_figures_equal_evaluate() -> None:
    book = mixed_book()
    x, live, prices = scenarios(book, 3000, 0.25)
    kernel = health_kernel(book, lambda f, b: (-0.6, 0.6))
    exact_keys = [book.account_keys[a] for a in kernel.c.exact]
    assert exact_keys == ["deribit:test/std", "derive:test/opt2", "hyperliquid:test/stray"]
    assert [book.account_keys[t.account] for t in kernel.c.tables] == ["derive:test/opt"]
    res, req = kernel.figures(x, live)
    ev = evaluate(book, prices)
    table = book.account_keys.index("derive:test/opt")
    exact = np.ones(book.n_accounts, dtype=bool)
    exact[table] = False
    np.testing.assert_allclose(res[:, exact], ev.resources[:, exact], rtol=1e-11, atol=1e-8)
    np.testing.assert_allclose(req[:, exact], ev.requirement[:, exact], rtol=1e-11, atol=1e-8)
    # the options table: interpolation, second order in the step (2049 nodes over +-0.6; a 10-day
    # short call's gamma): within 1e-5 of the requirement, a tenth of a cent of the option value
    np.testing.assert_allclose(res[:, table], ev.resources[:, table], rtol=1e-7, atol=1e-3)
    np.testing.assert_allclose(req[:, table], ev.requirement[:, table], rtol=1e-5)
    # the tiered perps did cross tiers, the GMX floor applied somewhere, the screen had work to do
    tiers = book.account_keys.index("hyperliquid:test/tiers")
    notional = 40 * prices[:, book.factors.index("ETH")]
    assert (notional < 100_000).any() and (notional > 100_000).any()
    assert np.isin(tiers, np.flatnonzero((ev.health < 1).any(axis=0)))


def test_kernel_below_equals_evaluate_flags() -> None:
    book = mixed_book()
    x, live, prices = scenarios(book, 4000, 0.3, seed=1)
    kernel = health_kernel(book, lambda f, b: (-1.5, 1.5))
    flags = kernel.below(x, live)
    want = evaluate(book, prices).health < 1.0
    assert want.any(axis=0).sum() >= 4 and not want.all(axis=0).any()
    np.testing.assert_array_equal(flags, want)
    # narrow moves: the screen rules most accounts out, and must not change any flag
    small = x * 0.02
    near = np.repeat(book.prices0[None, :], small.shape[0], axis=0)
    near[:, live] *= np.exp(small)
    np.testing.assert_array_equal(kernel.below(small, live), evaluate(book, near).health < 1.0)


def test_kernel_options_table_out_of_range_rows_are_exact() -> None:
    book = mixed_book()
    x, live, prices = scenarios(book, 500, 0.4, seed=2)
    kernel = health_kernel(book, lambda f, b: (-0.05, 0.05))  # most rows fall outside the table
    res, req = kernel.figures(x, live)
    ev = evaluate(book, prices)
    a = book.account_keys.index("derive:test/opt")
    outside = np.abs(x[:, list(live).index(book.factors.index("ETH"))]) > 0.05
    assert outside.sum() > 100
    np.testing.assert_allclose(req[outside, a], ev.requirement[outside, a], rtol=1e-12)
    np.testing.assert_allclose(res[outside, a], ev.resources[outside, a], rtol=1e-12)


def test_p_liq_equals_first_passage_counted_with_evaluate() -> None:
    book = mixed_book()
    params = RiskParams(mc_paths=600, mc_steps=12, horizon_hours=72.0, mc_distribution="student_t")
    result = p_liq(book, MK, params, seed=4)
    # independent count: the same paths through evaluate, every scenario, every account
    live, chol = step_factor(book, MK, 72.0 / 8760.0 / 12)
    spec = _PathSpec(4, 600, 12, chol, True, 4.0, max(1, 49_152 // 12))
    hits = []
    for chunk in _log_paths(spec):
        n = chunk.x.shape[1]
        prices = np.repeat(book.prices0[None, :], 12 * n, axis=0)
        prices[:, live] *= np.exp(chunk.x.reshape(12 * n, live.size))
        below = (evaluate(book, prices).health < 1.0).reshape(12, n, book.n_accounts)
        hits.append(below.any(axis=0))
    hit = np.concatenate(hits)
    assert 0.05 < hit.any(axis=1).mean() < 0.95
    assert result.p_liq == hit.any(axis=1).mean()
    assert result.account_p_liq == {k: float(hit[:, a].mean()) for a, k in enumerate(book.account_keys)}


def test_cached_paths_give_the_same_result() -> None:
    book = mixed_book()
    params = RiskParams(mc_paths=500, mc_steps=6)
    clear_path_cache()
    cold = p_liq(book, MK, params, seed=9)
    warm = p_liq(book, MK, params, seed=9)
    small_chunks = p_liq(book, MK, params, seed=9, chunk_scenarios=300)
    assert cold == warm == small_chunks


def test_select_accounts_gives_the_same_figures() -> None:
    book = mixed_book()
    _, _, prices = scenarios(book, 200, 0.2, seed=3)
    full = evaluate(book, prices)
    for chosen in ([4], [0, 6], [5, 1, 3], list(range(book.n_accounts))[::-1]):
        part = evaluate(select_accounts(book, chosen), prices)
        for name in ("equity", "resources", "requirement", "health", "penalty"):
            np.testing.assert_allclose(getattr(part, name), getattr(full, name)[:, chosen], rtol=1e-13)
        np.testing.assert_allclose(equity(select_accounts(book, chosen), prices), full.equity[:, chosen], rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 8)), elements=st.floats(-50, 50)),
    arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 8)), elements=st.floats(-50, 50)),
)
def test_envelope_is_the_minimum_of_every_line(left: np.ndarray, right: np.ndarray) -> None:
    n, g = min(left.shape[0], right.shape[0]), min(left.shape[1], right.shape[1])
    left, right = left[:n, :g], right[:n, :g]
    env_left, env_slope = _envelope(left, right)
    w = np.linspace(0.0, 1.0, 41)
    brute = (left[:, :, None] + (right - left)[:, :, None] * w).min(axis=1)  # [I, W]
    mine = (env_left[:, :, None] + env_slope[:, :, None] * w).min(axis=0)
    np.testing.assert_allclose(mine, brute, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3000), st.integers(1, 9)), elements=st.floats(-1e6, 1e6)))
def test_blas_helpers(a: np.ndarray) -> None:
    lo, hi = column_extremes(a)
    np.testing.assert_array_equal(lo, a.min(axis=0))
    np.testing.assert_array_equal(hi, a.max(axis=0))
    b = np.arange(a.shape[1] * 3, dtype=np.float64).reshape(a.shape[1], 3)
    np.testing.assert_allclose(blocked_matmul(a, b), a @ b, rtol=1e-12, atol=1e-6)


@pytest.mark.parametrize("account_index", [0, 1, 2, 3])
def test_screen_never_drops_an_account_that_liquidates(account_index: int) -> None:
    book = select_accounts(mixed_book(), [account_index])
    x, live, prices = scenarios(book, 2000, 0.35, seed=account_index)
    kernel = health_kernel(book, lambda f, b: (-2.0, 2.0))
    flags = kernel.below(x, live)
    want = evaluate(book, prices).health < 1.0
    np.testing.assert_array_equal(flags, want)


@settings(max_examples=40, deadline=None)
@given(st.floats(-0.5, 0.5), st.floats(0.0, 0.4))
def test_options_bounds_contain_the_exact_figures(x_lo: float, width: float) -> None:
    book = mixed_book()
    a = book.account_keys.index("derive:test/opt")
    value_lo, req_hi = options_bounds(book, a, x_lo, x_lo + width)
    eth = book.factors.index("ETH")
    x = np.linspace(x_lo, x_lo + width, 101)
    prices = np.repeat(book.prices0[None, :], x.size, axis=0)
    prices[:, eth] *= np.exp(x)
    sub = select_accounts(book, [a])
    ev = evaluate(sub, prices)
    opts = sub.kind == KIND_OPTION
    values = scenario_prices(sub, prices, None).values[:, opts].sum(axis=1)
    assert values.min() >= value_lo - 1e-9 * np.abs(values).max()
    assert ev.requirement[:, 0].max() <= req_hi * (1 + 1e-12)
    if width == 0.0:  # exact at a point
        assert value_lo == pytest.approx(values[0], rel=1e-12)
        assert req_hi == pytest.approx(ev.requirement[0, 0], rel=1e-12)
