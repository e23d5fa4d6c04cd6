"""Compound V3 (Comet) liquidity in integers, as ``Comet.isLiquidatable`` computes it.

Source: ``compound-finance/comet`` ``Comet.sol`` (``isLiquidatable``, ``presentValue``,
``signedMulPrice``, ``mulPrice``, ``mulFactor``), lending.md §2.2. Two details decide exactness:
the **stored** ``baseBorrowIndex`` from ``totalsBasic()`` (not the accrued one ``borrowBalanceOf``
uses), and Solidity's signed division, which truncates toward zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "BASE_INDEX_SCALE",
    "FACTOR_SCALE",
    "CometCollateral",
    "borrow_collateral_value",
    "health_ratio",
    "is_liquidatable",
    "liquidity",
    "present_value",
]

BASE_INDEX_SCALE = 10**15
FACTOR_SCALE = 10**18


def _div_toward_zero(n: int, d: int) -> int:
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def present_value(principal: int, base_supply_index: int, base_borrow_index: int) -> int:
    """``presentValue``: ``p * supplyIndex / 1e15`` for p >= 0, ``-(|p| * borrowIndex / 1e15)`` for p < 0."""
    if principal >= 0:
        return principal * base_supply_index // BASE_INDEX_SCALE
    return -((-principal) * base_borrow_index // BASE_INDEX_SCALE)


@dataclass(frozen=True, slots=True)
class CometCollateral:
    """One collateral asset of the user: ``userCollateral(acct, asset).balance``, ``getPrice(feed)``,
    ``AssetInfo.scale`` and the liquidate (or borrow) collateral factor (1e18 scale)."""

    balance: int
    price: int
    scale: int
    collateral_factor: int


def _collateral_value(c: CometCollateral) -> int:
    # mulFactor(mulPrice(balance, price, scale), factor): both unsigned floors.
    return (c.balance * c.price // c.scale) * c.collateral_factor // FACTOR_SCALE


def borrow_collateral_value(collaterals: Sequence[CometCollateral]) -> int:
    """``Σ mulFactor(mulPrice(balance_i, price_i, scale_i), factor_i)`` in price units (8 decimals)."""
    return sum(_collateral_value(c) for c in collaterals if c.balance > 0)


def _base_value(principal: int, base_borrow_index: int, base_price: int, base_scale: int) -> int:
    # signedMulPrice(presentValue(principal), price, baseScale): int256 division, toward zero.
    pv = present_value(principal, 0, base_borrow_index) if principal < 0 else 0
    return _div_toward_zero(pv * base_price, base_scale)


def liquidity(
    principal: int,
    base_borrow_index: int,
    base_price: int,
    base_scale: int,
    collaterals: Sequence[CometCollateral],
) -> int:
    """The signed ``liquidity`` ``isLiquidatable`` ends with (0 for a non-borrower): base debt value
    (negative, truncated toward zero) plus every collateral's discounted value."""
    if principal >= 0:
        return 0
    return _base_value(principal, base_borrow_index, base_price, base_scale) + borrow_collateral_value(
        collaterals
    )


def is_liquidatable(
    principal: int,
    base_borrow_index: int,
    base_price: int,
    base_scale: int,
    collaterals: Sequence[CometCollateral],
) -> bool:
    """``Comet.isLiquidatable``: ``principal < 0`` and liquidity < 0 (the early exit in the loop
    cannot change the outcome: collateral terms are non-negative)."""
    if principal >= 0:
        return False
    return liquidity(principal, base_borrow_index, base_price, base_scale, collaterals) < 0


def health_ratio(
    principal: int,
    base_borrow_index: int,
    base_price: int,
    base_scale: int,
    collaterals: Sequence[CometCollateral],
) -> Fraction | None:
    """``Σ collateral value·liquidateCF / |debt value|`` with Comet's own roundings; ``None`` when
    there is no debt (infinite health). ``< 1`` exactly when :func:`is_liquidatable` is true."""
    if principal >= 0:
        return None
    debt = -_base_value(principal, base_borrow_index, base_price, base_scale)
    collateral = borrow_collateral_value(collaterals)
    if debt == 0:
        return None  # a debt that rounds to 0 in price units can never be liquidated
    return Fraction(collateral, debt)
