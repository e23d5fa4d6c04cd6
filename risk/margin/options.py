"""Options accounts margined on the venue's own scenario grid (Derive PM, Deribit-style PM).

For an account with grid points ``g = (spot shock x_g, vol shock v_g)`` (``OptionsScenarioModel``:
every spot shock crossed with every vol shock), in scenario ``s``:

- a linear position on a non-USD factor changes by ``value_s * x_g`` (perps, spot, base collateral);
  positions on ``USD`` (cash, stablecoins) do not move;
- an option is repriced with Black-76 on its underlying ``U_s * (1 + x_g)`` and vol
  ``sigma_s * max(0, 1 + v_g * (30 / max(DTE, 1)) ** p)``, ``p = vega_power_short`` when
  ``DTE < 30`` days else ``vega_power_long`` (Deribit and Derive agree on this scaling);
- ``PnL_g`` = the sum of those changes; requirement
  ``= mm_factor * max(0, -min_g PnL_g) + static_contingency`` (quote currency, times the quote's USD
  price). Resources are the account's equity with options revalued (``risk.margin.valuation``).

Work is chunked over scenarios so that ``[chunk, G, positions]`` stays around 2 million floats.
Large batches with unshocked vols (``vol_shift is None`` and at least 8192 scenarios: Monte Carlo)
take a fast path for an account whose non-USD positions all move with one (factor, basis) pair and
whose quote is USD: every grid point's PnL then depends on that one price multiplier only (and is
smooth in it), so the PnLs are computed exactly on 2049 log-spaced multipliers spanning the batch,
linearly interpolated per grid point, and the min over the grid is taken afterwards (kinks of the
requirement are kept exact; the error is second order in the step: below 1e-6 relative in
``tests/unit/risk/test_margin_models.py``).

Parameter sets: ``deribit_pm_model()`` (price range +-16% in 9 buckets x vol up 50% / same / down
25%, mm_factor 0.8, Deribit's ``btc_usd`` sample parameters) and ``derive_pm_model()`` (spot
0.85..1.15 step 0.05 x vol up 45% / same / down 30%, Derive PMRM 2023 mainnet config).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from risk.arrays import KIND_OPTION, MODEL_OPTIONS, Book, BoolArray, FloatArray
from risk.margin.pricing import black76
from risk.margin.valuation import ScenarioPrices, scenario_prices
from risk.model import OptionsScenarioModel

__all__ = ["deribit_pm_model", "derive_pm_model", "options_requirement"]

_CHUNK_FLOATS = 2_000_000
_INTERP_MIN_SCENARIOS = 8192
_INTERP_POINTS = 2049


def deribit_pm_model(
    price_range: Decimal = Decimal("0.16"),
    buckets: int = 9,
    vol_up: Decimal = Decimal("0.5"),
    vol_down: Decimal = Decimal("0.25"),
    mm_factor: Decimal = Decimal("0.8"),
) -> OptionsScenarioModel:
    half = (buckets - 1) // 2
    shocks = tuple(price_range * Decimal(i) / Decimal(half) for i in range(-half, half + 1))
    return OptionsScenarioModel(
        spot_shocks=shocks,
        vol_shocks=(-vol_down, Decimal(0), vol_up),
        mm_factor=mm_factor,
    )


def derive_pm_model() -> OptionsScenarioModel:
    shocks = tuple(Decimal(i) / Decimal(100) for i in range(-15, 16, 5))
    return OptionsScenarioModel(
        spot_shocks=shocks,
        vol_shocks=(Decimal("-0.30"), Decimal(0), Decimal("0.45")),
        mm_factor=Decimal(1),
    )


def options_requirement(book: Book, sp: ScenarioPrices, vol_shift: FloatArray | None) -> FloatArray:
    """``requirement[S, A]`` in USD (only options-model accounts' columns are non-zero)."""
    n_s = sp.values.shape[0]
    out = np.zeros((n_s, book.n_accounts))
    exact = book.model == MODEL_OPTIONS
    if not exact.any():
        return out
    if vol_shift is None and n_s >= _INTERP_MIN_SCENARIOS:
        for a in np.flatnonzero(exact):
            column = _interpolated(book, sp, int(a))
            if column is not None:
                out[:, a] = column
                exact[a] = False
    if exact.any():
        out[:, exact] = _exact(book, sp, exact)[0][:, exact]
    return out


def _interpolated(book: Book, sp: ScenarioPrices, a: int) -> FloatArray | None:
    """The account's requirement as a function of its one price multiplier, tabulated on a log grid
    and interpolated (``None`` when the account moves with more than one (factor, basis) pair or its
    quote is not USD)."""
    mine = (book.pos_account == a) & (book.factor_idx != book.usd)
    pairs = {(int(f), int(b)) for f, b in zip(book.factor_idx[mine], book.basis_idx[mine], strict=True)}
    if len(pairs) != 1 or book.quote_idx[a] != book.usd:
        return None
    (f, _b), first = next(iter(pairs)), int(np.flatnonzero(mine)[0])
    m = sp.mult[:, first]
    lo, hi = float(m.min()), float(m.max())
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), _INTERP_POINTS)) if hi > lo else np.array([lo])
    prices = np.tile(book.prices0, (grid.shape[0], 1))
    prices[:, f] *= grid  # the basis stays put: the multiplier is the product of both ratios
    only = np.zeros(book.n_accounts, dtype=np.bool_)
    only[a] = True
    _, table = _exact(book, scenario_prices(book, prices, None), only, keep_pnl=True)
    pnl_table = table[:, :, a]  # [K, G]: each grid point's PnL is smooth in the multiplier
    if grid.shape[0] == 1:
        pnl = np.broadcast_to(pnl_table[0], (m.shape[0], pnl_table.shape[1]))
    else:
        x = np.log(grid)
        lm = np.log(m)
        i = np.clip(np.searchsorted(x, lm) - 1, 0, x.shape[0] - 2)
        w = ((lm - x[i]) / (x[i + 1] - x[i]))[:, None]
        pnl = pnl_table[i] * (1.0 - w) + pnl_table[i + 1] * w
    worst = np.maximum(0.0, -pnl.min(axis=1))
    out: FloatArray = book.mm_factor[a] * worst + book.contingency[a]
    return out


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
