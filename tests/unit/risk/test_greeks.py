"""Greeks against finite differences of the margin engine's own revaluation (risk.margin.evaluate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from risk.arrays import Book, compile_book
from risk.greeks import book_greeks
from risk.margin import derive_pm_model, evaluate
from risk.model import (
    USD,
    AsOf,
    CrossPerpModel,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginTier,
    MarketState,
    OptionParams,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)
from risk.options import black76_price

ETH, ST, USDC = FactorId("ETH"), FactorId("stETH/ETH"), FactorId("USDC/USD")
NOW = datetime(2025, 1, 1, tzinfo=UTC)
LP = LendingParams(ltv=Decimal("0.7"), liquidation_threshold=Decimal("0.8"), liquidation_bonus=Decimal("0.05"))
MARKET = MarketState(
    factors=(ETH, ST, USDC, USD), prices={ETH: 3000.0, ST: 0.998, USDC: 1.0, USD: 1.0},
    vols={ETH: 0.7, ST: 0.05, USDC: 0.02, USD: 0.0}, correlation=np.eye(4),
    betas={ETH: 1.0, ST: 0.0, USDC: 0.0, USD: 0.0}, as_of=NOW,
)
EXPIRY = NOW + timedelta(days=30)


def book() -> Book:
    aave = MarginAccount(
        venue="aave_v3", deployment="aave_v3:ethereum", account_id="a", wallet="0x1", margin_model=LendingModel(),
        positions=(
            Position("wstETH", ETH, PositionKind.COLLATERAL, Decimal(10), Decimal("3592.8"), basis_factor=ST,
                     lending=LP),
            Position("USDC", USD, PositionKind.DEBT, Decimal(-20000), Decimal(1), basis_factor=USDC),
        ),
        as_of=AsOf(NOW),
    )
    hl = MarginAccount(
        venue="hyperliquid", deployment="hyperliquid:mainnet", account_id="h", wallet="0x1",
        margin_model=CrossPerpModel(),
        positions=(
            Position("ETH", ETH, PositionKind.PERP, Decimal(-12), Decimal(3000),
                     perp=PerpParams(entry_price=Decimal(3000), margin_tiers=(MarginTier(Decimal(0), Decimal("0.02")),))),
            Position("USDC", USD, PositionKind.SPOT, Decimal(40000), Decimal(1)),
        ),
        as_of=AsOf(NOW),
    )
    mark = float(black76_price(3000.0, 2800.0, 30 / 365, 0.65, False))
    derive = MarginAccount(
        venue="derive", deployment="derive:mainnet", account_id="d", wallet="0x1", margin_model=derive_pm_model(),
        positions=(
            Position("ETH-P-2800", ETH, PositionKind.OPTION, Decimal(-5), Decimal(str(round(mark, 6))),
                     option=OptionParams(strike=Decimal(2800), expiry=EXPIRY, option_type="put",
                                         mark_iv=Decimal("0.65"), underlying_price=Decimal(3000))),
            Position("USDC", USD, PositionKind.SPOT, Decimal(10000), Decimal(1)),
        ),
        as_of=AsOf(NOW),
    )
    return compile_book(Portfolio("p", (aave, hl, derive)), MARKET)


def equity(b: Book, prices: np.ndarray, vol_shift: float = 0.0) -> np.ndarray:
    return evaluate(b, prices[None, :], np.array([vol_shift])).equity[0]


@pytest.mark.parametrize("factor", [ETH, ST, USDC])
def test_delta_and_gamma_match_finite_differences_of_the_revaluation(factor: FactorId) -> None:
    b = book()
    report = book_greeks(b)
    j = b.factor_index(factor)
    h = b.prices0[j] * 1e-4
    up, down = b.prices0.copy(), b.prices0.copy()
    up[j] += h
    down[j] -= h
    e0, eu, ed = equity(b, b.prices0), equity(b, up), equity(b, down)
    fd_delta = (eu - ed) / (2 * h)
    fd_gamma = (eu - 2 * e0 + ed) / (h * h)
    for a, key in enumerate(b.account_keys):
        g = report.accounts[key]
        assert g.delta.get(factor, 0.0) == pytest.approx(fd_delta[a], rel=1e-6, abs=1e-6)
        noise = 1e-12 * (abs(e0[a]) + 1.0) / (h * h)  # rounding of the second difference
        assert g.gamma.get(factor, 0.0) == pytest.approx(fd_gamma[a], rel=1e-3, abs=1e-6 + noise)
        assert g.delta_usd.get(factor, 0.0) == pytest.approx(g.delta.get(factor, 0.0) * b.prices0[j])
    assert report.book.delta[factor] == pytest.approx(fd_delta.sum(), rel=1e-6, abs=1e-6)


def test_hand_figures_vega_and_theta() -> None:
    b = book()
    report = book_greeks(b)
    aave = report.accounts["aave_v3:ethereum/a"]
    assert aave.delta[ETH] == pytest.approx(10 * 3592.8 / 3000)  # wstETH: 11.976 ETH
    assert aave.delta_usd[USDC] == pytest.approx(-20000.0)
    assert report.accounts["hyperliquid:mainnet/h"].delta[ETH] == pytest.approx(-12.0)
    assert USD not in report.book.delta
    # vega: the revaluation under a relative IV shift; d/dsigma = d/dshift / iv, per vol point
    i = b.account_keys.index("derive:mainnet/d")
    fd = (equity(b, b.prices0, 1e-4)[i] - equity(b, b.prices0, -1e-4)[i]) / 2e-4 / 0.65 * 0.01
    assert report.accounts["derive:mainnet/d"].vega[ETH] == pytest.approx(fd, rel=1e-5)
    # theta: a short put earns time decay: B76 a day later vs now
    later = float(black76_price(3000.0, 2800.0, 29 / 365, 0.65, False))
    now = float(black76_price(3000.0, 2800.0, 30 / 365, 0.65, False))
    assert report.book.theta == pytest.approx(-5 * (later - now), rel=0.02)
    assert report.book.theta > 0
