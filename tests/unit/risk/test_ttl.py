"""Time to liquidation at constant prices: closed forms for interest and funding."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from risk.arrays import compile_book
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
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)
from risk.ttl import time_to_liquidation

ETH = FactorId("ETH")
NOW = datetime(2025, 1, 1, tzinfo=UTC)
LP = LendingParams(ltv=Decimal("0.7"), liquidation_threshold=Decimal("0.8"), liquidation_bonus=Decimal("0.05"))
MARKET = MarketState(factors=(ETH, USD), prices={ETH: 3000.0, USD: 1.0}, vols={ETH: 0.7, USD: 0.0},
                     correlation=np.eye(2), betas={ETH: 1.0, USD: 0.0}, as_of=NOW)


def lending(debt: float, borrow: str | None, supply: str | None = None) -> MarginAccount:
    return MarginAccount(
        venue="aave_v3", deployment="aave_v3:ethereum", account_id="a", wallet="0x1", margin_model=LendingModel(),
        positions=(
            Position("WETH", ETH, PositionKind.COLLATERAL, Decimal(10), Decimal(3000), lending=LP,
                     interest_rate=None if supply is None else Decimal(supply)),
            Position("USDC", USD, PositionKind.DEBT, Decimal(str(-debt)), Decimal(1),
                     interest_rate=None if borrow is None else Decimal(borrow)),
        ),
        as_of=AsOf(NOW),
    )


def ttl(account: MarginAccount) -> float | None:
    return time_to_liquidation(compile_book(Portfolio("p", (account,)), MARKET))[account.key]


def test_lending_closed_form() -> None:
    # h0 = 24000 / 20000 = 1.2; h(t) = 1.2 e^{(s - b) t}
    assert ttl(lending(20000, "0.05")) == pytest.approx(math.log(1.2) / 0.05 * 365, rel=1e-9)
    assert ttl(lending(20000, "0.08", "0.03")) == pytest.approx(math.log(1.2) / 0.05 * 365, rel=1e-9)


def test_lending_unknown_rate_never_and_already() -> None:
    assert ttl(lending(20000, None)) is None
    assert ttl(lending(20000, "0.02", "0.03")) is None  # collateral outgrows debt
    assert ttl(lending(25000, "0.05")) == 0.0


def perp(funding: str, cash: float = 34000) -> MarginAccount:
    return MarginAccount(
        venue="hyperliquid", deployment="hyperliquid:mainnet", account_id="h", wallet="0x1",
        margin_model=CrossPerpModel(),
        positions=(
            Position("ETH", ETH, PositionKind.PERP, Decimal(-10), Decimal(3000),
                     perp=PerpParams(entry_price=Decimal(3000), funding_rate_hourly=Decimal(funding),
                                     margin_tiers=(MarginTier(Decimal(0), Decimal("0.02")),))),
            Position("USDC", USD, PositionKind.SPOT, Decimal(cash), Decimal(1)),
        ),
        as_of=AsOf(NOW),
    )


def test_perp_funding() -> None:
    # equity 34000 - 30000 = 4000, maintenance 600: 3400 of room; a short pays negative funding:
    # 30000 * 0.0001 * 24 = 72 USD a day
    assert ttl(perp("-0.0001")) == pytest.approx(3400 / 72, rel=1e-9)
    assert ttl(perp("0.0001")) is None  # the short receives
    assert ttl(perp("-0.0001", cash=30100)) == 0.0
