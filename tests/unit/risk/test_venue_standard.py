"""Venue standard margin (``risk.margin.venue_standard``, ``StandardMarginModel``) against the venues'
documented formulas written out here with scalar arithmetic and ``risk.options.black76_price``
(independent of the engine's vectorized Black-76), and the Monte Carlo kernel against ``evaluate``.

Formulas (per contract, quote currency; ``S`` spot, ``mark`` the option's mark):
Aevo short call ``0.1 S + mark``, short put ``max(0.1 S, 0.1 mark) + mark``; Deribit the same with
0.075; long options none; Deribit's resources leave the options' value out.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.arrays import MODEL_STANDARD, compile_book
from risk.errors import RiskInputError
from risk.margin import deribit_pm_model, evaluate
from risk.margin.kernel import health_kernel
from risk.model import DeriveStandardModel, MarginModel, StandardMarginModel
from risk.options import black76_price
from tests.unit.risk.builders import account, cash, market, option, perp, portfolio

AEVO = StandardMarginModel()
DERIBIT = StandardMarginModel(
    call_spot=Decimal("0.075"),
    put_spot=Decimal("0.075"),
    put_mark=Decimal("0.075"),
    option_value_counts=False,
)


def _years(days: float) -> float:
    return days / 365.0


@settings(max_examples=60, deadline=None)
@given(
    qty=st.floats(-20, 20).filter(lambda q: abs(q) > 1e-3),
    mark=st.floats(0.01, 900),
    strike=st.floats(1500, 5000),
    days=st.floats(2, 400),
    kind=st.sampled_from(["call", "put"]),
    deribit=st.booleans(),
    move=st.floats(-0.5, 0.8),
)
def test_option_requirement_is_the_documented_formula(
    qty: float, mark: float, strike: float, days: float, kind: str, deribit: bool, move: float
) -> None:
    model = DERIBIT if deribit else AEVO
    pos = option(f"{qty:.6f}", f"{mark:.6f}", f"{strike:.4f}", days, kind=kind, iv="0.7", under=3000)
    acct = account("a", cash(10000), pos, model=model, venue="aevo")
    book = compile_book(portfolio(acct), market({"ETH": 3000.0}))
    assert book.model[0] == MODEL_STANDARD
    prices = book.prices0[None, :].repeat(2, axis=0)
    eth = 3000.0 * (1 + move)
    prices[1, book.factor_index("ETH")] = eth
    ev = evaluate(book, prices)
    q, m0, k = float(Decimal(f"{qty:.6f}")), float(Decimal(f"{mark:.6f}")), float(Decimal(f"{strike:.4f}"))
    call = kind == "call"
    t = _years(days)
    f = 0.075 if deribit else 0.1
    for row, spot in ((0, 3000.0), (1, eth)):
        b76 = float(black76_price(spot, k, t, 0.7, call)) - float(black76_price(3000.0, k, t, 0.7, call))
        m = max(0.0, m0 + b76)
        unit = (f * spot if call else max(f * spot, f * m)) + m
        want = abs(q) * unit if q < 0 else 0.0
        assert ev.requirement[row, 0] == pytest.approx(want, rel=1e-9, abs=1e-9)
        value = q * (m0 + b76)
        resources = 10000 + (value if not deribit else 0.0)
        assert ev.resources[row, 0] == pytest.approx(resources, rel=1e-9, abs=1e-6)


def test_perps_keep_their_tiers_and_the_spot_price_is_used() -> None:
    opt = option(-2, 150, 2800, 30, kind="put", under=3050)  # forward 3050; the venue's spot is 3000
    assert opt.option is not None
    opt = replace(opt, option=replace(opt.option, spot_price=Decimal(3000)))
    acct = account("a", cash(5000), perp(3, 3000, mmr="0.03"), opt, model=AEVO, venue="aevo")
    book = compile_book(portfolio(acct), market({"ETH": 3000.0}))
    ev = evaluate(book, book.prices0[None, :])
    assert ev.requirement[0, 0] == pytest.approx(0.03 * 3 * 3000 + 2 * (max(300.0, 15.0) + 150), rel=1e-12)
    assert ev.health[0, 0] == pytest.approx((5000 + 9000 - 300) / ev.requirement[0, 0], rel=1e-12)


def test_long_options_only_is_no_requirement() -> None:
    acct = account("a", cash(100), option(4, 50, 3500, 20), model=DERIBIT, venue="deribit")
    book = compile_book(portfolio(acct), market({"ETH": 3000.0}))
    ev = evaluate(book, book.prices0[None, :])
    assert ev.requirement[0, 0] == 0 and np.isinf(ev.health[0, 0])


def test_parameters_outside_zero_one_are_refused() -> None:
    with pytest.raises(RiskInputError, match="call_spot"):
        StandardMarginModel(call_spot=Decimal("1.5"))


def test_kernel_gives_evaluate_figures_for_standard_accounts() -> None:
    a = account(
        "a", cash(2000), perp(2, 3000, mmr="0.03"), option(-3, 120, 3400, 40), model=AEVO, venue="aevo"
    )
    b = account("b", cash(900), option(-2, 90, 2700, 15, kind="put"), model=DERIBIT, venue="deribit")
    book = compile_book(portfolio(a, b), market({"ETH": 3000.0}))
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 0.3, size=(500, 1))
    col = np.array([book.factor_index("ETH")], dtype=np.int64)
    kernel = health_kernel(book, lambda f, b: (-0.6, 0.6))
    resources, requirement = kernel.figures(x, col)
    prices = book.prices0[None, :].repeat(500, axis=0)
    prices[:, col] *= np.exp(x)
    ev = evaluate(book, prices)
    np.testing.assert_allclose(resources, ev.resources, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(requirement, ev.requirement, rtol=1e-12, atol=1e-9)
    flags = kernel.below(x, col)
    np.testing.assert_array_equal(flags, (ev.requirement > 0) & (ev.resources < ev.requirement))
    assert flags.any() and not flags.all()


@pytest.mark.parametrize("model", [AEVO, DERIBIT, DeriveStandardModel(), deribit_pm_model()])
def test_penalty_is_the_rate_times_the_gross_of_options_and_perps(model: MarginModel) -> None:
    # penalty = liquidation_penalty * (|perp value| + |option value|); the cash leg is not counted.
    # The put is revalued by hand: mark + B76(3000 (1 + move)) - B76(3000), contract size 1.
    acct = account("a", cash(5000), perp(3, 3000), option(-2, 150, 2800, 30, kind="put", iv="0.6"), model=model)
    book = compile_book(portfolio(acct), market({"ETH": 3000.0}))
    prices = book.prices0[None, :].repeat(2, axis=0)
    move = -0.2
    prices[1, book.factor_index("ETH")] = 3000.0 * (1 + move)
    ev = evaluate(book, prices)
    rate = float(model.liquidation_penalty)
    t = _years(30)
    for row, eth in ((0, 3000.0), (1, 3000.0 * (1 + move))):
        put = 150.0 + float(black76_price(eth, 2800.0, t, 0.6, False)) - float(black76_price(3000.0, 2800.0, t, 0.6, False))
        assert ev.penalty[row, 0] == pytest.approx(rate * (3 * eth + 2 * abs(put)), rel=1e-12)
