"""Margin models against the venues' own numbers and against independent scalar re-implementations."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from risk.arrays import compile_book
from risk.errors import RiskInputError
from risk.margin import chf, deribit_pm_model, derive_pm_model, evaluate
from risk.margin.options import _INTERP_MIN_SCENARIOS
from risk.model import FactorId, IsolatedPerpModel, MarginTier, PerpParams, Position, PositionKind
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

# Hyperliquid's documented clearinghouseState example (perps_options.md sections 1.2 and 1.4)
HL_SZI = "0.0335"
HL_MARK = Decimal("100.02765") / Decimal("0.0335")  # positionValue / |szi| = 2985.9
HL_RAW_USD = "-95.059824"


def hl_isolated_book():  # type: ignore[no-untyped-def]
    pf = portfolio(
        isolated(
            "eth",
            perp(HL_SZI, HL_MARK, mmr="0.01", entry="2986.3"),  # maxLeverage 50 -> mmr 1/(2*50)
            cash(HL_RAW_USD),
        )
    )
    return compile_book(pf, market({"ETH": float(HL_MARK)}))


def test_hyperliquid_isolated_equity_and_maintenance_match_the_venue() -> None:
    book = hl_isolated_book()
    ev = evaluate(book, book.prices0[None, :])
    # marginUsed = rawUsd + szi * markPx = 4.967826 (the venue's figure); MM = 100.02765 * 0.01
    assert ev.resources[0, 0] == pytest.approx(4.967826, abs=1e-9)
    assert ev.requirement[0, 0] == pytest.approx(1.0002765, abs=1e-12)


def lending_book(coll_qty: float, price: float, lt: float, debt_usd: float):  # type: ignore[no-untyped-def]
    pf = portfolio(account("a", collateral(coll_qty, price, lt=lt), debt(debt_usd)))
    return compile_book(pf, market({"ETH": price}))


def test_lending_health_is_aaves_formula() -> None:
    book = lending_book(2, 3000, 0.825, 4000)
    ev = evaluate(book, book.prices0[None, :])
    assert ev.health[0, 0] == pytest.approx(2 * 3000 * 0.825 / 4000, rel=1e-15)
    # at half the price, collateral value halves
    ev2 = evaluate(book, np.array([[1500.0, 1.0]]))
    assert ev2.health[0, 0] == pytest.approx(1500 * 2 * 0.825 / 4000, rel=1e-15)


def test_no_requirement_is_plus_infinity() -> None:
    pf = portfolio(
        account("nodebt", collateral(1, 3000)),
        cross("flat", cash(100)),
    )
    book = compile_book(pf, market({"ETH": 3000.0}))
    ev = evaluate(book, book.prices0[None, :])
    assert np.all(np.isposinf(ev.health))
    assert math.isinf(chf(ev)[0])


def test_hyperliquid_tiers_are_continuous_and_match_piecewise() -> None:
    # "tiered 40x": 40x below 150M, then 20x: mmr 1/80 then 1/40 (perps_options.md 1.4)
    tiers = ((0, 1 / 80), (150_000_000, 1 / 40))
    pf = portfolio(cross("btc", perp(1, 100_000, factor="BTC", tiers=tiers), cash(10_000_000)))
    book = compile_book(pf, market({"BTC": 100_000.0}))
    sizes = np.array([100_000.0 * k for k in (1, 1499, 1500, 1501, 3000)])  # 1 BTC: notional = price
    bi, ui = book.factor_index("BTC"), book.factor_index("USD")
    prices = np.zeros((5, 2))
    prices[:, bi] = sizes
    prices[:, ui] = 1.0
    req = evaluate(book, prices).requirement[:, 0]
    for n, r in zip(sizes, req, strict=True):
        expected = n / 80 if n < 150e6 else 150e6 / 80 + (n - 150e6) / 40
        assert r == pytest.approx(expected, rel=1e-12)


def test_gmx_requirement_on_entry_notional_with_floor() -> None:
    pos = Position(
        token="ETH",
        factor=FactorId("ETH"),
        kind=PositionKind.PERP,
        quantity=Decimal("0.5"),
        price=Decimal(3000),
        perp=PerpParams(
            entry_price=Decimal(2000),
            margin_tiers=(MarginTier(Decimal(0), Decimal("0.01")),),
            requirement_basis="entry_notional",
            min_requirement=Decimal(15),
        ),
    )
    pf = portfolio(account("g", pos, cash(-900), model=IsolatedPerpModel(), venue="gmx_v2"))
    book = compile_book(pf, market({"ETH": 3000.0}))
    ev = evaluate(book, book.prices0[None, :])
    # size in USD at entry 1000 * 1% = 10 < MIN_COLLATERAL_USD 15
    assert ev.requirement[0, 0] == pytest.approx(15.0)
    assert ev.resources[0, 0] == pytest.approx(0.5 * 3000 - 900)


def _bs(f: float, k: float, t: float, v: float, call: bool) -> float:
    """Scalar Black-76 with math.erf: independent of risk.options."""
    n = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    sd = v * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    return f * n(d1) - k * n(d2) if call else k * n(-d2) - f * n(-d1)


OPTS = ((-3, 120.0, 3200.0, 10, True, 0.6), (2, 95.0, 2800.0, 40, False, 0.7))


def test_options_grid_requirement_matches_a_scalar_loop() -> None:
    model = deribit_pm_model()
    positions = (
        option(-3, 120, 3200, 10, "call", iv="0.6", under=3000),
        option(2, 95, 2800, 40, "put", iv="0.7", under=3000),
        perp(1, 3000, mmr="0.01"),
        cash(-1500),
    )
    pf = portfolio(account("d", *positions, model=model, venue="deribit"))
    book = compile_book(pf, market({"ETH": 3000.0}))
    spot = [float(s) for s in model.spot_shocks]
    vols = [float(v) for v in model.vol_shocks]
    for eth, shift in ((3000.0, 0.0), (2700.0, 0.3), (3300.0, -0.2)):
        prices = np.zeros((1, book.n_factors))
        prices[0, book.factor_index("ETH")] = eth
        prices[0, book.factor_index("USD")] = 1.0
        ev = evaluate(book, prices, np.array([shift]))
        # independent: equity and worst grid loss by hand
        m = eth / 3000.0

        def value(mult: float, vol_mult: tuple[float, ...], shift: float = shift) -> float:
            total = 1 * 3000 * mult - 1500
            for (q, mark, k, days, call, iv), vm in zip(OPTS, vol_mult, strict=True):
                t = days / 365
                total += q * (mark + _bs(3000 * mult, k, t, iv * (1 + shift) * vm, call) - _bs(3000, k, t, iv, call))
            return total

        equity = value(m, (1.0, 1.0))
        worst = 0.0
        for x in spot:
            for v in vols:
                vm = tuple(
                    max(0.0, 1 + v * (30 / max(days, 1)) ** (0.30 if days < 30 else 0.13))
                    for (_, _, _, days, _, _) in OPTS
                )
                worst = min(worst, value(m * (1 + x), vm) - equity)
        assert ev.equity[0, 0] == pytest.approx(equity, rel=1e-9)
        assert ev.requirement[0, 0] == pytest.approx(0.8 * -worst, rel=1e-9)


def test_options_fast_path_agrees_with_exact() -> None:
    pf = portfolio(
        account(
            "d",
            option(-3, 120, 3200, 10, "call"),
            option(2, 95, 2800, 40, "put"),
            cash(2000),
            model=derive_pm_model(),
            venue="derive",
        )
    )
    book = compile_book(pf, market({"ETH": 3000.0}))
    rng = np.random.default_rng(1)
    moves = rng.normal(0, 0.08, _INTERP_MIN_SCENARIOS)
    prices = book.market_prices(moves)
    fast = evaluate(book, prices).requirement[:, 0]
    exact = np.concatenate([evaluate(book, chunk).requirement[:, 0] for chunk in np.array_split(prices, 8)])
    assert np.max(np.abs(fast - exact) / exact) < 1e-6


def test_missing_market_price_names_the_factor() -> None:
    pf = portfolio(account("a", collateral(1, 100, factor="SOL"), debt(10)))
    with pytest.raises(RiskInputError, match="SOL"):
        compile_book(pf, market({"ETH": 3000.0}))


def test_wrong_price_matrix_shape_is_a_clear_error() -> None:
    book = lending_book(1, 3000, 0.8, 100)
    with pytest.raises(RiskInputError, match=r"factor_prices must be \[S, 2\]"):
        evaluate(book, np.ones((3, 5)))
