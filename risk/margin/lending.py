"""Threshold lending (Aave V3 and forks, Compound V3, Morpho Blue), vectorized over scenarios.

``resources = sum over collateral of value * LT`` (Aave's LT with e-mode applied, Comet's
liquidateCollateralFactor, Morpho's LLTV), ``requirement = sum over debt of |value|``; supply that is
not collateral counts in neither. The penalty of a liquidation is what the liquidator takes:
``close_factor * requirement * bonus``, the bonus averaged over the collateral by value.
"""

from __future__ import annotations

import numpy as np

from risk.arrays import KIND_COLLATERAL, KIND_DEBT, Book, FloatArray
from risk.margin.blas import blocked_matmul
from risk.margin.valuation import ScenarioPrices

__all__ = ["lending_figures"]


def lending_figures(book: Book, sp: ScenarioPrices) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(resources[S, A], requirement[S, A], penalty[S, A])`` in USD for every account (only the
    lending accounts' columns are meaningful)."""
    coll = (book.kind == KIND_COLLATERAL).astype(np.float64)
    debt = (book.kind == KIND_DEBT).astype(np.float64)
    n_a = book.n_accounts
    weights = np.concatenate(
        [
            book.membership * (coll * book.lt)[:, None],
            book.membership * debt[:, None],
            book.membership * coll[:, None],
            book.membership * (coll * book.bonus)[:, None],
        ],
        axis=1,
    )
    sums = blocked_matmul(sp.values, weights)  # one product for the four sums: [S, 4A]
    resources: FloatArray = sums[:, :n_a]
    requirement: FloatArray = -sums[:, n_a : 2 * n_a]
    coll_value = sums[:, 2 * n_a : 3 * n_a]
    bonus_value = sums[:, 3 * n_a :]
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = np.where(coll_value > 0, bonus_value / np.where(coll_value > 0, coll_value, 1.0), 0.0)
    penalty: FloatArray = book.close_factor[None, :] * np.maximum(requirement, 0.0) * bonus
    return resources, requirement, penalty
