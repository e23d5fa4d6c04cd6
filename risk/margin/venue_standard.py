"""A venue's standard (per-position) margin, vectorized over scenarios (Deribit and Aevo standard margin).

Read from ``risk.arrays.Book`` (``MODEL_STANDARD`` accounts, parameters ``sm_*`` from
``risk.model.StandardMarginModel``) and the scenario state of ``risk.margin.valuation``. In scenario
``s``, for every account ``a`` of that model (USD: quote amounts times the quote's USD price):

- perps and futures: their tiered maintenance margin, exactly as ``risk.margin.perps``;
- a short option (``n = |quantity| * contract_size`` underlying units, spot ``S_s = opt_spot * m_s``
  moved by the position's factors, mark per option unit ``u_s = max(0, price0 + (B76(U_s, sigma_s) -
  B76(U_0, sigma_0)) * contract_size)``, the revaluation of ``risk.margin.valuation``):
  call ``|quantity| * (call_spot * S_s * contract_size + u_s)``,
  put ``|quantity| * (max(put_spot * S_s * contract_size, put_mark * u_s) + u_s)``; long options 0.
  Deribit (docs "Margin requirements", inverse options, in coins per contract; times the index in
  USD): call ``0.075 + mark``, put ``max(0.075, 0.075 * mark) + mark``. Aevo (docs.aevo.xyz
  standard margin, USD): call ``0.1 * spot + mark``, put ``max(0.1 * spot, 0.1 * mark) + mark``;
- resources: the account's equity, less its options' value where ``sm_option_value == 0``
  (Deribit's ``margin_balance = equity - options_value``).

``standard_figures(book, sp)`` returns ``(resources[S, A], requirement[S, A], gross[S, A])`` (only the
standard accounts' columns are filled; ``gross`` is the sum of ``|value|`` of their options and perps,
for the liquidation penalty).
"""

from __future__ import annotations

import numpy as np

from risk.arrays import KIND_OPTION, MODEL_STANDARD, Book, FloatArray
from risk.margin.blas import blocked_matmul
from risk.margin.perps import perp_requirement
from risk.margin.valuation import ScenarioPrices, risky_gross

__all__ = ["option_requirement", "standard_figures"]


def option_requirement(book: Book, sp: ScenarioPrices) -> FloatArray:
    """``requirement[S, A]`` (USD) of the short options of standard-margin accounts."""
    n_s = sp.values.shape[0]
    out = np.zeros((n_s, book.n_accounts))
    acct_all = book.pos_account[book.opt_pos]
    local = np.flatnonzero((book.model[acct_all] == MODEL_STANDARD) & (book.quantity[book.opt_pos] < 0))
    if local.size == 0:
        return out
    pos = book.opt_pos[local]
    acct = acct_all[local]
    size = book.opt_size[local]
    mark = np.maximum(sp.opt_unit[:, local], 0.0)
    spot = book.opt_spot[local][None, :] * sp.mult[:, pos] * size[None, :]
    call = book.opt_sign[local] > 0
    spot_part = np.where(
        call[None, :],
        book.sm_call_spot[acct][None, :] * spot,
        np.maximum(book.sm_put_spot[acct][None, :] * spot, book.sm_put_mark[acct][None, :] * mark),
    )
    quote_usd = book.prices0[book.quote_idx[acct]][None, :] * sp.quote_ratio[:, acct]
    mm = np.abs(book.quantity[pos])[None, :] * (spot_part + mark) * quote_usd
    out += blocked_matmul(mm, book.membership[pos])
    return out


def standard_figures(
    book: Book, sp: ScenarioPrices, equity: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(resources, requirement, gross)``, each ``[S, A]`` in USD (standard accounts' columns)."""
    n_s, n_a = sp.values.shape[0], book.n_accounts
    mine = book.model == MODEL_STANDARD
    resources = np.zeros((n_s, n_a))
    requirement = np.zeros((n_s, n_a))
    gross = np.zeros((n_s, n_a))
    if not mine.any():
        return resources, requirement, gross
    is_option = book.kind == KIND_OPTION
    option_value = blocked_matmul(sp.values[:, is_option], book.membership[is_option])
    keep = book.sm_option_value[None, :]
    resources[:, mine] = (equity - (1.0 - keep) * option_value)[:, mine]
    perp_req, _ = perp_requirement(book, sp)
    requirement[:, mine] = (perp_req + option_requirement(book, sp))[:, mine]
    gross[:, mine] = risky_gross(book, sp)[:, mine]
    return resources, requirement, gross
