"""Position prices and values in a scenario (USD), vectorized over scenarios.

Read from ``risk.arrays.Book``. A position's USD price in scenario ``s`` is
``price0_usd * (P_s[factor] / P_0[factor]) * (P_s[basis] / P_0[basis])`` (the venue's own price,
moved by its factors; see ``risk.model``). An option is revalued instead: its quote-currency value is
``mark + B76(U_s, sigma_s) - B76(U_0, sigma_0)`` per contract-size unit, with ``U_s`` the venue's
underlying price moved by the position's factors and ``sigma_s = iv * max(0, 1 + vol_shift_s)``, so
that at current prices and vols the value is exactly the venue's mark.

``risky_gross(book, sp)`` is ``sum |value|`` of each account's options and perps (``[S, A]``, USD), the
base of the liquidation penalty of the options and standard-margin models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.arrays import KIND_OPTION, KIND_PERP, Book, FloatArray
from risk.margin.blas import blocked_matmul
from risk.margin.pricing import black76

__all__ = ["ScenarioPrices", "risky_gross", "scenario_prices"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioPrices:
    """Per-scenario position state: ``mult[S, N]`` (price multiplier), ``usd_price[S, N]``,
    ``values[S, N]`` (signed USD values, options revalued), ``quote_ratio[S, A]``
    (``P_s[quote] / P_0[quote]``), ``opt_vol[S, No]``, ``opt_under[S, No]`` (quote currency) and
    ``opt_unit[S, No]`` (the option's revalued price per option unit, quote: ``mark + (B76(U_s,
    sigma_s) - B76(U_0, sigma_0)) * contract_size``, not floored)."""

    mult: FloatArray
    usd_price: FloatArray
    values: FloatArray
    quote_ratio: FloatArray
    opt_vol: FloatArray
    opt_under: FloatArray
    opt_unit: FloatArray


def scenario_prices(book: Book, factor_prices: FloatArray, vol_shift: FloatArray | None) -> ScenarioPrices:
    n_s = factor_prices.shape[0]
    ratio = np.empty((n_s, book.n_factors + 1))
    np.divide(factor_prices, book.prices0[None, :], out=ratio[:, :-1])
    ratio[:, -1] = 1.0
    mult = ratio[:, book.factor_idx] * ratio[:, book.basis_idx]
    usd_price = mult * book.price0_usd[None, :]
    values = usd_price * book.quantity[None, :]
    quote_ratio = ratio[:, book.quote_idx]
    n_o = book.opt_pos.shape[0]
    opt_vol = np.empty((n_s, n_o))
    opt_under = np.empty((n_s, n_o))
    unit_quote = np.empty((n_s, n_o))
    if n_o:
        shift = np.zeros(n_s) if vol_shift is None else np.asarray(vol_shift, dtype=np.float64)
        opt_vol = book.opt_iv[None, :] * np.maximum(0.0, 1.0 + shift)[:, None]
        opt_under = book.opt_underlying[None, :] * mult[:, book.opt_pos]
        base = black76(book.opt_underlying, book.opt_strike, book.opt_expiry, book.opt_iv, book.opt_sign)
        now = black76(opt_under, book.opt_strike, book.opt_expiry, opt_vol, book.opt_sign)
        acct = book.pos_account[book.opt_pos]
        quote_usd = book.prices0[book.quote_idx[acct]][None, :] * quote_ratio[:, acct]
        unit_quote = book.price0[book.opt_pos][None, :] + (now - base[None, :]) * book.opt_size
        values[:, book.opt_pos] = book.quantity[book.opt_pos] * unit_quote * quote_usd
    return ScenarioPrices(
        mult=mult,
        usd_price=usd_price,
        values=values,
        quote_ratio=quote_ratio,
        opt_vol=opt_vol,
        opt_under=opt_under,
        opt_unit=unit_quote,
    )


def risky_gross(book: Book, sp: ScenarioPrices) -> FloatArray:
    """``[S, A]`` (USD): the sum of ``|value|`` of each account's options and perps."""
    risky = ((book.kind == KIND_OPTION) | (book.kind == KIND_PERP)).astype(np.float64)
    gross: FloatArray = blocked_matmul(np.abs(sp.values), book.membership * risky[:, None])
    return gross
