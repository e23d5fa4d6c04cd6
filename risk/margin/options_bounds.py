"""Bounds of an options account's figures over a range of its one price multiplier (no table).

For an account that ``risk.margin.options_table.single_pair`` accepts, with the multiplier ``m`` of
its pair anywhere in ``[m_lo, m_hi]`` and implied vols at their marks, ``options_bounds`` gives
``(a lower bound of the options' value, an upper bound of the requirement)`` in USD, from Black-76
(``risk.margin.pricing``) being monotone in the underlying (calls rise with it, puts fall):

- an option's value ``q (mark + (B76(U m) - B76(U)) size)`` lies between its values at ``m_lo``
  and ``m_hi``;
- grid point ``g``'s PnL (``risk.margin.options_grid``) is a sum of
  ``q size (B76(U m (1 + x_g), sigma v_g) - B76(U m, sigma))`` over the options and
  ``value_l m x_g`` over the linear positions; each difference is at least the least first term
  minus the greatest second term over the range (with the sign of ``q size``), each linear term at
  least its smaller end: a lower bound ``PnL_g^-`` and the requirement
  ``mm_factor * max(0, -min_g PnL_g^-) + contingency`` an upper bound.

Loose for wide ranges, exact at a point: enough for ``risk.margin.kernel`` to leave a healthy
options account out of a Monte Carlo chunk without tabulating it.
"""

from __future__ import annotations

import numpy as np

from risk.arrays import KIND_OPTION, Book
from risk.margin.pricing import black76
from risk.subbook import select_accounts

__all__ = ["options_bounds"]


def options_bounds(book: Book, a: int, x_lo: float, x_hi: float) -> tuple[float, float]:
    sub = select_accounts(book, [a])
    m = np.exp(np.array([x_lo, x_hi]))  # [2]
    linear = np.flatnonzero((sub.kind != KIND_OPTION) & (sub.factor_idx != sub.usd))
    lin_value = float((sub.quantity[linear] * sub.price0_usd[linear]).sum())
    spot = sub.grid_spot[0]  # [G]
    o = sub.opt_pos
    qty = sub.quantity[o] * sub.opt_size  # USD quote: quote_usd is 1
    dte = sub.opt_expiry * 365.0
    power = np.where(dte < 30.0, sub.vega_power_short[0], sub.vega_power_long[0])
    scale = (30.0 / np.maximum(dte, 1.0)) ** power
    volmult = np.maximum(0.0, 1.0 + sub.grid_vol[0][:, None] * scale[None, :])  # [G, No]
    under = sub.opt_underlying[None, :] * m[:, None]  # [2, No]
    iv = np.broadcast_to(sub.opt_iv, under.shape)
    base = black76(under, sub.opt_strike, sub.opt_expiry, iv, sub.opt_sign)
    base0 = black76(sub.opt_underlying, sub.opt_strike, sub.opt_expiry, sub.opt_iv, sub.opt_sign)
    values = sub.quantity[o] * (sub.price0[o] + (base - base0) * sub.opt_size)  # [2, No]
    value_lo = float(values.min(axis=0).sum())
    shocked = black76(
        under[:, None, :] * (1.0 + spot[None, :, None]),
        sub.opt_strike,
        sub.opt_expiry,
        sub.opt_iv[None, None, :] * volmult[None, :, :],
        sub.opt_sign,
    )  # [2, G, No]
    s_lo, s_hi = shocked.min(axis=0), shocked.max(axis=0)  # [G, No]
    b_lo, b_hi = base.min(axis=0), base.max(axis=0)  # [No]
    long = qty > 0
    per = np.where(long, qty * (s_lo - b_hi), qty * (s_hi - b_lo))  # [G, No]
    per[(spot == 0.0) & (sub.grid_vol[0] == 0.0)] = 0.0  # the unshocked point: PnL 0 exactly
    lin = np.minimum(lin_value * spot * m[0], lin_value * spot * m[1])  # [G]
    worst = float((per.sum(axis=1) + lin).min())
    requirement = float(sub.mm_factor[0]) * max(0.0, -worst) + float(sub.contingency[0])
    return value_lo, requirement
