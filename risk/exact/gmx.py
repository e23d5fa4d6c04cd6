"""GMX v2 (gmx-synthetics) position liquidation in integers, as ``PositionUtils.isPositionLiquidatable``
computes it with ``shouldValidateMinCollateralUsd = true`` and ``forLiquidation = true``.

All amounts are USD x 1e30 integers (``Precision.FLOAT_PRECISION``); factors are x 1e30::

    remaining = (collateralAmount - fees.totalCostAmount) * collateral.min
                + basePnlUsd        # long at index.min, short at index.max
                + impact            # totalImpactUsd: 0 if >= 0, else floored at
                                    # -sizeInUsd * MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS
    requirement = max(MIN_COLLATERAL_USD, sizeInUsd * MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION)
    liquidatable iff remaining < requirement (or remaining <= 0)

The inputs are the Reader's ``PositionInfo`` figures and the DataStore factors (read by
``adapters.gmx_v2``); no I/O here.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "FLOAT_PRECISION",
    "LiquidationFigures",
    "apply_factor",
    "exact_health",
    "liquidation_figures",
    "liquidation_impact",
]

FLOAT_PRECISION: Final = 10**30
_EXACT = decimal.Context(prec=100)  # USD x 1e30 ratios are exact to far below the boundary


def apply_factor(value: int, factor: int) -> int:
    """``Precision.applyFactor``: ``value * factor / 1e30``, rounded down."""
    return value * factor // FLOAT_PRECISION


def liquidation_impact(total_impact_usd: int, size_in_usd: int, max_factor: int) -> int:
    """A gain counts as 0; a loss is floored at
    ``-sizeInUsd * MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS``."""
    if total_impact_usd >= 0:
        return 0
    return max(total_impact_usd, -apply_factor(size_in_usd, max_factor))


@dataclass(frozen=True, slots=True)
class LiquidationFigures:
    net_collateral_amount: int  # collateral tokens after pending fees
    collateral_usd: int  # net collateral * collateral.min
    impact_usd: int  # capped, as the liquidation check counts it
    pnl_cap_usd: int  # basePnlUsd - uncappedBasePnlUsd (<= 0)
    remaining_usd: int
    min_collateral_usd: int
    min_collateral_usd_for_leverage: int

    @property
    def requirement_usd(self) -> int:
        return max(self.min_collateral_usd, self.min_collateral_usd_for_leverage)

    @property
    def is_liquidatable(self) -> bool:
        r = self.remaining_usd
        return r < self.min_collateral_usd or r <= 0 or r < self.min_collateral_usd_for_leverage


def liquidation_figures(
    *,
    size_in_usd: int,
    collateral_amount: int,
    total_cost_amount: int,
    total_impact_usd: int,
    base_pnl_usd: int,
    uncapped_base_pnl_usd: int,
    collateral_min: int,
    min_collateral_usd: int,
    min_collateral_factor_for_liquidation: int,
    max_position_impact_factor_for_liquidations: int,
) -> LiquidationFigures:
    """The module docstring's rule from a position's figures (collateral amounts in token units,
    ``collateral_min`` USD x 1e30 per unit) and the DataStore factors."""
    net = collateral_amount - total_cost_amount
    impact = liquidation_impact(total_impact_usd, size_in_usd, max_position_impact_factor_for_liquidations)
    collateral_usd = net * collateral_min
    return LiquidationFigures(
        net_collateral_amount=net,
        collateral_usd=collateral_usd,
        impact_usd=impact,
        pnl_cap_usd=base_pnl_usd - uncapped_base_pnl_usd,
        remaining_usd=collateral_usd + base_pnl_usd + impact,
        min_collateral_usd=min_collateral_usd,
        min_collateral_usd_for_leverage=apply_factor(size_in_usd, min_collateral_factor_for_liquidation),
    )


def exact_health(remaining: int, requirement: int) -> Decimal:
    """``remaining / requirement``; no requirement: ``+inf`` if remaining > 0 else 0 (``h < 1`` iff
    liquidatable either way)."""
    if requirement <= 0:
        return Decimal("Infinity") if remaining > 0 else Decimal(0)
    return _EXACT.divide(Decimal(remaining), Decimal(requirement))
