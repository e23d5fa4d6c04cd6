"""Morpho Blue shares math, interest accrual and ``_isHealthy`` in integers.

Sources: ``morpho-org/morpho-blue`` v1.0.0 ``libraries/SharesMathLib.sol``, ``MathLib.sol``,
``periphery/MorphoBalancesLib.sol`` (``expectedMarketBalances``), ``Morpho.sol`` (``_isHealthy``,
``liquidate``), ``ConstantsLib.sol``; lending.md §3.2-3.3.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from risk.exact.wadray import WAD, mul_div_ceil, mul_div_down

__all__ = [
    "LIQUIDATION_CURSOR",
    "MAX_LIQUIDATION_INCENTIVE_FACTOR",
    "ORACLE_PRICE_SCALE",
    "VIRTUAL_ASSETS",
    "VIRTUAL_SHARES",
    "MorphoMarket",
    "borrowed_assets",
    "expected_market",
    "health",
    "is_healthy",
    "liquidation_incentive_factor",
    "max_borrow",
    "supplied_assets",
    "to_assets_down",
    "to_assets_up",
    "to_shares_down",
    "to_shares_up",
    "w_div_down",
    "w_mul_down",
    "w_taylor_compounded",
]

VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1
ORACLE_PRICE_SCALE = 10**36
LIQUIDATION_CURSOR = 3 * 10**17
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16


def w_mul_down(x: int, y: int) -> int:
    return mul_div_down(x, y, WAD)


def w_div_down(x: int, y: int) -> int:
    return mul_div_down(x, WAD, y)


def to_shares_down(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_shares_up(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_ceil(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_assets_down(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_ceil(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def w_taylor_compounded(x: int, n: int) -> int:
    """``e^(x·n) - 1`` to the third term: ``x·n + (x·n)²/2e18 + ((x·n)²/2e18)·(x·n)/3e18``, floors."""
    first = x * n
    second = mul_div_down(first, first, 2 * WAD)
    third = mul_div_down(second, first, 3 * WAD)
    return first + second + third


@dataclass(frozen=True, slots=True)
class MorphoMarket:
    """``Morpho.market(id)``: totals (not accrued past ``last_update``) and the fee (wad)."""

    total_supply_assets: int
    total_supply_shares: int
    total_borrow_assets: int
    total_borrow_shares: int
    last_update: int
    fee: int


def expected_market(
    market: MorphoMarket, borrow_rate: int, now: int, *, has_irm: bool = True
) -> MorphoMarket:
    """``MorphoBalancesLib.expectedMarketBalances``: accrue ``now - lastUpdate`` seconds at
    ``borrow_rate`` (``IIrm.borrowRateView(params, market)``, per second, wad), fee shares included."""
    elapsed = now - market.last_update
    if elapsed < 0:
        raise ValueError("timestamp is before the market's last update")
    if elapsed == 0 or market.total_borrow_assets == 0 or not has_irm:
        return market
    interest = w_mul_down(market.total_borrow_assets, w_taylor_compounded(borrow_rate, elapsed))
    supply_assets = market.total_supply_assets + interest
    supply_shares = market.total_supply_shares
    if market.fee != 0:
        fee_amount = w_mul_down(interest, market.fee)
        supply_shares += to_shares_down(fee_amount, supply_assets - fee_amount, supply_shares)
    return replace(
        market,
        total_supply_assets=supply_assets,
        total_supply_shares=supply_shares,
        total_borrow_assets=market.total_borrow_assets + interest,
        last_update=now,
    )


def supplied_assets(supply_shares: int, market: MorphoMarket) -> int:
    return to_assets_down(supply_shares, market.total_supply_assets, market.total_supply_shares)


def borrowed_assets(borrow_shares: int, market: MorphoMarket) -> int:
    return to_assets_up(borrow_shares, market.total_borrow_assets, market.total_borrow_shares)


def max_borrow(collateral: int, price: int, lltv: int) -> int:
    """``wMulDown(mulDivDown(collateral, price, 1e36), lltv)``."""
    return w_mul_down(mul_div_down(collateral, price, ORACLE_PRICE_SCALE), lltv)


def is_healthy(borrow_shares: int, collateral: int, price: int, lltv: int, market: MorphoMarket) -> bool:
    """``Morpho._isHealthy`` on an (accrued) market: no borrow, or ``maxBorrow >= borrowed``."""
    if borrow_shares == 0:
        return True
    return max_borrow(collateral, price, lltv) >= borrowed_assets(borrow_shares, market)


def health(
    borrow_shares: int, collateral: int, price: int, lltv: int, market: MorphoMarket
) -> Fraction | None:
    """``maxBorrow / borrowed`` (``None`` = no borrow, infinite). ``< 1`` exactly when not healthy."""
    if borrow_shares == 0:
        return None
    borrowed = borrowed_assets(borrow_shares, market)
    if borrowed == 0:
        return None
    return Fraction(max_borrow(collateral, price, lltv), borrowed)


def liquidation_incentive_factor(lltv: int) -> int:
    """``min(1.15e18, wDivDown(1e18, 1e18 - wMulDown(0.3e18, 1e18 - lltv)))``."""
    return min(
        MAX_LIQUIDATION_INCENTIVE_FACTOR, w_div_down(WAD, WAD - w_mul_down(LIQUIDATION_CURSOR, WAD - lltv))
    )
