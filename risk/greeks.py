"""Greeks per factor, per account and for the book (design section 4.8).

Read from ``risk.arrays.Book`` (current prices and positions). Units follow
``risk.assessment.Greeks``: ``delta`` in factor units (dV/dP_f), ``delta_usd = delta * P_f`` (the USD
change per 100% move, i.e. the USD exposure), ``gamma`` d(delta)/dP_f in factor units per USD,
``vega`` USD per vol point (0.01 of IV) per underlying factor, ``theta`` USD per calendar day.

Formulas: a linear position (collateral, supply, debt, spot, perp) is worth ``V = q * p_usd`` with
``p_usd`` proportional to ``P_factor * P_basis``, so ``dV/dP_f = V / P_f`` and ``dV/dP_b = V / P_b``
and no gamma. An option is worth ``q * size * B76(U, K, T, iv) * P_quote`` with the underlying ``U``
proportional to ``P_factor * P_basis`` (``risk.options.black76_greeks``), so
``dV/dP_f = q size Delta U / P_f * P_quote`` and ``d2V/dP_f2 = q size Gamma (U / P_f)^2 * P_quote``
(the same with ``P_b`` for the basis factor); cross gammas are not reported. ``USD`` (the numeraire)
is never a greek key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from risk.arrays import Book, FloatArray
from risk.assessment import Greeks
from risk.model import USD, FactorId
from risk.options import black76_greeks

__all__ = ["GreeksReport", "book_greeks", "sum_greeks"]

_VOL_POINT = 0.01
_DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class GreeksReport:
    accounts: Mapping[str, Greeks]  # by account key
    book: Greeks


def _add(target: dict[FactorId, float], factor: FactorId, value: float) -> None:
    if factor != USD:
        target[factor] = target.get(factor, 0.0) + value


def sum_greeks(parts: list[Greeks], prices: Mapping[FactorId, float]) -> Greeks:
    """Sum greeks factor by factor (delta_usd recomputed from the summed delta)."""
    delta: dict[FactorId, float] = {}
    gamma: dict[FactorId, float] = {}
    vega: dict[FactorId, float] = {}
    theta = 0.0
    for g in parts:
        for f, v in g.delta.items():
            _add(delta, f, v)
        for f, v in g.gamma.items():
            _add(gamma, f, v)
        for f, v in g.vega.items():
            _add(vega, f, v)
        theta += g.theta
    ordered = sorted(delta)
    return Greeks(
        delta={f: delta[f] for f in ordered},
        delta_usd={f: delta[f] * prices[f] for f in ordered},
        gamma={f: gamma.get(f, 0.0) for f in ordered},
        vega={f: vega[f] for f in sorted(vega)},
        theta=theta,
    )


def book_greeks(book: Book) -> GreeksReport:
    """Greeks of every compiled account of ``book`` and their sum."""
    n_f = book.n_factors
    n_a = book.n_accounts
    delta = np.zeros((n_a, n_f + 1))  # last column: "no basis"
    gamma = np.zeros((n_a, n_f + 1))
    vega = np.zeros((n_a, n_f + 1))
    theta = np.zeros(n_a)
    p_ext: FloatArray = np.append(book.prices0, 1.0)

    linear = np.ones(book.kind.shape[0], dtype=bool)
    linear[book.opt_pos] = False
    value = book.quantity * book.price0_usd
    for idx in (book.factor_idx, book.basis_idx):
        np.add.at(delta, (book.pos_account[linear], idx[linear]), value[linear] / p_ext[idx[linear]])

    if book.opt_pos.shape[0]:
        o = book.opt_pos
        acct = book.pos_account[o]
        g = black76_greeks(
            book.opt_underlying, book.opt_strike, book.opt_expiry, book.opt_iv, book.opt_sign > 0
        )
        scale = book.quantity[o] * book.opt_size * book.prices0[book.quote_idx[acct]]
        for idx in (book.factor_idx[o], book.basis_idx[o]):
            ratio = book.opt_underlying / p_ext[idx]
            np.add.at(delta, (acct, idx), scale * g.delta * ratio)
            np.add.at(gamma, (acct, idx), scale * g.gamma * ratio * ratio)
        np.add.at(vega, (acct, book.factor_idx[o]), scale * g.vega * _VOL_POINT)
        np.add.at(theta, acct, scale * g.theta / _DAYS_PER_YEAR)

    touched = np.zeros((n_a, n_f + 1), dtype=bool)
    np.logical_or.at(touched, (book.pos_account, book.factor_idx), True)
    np.logical_or.at(touched, (book.pos_account, book.basis_idx), True)
    prices = dict(zip(book.factors, (float(p) for p in book.prices0), strict=True))
    accounts: dict[str, Greeks] = {}
    for a, key in enumerate(book.account_keys):
        fs = [j for j in range(n_f) if touched[a, j] and book.factors[j] != USD]
        fs.sort(key=lambda j: book.factors[j])
        accounts[key] = Greeks(
            delta={book.factors[j]: float(delta[a, j]) for j in fs},
            delta_usd={book.factors[j]: float(delta[a, j] * book.prices0[j]) for j in fs},
            gamma={book.factors[j]: float(gamma[a, j]) for j in fs},
            vega={book.factors[j]: float(vega[a, j]) for j in fs if vega[a, j] != 0.0},
            theta=float(theta[a]),
        )
    return GreeksReport(accounts=accounts, book=sum_greeks(list(accounts.values()), prices))
