"""The options-margin scenario grid evaluated exactly (see ``risk.margin.options`` for the model).

``grid_requirement(book, sp, accounts)`` gives ``requirement[S, A]`` in USD for the options accounts
in the mask; ``pnl_table(book, sp)`` the grid PnL ``[S, G, A]`` itself. Work is chunked over
scenarios so that ``[chunk, G, positions]`` stays around 2 million floats.
"""

from __future__ import annotations

import numpy as np

from risk.arrays import KIND_OPTION, MODEL_OPTIONS, Book, BoolArray, FloatArray
from risk.margin.pricing import black76
from risk.margin.valuation import ScenarioPrices

__all__ = ["grid_requirement", "pnl_table"]

_CHUNK_FLOATS = 2_000_000


def grid_requirement(book: Book, sp: ScenarioPrices, acct_mask: BoolArray) -> FloatArray:
    """``requirement[S, A]`` (zero outside ``acct_mask``)."""
    return _exact(book, sp, acct_mask)[0]


def pnl_table(book: Book, sp: ScenarioPrices) -> FloatArray:
    """Every options account's grid PnL ``[S, G, A]`` (USD)."""
    return _exact(book, sp, book.model == MODEL_OPTIONS, keep_pnl=True)[1]


def _exact(
    book: Book, sp: ScenarioPrices, acct_mask: BoolArray, *, keep_pnl: bool = False
) -> tuple[FloatArray, FloatArray]:
    """``(requirement[S, A], grid PnL[S, G, A] when keep_pnl else an empty array)``."""
    n_s = sp.values.shape[0]
    n_a = book.n_accounts
    out = np.zeros((n_s, n_a))
    in_opt_acct = acct_mask[book.pos_account]
    linear = np.flatnonzero(in_opt_acct & (book.kind != KIND_OPTION) & (book.factor_idx != book.usd))
    opt_local = np.flatnonzero(acct_mask[book.pos_account[book.opt_pos]])
    opt = book.opt_pos[opt_local]
    n_g = book.grid_spot.shape[1]

    lin_spot = book.grid_spot[book.pos_account[linear]]  # [Nl, G]
    lin_member = book.membership[linear]  # [Nl, A]
    o_acct = book.pos_account[opt]
    o_spot = book.grid_spot[o_acct]  # [No, G]
    dte = book.opt_expiry[opt_local] * 365.0
    power = np.where(dte < 30.0, book.vega_power_short[o_acct], book.vega_power_long[o_acct])
    scale = (30.0 / np.maximum(dte, 1.0)) ** power
    o_volmult = np.maximum(0.0, 1.0 + book.grid_vol[o_acct] * scale[:, None])  # [No, G]
    o_member = book.membership[opt]
    o_qty = book.quantity[opt] * book.opt_size[opt_local]
    strike = book.opt_strike[opt_local]
    years = book.opt_expiry[opt_local]
    sign = book.opt_sign[opt_local]
    quote_usd_all = book.prices0[book.quote_idx][None, :] * sp.quote_ratio  # [S, A]

    kept = np.zeros((n_s, n_g, n_a) if keep_pnl else (0, n_g, n_a))
    width = max(1, n_g * max(1, len(linear) + len(opt)))
    chunk = max(1, _CHUNK_FLOATS // width)
    for start in range(0, n_s, chunk):
        stop = min(n_s, start + chunk)
        pnl = np.zeros((stop - start, n_g, n_a))
        if len(linear):
            dv = sp.values[start:stop, linear][:, None, :] * lin_spot.T[None, :, :]  # [c, G, Nl]
            pnl += dv @ lin_member
        if len(opt):
            under = sp.opt_under[start:stop, opt_local]  # [c, No]
            vol = sp.opt_vol[start:stop, opt_local]
            base = black76(under, strike, years, vol, sign)  # [c, No]
            shocked = black76(
                under[:, None, :] * (1.0 + o_spot.T[None, :, :]),
                strike,
                years,
                vol[:, None, :] * o_volmult.T[None, :, :],
                sign,
            )  # [c, G, No]
            q_usd = o_qty[None, :] * quote_usd_all[start:stop][:, o_acct]  # [c, No]
            pnl += ((shocked - base[:, None, :]) * q_usd[:, None, :]) @ o_member
        if keep_pnl:
            kept[start:stop] = pnl
        worst = np.maximum(0.0, -pnl.min(axis=1))  # [c, A]
        out[start:stop] = (
            book.mm_factor[None, :] * worst + book.contingency[None, :] * quote_usd_all[start:stop]
        )
    out[:, ~acct_mask] = 0.0
    return out, kept
