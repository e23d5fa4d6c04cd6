"""Net USD delta per account and factor in any scenario, by central differences on equity.

``usd_delta(book, factor_prices[S, F]) -> [S, A, F]``: ``dE_a / d ln P_f`` (the USD value that moves
1:1 with the factor; for a linear position ``quantity * price``), from
``(E_a(P_f e^h) - E_a(P_f e^-h)) / 2h`` with ``h = 1e-5``, the equity of ``risk.margin.evaluate``
(``risk.margin.equity``: options revalued with Black-76). Used by the liquidation ladder (exposure
left after each liquidation) and by hedge analysis; the ``USD`` column is 0 by construction (it is
never shocked).
"""

from __future__ import annotations

import numpy as np

from risk.arrays import Book, FloatArray
from risk.margin import equity

__all__ = ["usd_delta"]

_H = 1e-5


def usd_delta(book: Book, factor_prices: FloatArray) -> FloatArray:
    prices = np.asarray(factor_prices, dtype=np.float64)
    n_s, n_f = prices.shape
    n_a = book.n_accounts
    if n_s == 0 or n_a == 0:
        return np.zeros((n_s, n_a, n_f))
    bump = np.exp(np.array([_H, -_H]))  # [2]
    eye = np.eye(n_f)
    # [S, 2, F(bumped), F]
    factor = 1.0 + eye[None, None, :, :] * (bump[None, :, None, None] - 1.0)
    bumped = prices[:, None, None, :] * factor
    values = equity(book, bumped.reshape(-1, n_f)).reshape(n_s, 2, n_f, n_a)
    delta: FloatArray = ((values[:, 0] - values[:, 1]) / (2.0 * _H)).transpose(0, 2, 1)
    delta[:, :, book.usd] = 0.0
    return delta
