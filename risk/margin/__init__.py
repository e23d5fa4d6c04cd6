"""Margin models over scenarios: ``evaluate(book, factor_prices, vol_shift) -> Evaluation``.

Input: a ``risk.arrays.Book`` and absolute USD factor prices ``factor_prices[S, F]`` (columns in
``book.factors`` order; ``book.prices0[None, :]`` is "now"), optionally a relative implied-vol shift
per scenario ``vol_shift[S]`` (``0.5`` = every IV x 1.5). Fully vectorized over S (no Python loop over
scenarios; the options grid is chunked over S to bound memory).

Output arrays are ``[S, A]`` in USD, columns in ``book.account_keys`` order (design section 4.1):

- ``equity``: the sum of the account's position values (``risk.margin.valuation``), plus perps'
  accrued funding. Options are revalued with Black-76 under the scenario's spot and vol.
- ``resources`` / ``requirement`` per model:
  lending (``risk.margin.lending``): ``sum collateral value * LT`` / ``sum |debt value|``;
  cross and isolated perps (``risk.margin.perps``): ``equity`` / ``sum tiered MM``;
  options (``risk.margin.options``): ``equity`` / ``mm_factor * max(0, -min grid PnL) + contingency``;
  venue standard margin (``risk.margin.venue_standard``): ``equity`` (Deribit: less the options'
  value) / the sum of each position's maintenance margin by the venue's own formula;
  Derive standard margin (``risk.margin.derive_standard``): ``equity`` / perps' tiered margin plus
  base collateral haircuts plus per-expiry ``min(isolated short-option margin, mtm - max loss)``.
- ``health = resources / requirement``, ``+inf`` where ``requirement <= 0`` (no requirement).
- ``penalty``: what a liquidation of the account would cost in that scenario: lending
  ``close_factor * debt * bonus``; perps ``liquidation_penalty * sum |notional|``; options
  ``liquidation_penalty * sum |value of options and perps|`` (standard margin too).

``chf(evaluation)`` gives the composite health factor per scenario (min over accounts; ``+inf`` for a
book with no account); ``equity(book, factor_prices, vol_shift)`` the ``equity`` alone, without the
requirements (what ``risk.exposure`` differentiates). Monte Carlo batches go through
``risk.margin.kernel`` instead (the same models compiled for log-returns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.arrays import (
    MODEL_CROSS_PERP,
    MODEL_DERIVE_STANDARD,
    MODEL_ISOLATED_PERP,
    MODEL_LENDING,
    MODEL_OPTIONS,
    MODEL_STANDARD,
    Book,
    FloatArray,
)
from risk.errors import RiskInputError
from risk.margin.blas import blocked_matmul
from risk.margin.derive_standard import derive_standard_figures
from risk.margin.lending import lending_figures
from risk.margin.options import deribit_pm_model, derive_pm_model, options_requirement
from risk.margin.perps import perp_requirement
from risk.margin.valuation import ScenarioPrices, risky_gross, scenario_prices
from risk.margin.venue_standard import standard_figures

__all__ = ["Evaluation", "chf", "deribit_pm_model", "derive_pm_model", "equity", "evaluate", "health_of"]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Per scenario and account, in USD (see the module docstring)."""

    equity: FloatArray
    resources: FloatArray
    requirement: FloatArray
    health: FloatArray
    penalty: FloatArray


def health_of(resources: FloatArray, requirement: FloatArray) -> FloatArray:
    """``resources / requirement``, ``+inf`` where there is no requirement."""
    positive = requirement > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        h: FloatArray = np.where(positive, resources / np.where(positive, requirement, 1.0), np.inf)
    return h


def chf(evaluation: Evaluation) -> FloatArray:
    """Composite health factor ``[S]``: min over accounts, ``+inf`` for an empty book."""
    h = evaluation.health
    if h.shape[1] == 0:
        return np.full(h.shape[0], np.inf)
    out: FloatArray = h.min(axis=1)
    return out


def _checked(book: Book, factor_prices: FloatArray, vol_shift: FloatArray | None) -> FloatArray:
    prices = np.asarray(factor_prices, dtype=np.float64)
    if prices.ndim != 2 or prices.shape[1] != book.n_factors:
        raise RiskInputError(
            f"factor_prices must be [S, {book.n_factors}] ({', '.join(book.factors)}), got {prices.shape}"
        )
    if vol_shift is not None and np.shape(vol_shift) != (prices.shape[0],):
        raise RiskInputError(f"vol_shift must be [{prices.shape[0]}], got {np.shape(vol_shift)}")
    return prices


def _equity(book: Book, sp: ScenarioPrices) -> FloatArray:
    equity: FloatArray = blocked_matmul(sp.values, book.membership)
    if book.perp_pos.shape[0]:
        acct = book.pos_account[book.perp_pos]
        quote_usd = book.prices0[book.quote_idx[acct]][None, :] * sp.quote_ratio[:, acct]
        funding = book.perp_funding[None, :] * quote_usd
        equity = equity + blocked_matmul(funding, book.membership[book.perp_pos])
    return equity


def equity(book: Book, factor_prices: FloatArray, vol_shift: FloatArray | None = None) -> FloatArray:
    """``evaluate(...).equity`` alone (``[S, A]``, USD), without the margin requirements."""
    prices = _checked(book, factor_prices, vol_shift)
    return _equity(book, scenario_prices(book, prices, vol_shift))


def evaluate(book: Book, factor_prices: FloatArray, vol_shift: FloatArray | None = None) -> Evaluation:
    prices = _checked(book, factor_prices, vol_shift)
    n_s = prices.shape[0]
    sp = scenario_prices(book, prices, vol_shift)
    n_a = book.n_accounts
    equity = _equity(book, sp)

    resources = np.zeros((n_s, n_a))
    requirement = np.zeros((n_s, n_a))
    penalty = np.zeros((n_s, n_a))
    model = book.model
    is_lending = model == MODEL_LENDING
    is_perp = (model == MODEL_CROSS_PERP) | (model == MODEL_ISOLATED_PERP)
    is_options = model == MODEL_OPTIONS
    if is_lending.any():
        res, req, pen = lending_figures(book, sp)
        resources[:, is_lending] = res[:, is_lending]
        requirement[:, is_lending] = req[:, is_lending]
        penalty[:, is_lending] = pen[:, is_lending]
    if is_perp.any() or is_options.any():
        resources[:, is_perp | is_options] = equity[:, is_perp | is_options]
    if is_perp.any():
        req, notional = perp_requirement(book, sp)
        requirement[:, is_perp] = req[:, is_perp]
        penalty[:, is_perp] = (book.penalty_rate[None, :] * notional)[:, is_perp]
    if is_options.any():
        req = options_requirement(book, sp, vol_shift)
        requirement[:, is_options] = req[:, is_options]
        gross = risky_gross(book, sp)
        penalty[:, is_options] = (book.penalty_rate[None, :] * gross)[:, is_options]
    is_standard = model == MODEL_STANDARD
    if is_standard.any():
        res, req, gross = standard_figures(book, sp, equity)
        resources[:, is_standard] = res[:, is_standard]
        requirement[:, is_standard] = req[:, is_standard]
        penalty[:, is_standard] = (book.penalty_rate[None, :] * gross)[:, is_standard]
    is_derive_sm = model == MODEL_DERIVE_STANDARD
    if is_derive_sm.any():
        res, req, gross = derive_standard_figures(book, sp, equity)
        resources[:, is_derive_sm] = res[:, is_derive_sm]
        requirement[:, is_derive_sm] = req[:, is_derive_sm]
        penalty[:, is_derive_sm] = (book.penalty_rate[None, :] * gross)[:, is_derive_sm]
    return Evaluation(
        equity=equity,
        resources=resources,
        requirement=requirement,
        health=health_of(resources, requirement),
        penalty=penalty,
    )
