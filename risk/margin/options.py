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

The grid is evaluated exactly by ``risk.margin.options_grid`` (chunked over scenarios). Large
batches with unshocked vols (``vol_shift is None`` and at least 8192 scenarios: Monte Carlo) use
``risk.margin.options_table`` instead for an account whose non-USD positions all move with one
(factor, basis) pair and whose quote is USD: the grid PnLs are computed exactly on 2049 nodes
uniform in the log of that multiplier over the batch's range, interpolated linearly per grid point,
and the min over the grid is taken afterwards (kinks of the requirement are kept exact; the error is
second order in the step: below 1e-6 relative in ``tests/unit/risk/test_margin_models.py``).
Smaller batches of such an account are evaluated exactly once per distinct (multiplier, vol shift):
scans along paths that leave its pair alone, or move it the same way, repeat rows.

Parameter sets: ``deribit_pm_model()`` (price range +-16% in 9 buckets x vol up 50% / same / down
25%, mm_factor 0.8, Deribit's ``btc_usd`` sample parameters) and ``derive_pm_model()`` (spot
0.85..1.15 step 0.05 x vol up 45% / same / down 30%, Derive PMRM 2023 mainnet config).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from risk.arrays import MODEL_OPTIONS, Book, FloatArray
from risk.margin.options_grid import grid_requirement
from risk.margin.options_table import options_table, single_pair
from risk.margin.valuation import ScenarioPrices
from risk.model import OptionsScenarioModel

__all__ = ["deribit_pm_model", "derive_pm_model", "options_requirement"]

_INTERP_MIN_SCENARIOS = 8192


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
    if exact.any() and n_s > 1:
        for a in np.flatnonzero(exact):
            column = _deduplicated(book, sp, vol_shift, int(a))
            if column is not None:
                out[:, a] = column
                exact[a] = False
    if exact.any():
        out[:, exact] = grid_requirement(book, sp, exact)[:, exact]
    return out


def _deduplicated(
    book: Book, sp: ScenarioPrices, vol_shift: FloatArray | None, a: int
) -> FloatArray | None:
    """The exact requirement of an account that ``single_pair`` accepts, computed once per distinct
    (multiplier, vol shift) of the batch: scans along paths that do not move its pair, or move it
    the same way, repeat them (``None``: not such an account, or too few repeats to gain)."""
    if single_pair(book, a) is None:
        return None
    first = np.flatnonzero((book.pos_account == a) & (book.factor_idx != book.usd))
    if first.size == 0:
        return None
    shift = np.zeros(sp.values.shape[0]) if vol_shift is None else np.asarray(vol_shift, dtype=np.float64)
    keys = np.stack([sp.mult[:, int(first[0])], shift], axis=1)
    uniq, rows, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    if uniq.shape[0] > 0.8 * keys.shape[0]:
        return None
    only = np.zeros(book.n_accounts, dtype=np.bool_)
    only[a] = True
    part = ScenarioPrices(
        mult=sp.mult[rows],
        usd_price=sp.usd_price[rows],
        values=sp.values[rows],
        quote_ratio=sp.quote_ratio[rows],
        opt_vol=sp.opt_vol[rows],
        opt_under=sp.opt_under[rows],
        opt_unit=sp.opt_unit[rows],
    )
    column: FloatArray = grid_requirement(book, part, only)[inverse.reshape(-1), a]
    return column


def _interpolated(book: Book, sp: ScenarioPrices, a: int) -> FloatArray | None:
    """The account's requirement from ``risk.margin.options_table`` over the batch's own range of
    its multiplier (``None`` when the account moves with more than one (factor, basis) pair or its
    quote is not USD)."""
    first = np.flatnonzero((book.pos_account == a) & (book.factor_idx != book.usd))
    if first.size == 0:
        return None
    x = np.log(sp.mult[:, int(first[0])])
    table = options_table(book, a, float(x.min()), float(x.max()))
    return None if table is None else table.requirement(x)


