"""Tiered perp maintenance margin, vectorized over scenarios (cross and isolated perps).

For every perp position ``j`` in scenario ``s``: notional (quote currency)
``n = |q| * mark_s`` (``requirement_basis = mark_notional``: Hyperliquid, dYdX) or
``n = |q| * entry`` (``entry_notional``: GMX's ``sizeInUsd``); tier ``k`` = the last tier whose lower
bound is ``<= n``; requirement ``max(n * mmr_k - deduction_k, min_requirement)`` (Hyperliquid's
continuous tiers, ``risk.model.MarginTier``; GMX's ``MIN_COLLATERAL_USD``). USD amounts are the quote
amounts times the quote's USD price in the scenario. Per account, the requirement is the sum over
its perps (cross: all of them; isolated: the account holds one).
"""

from __future__ import annotations

import numpy as np

from risk.arrays import Book, FloatArray
from risk.margin.blas import blocked_matmul
from risk.margin.valuation import ScenarioPrices

__all__ = ["perp_requirement"]


def perp_requirement(book: Book, sp: ScenarioPrices) -> tuple[FloatArray, FloatArray]:
    """``(requirement[S, A], notional[S, A])`` in USD, summed over each account's perps."""
    n_s = sp.values.shape[0]
    n_a = book.n_accounts
    pos = book.perp_pos
    if pos.shape[0] == 0:
        return np.zeros((n_s, n_a)), np.zeros((n_s, n_a))
    acct = book.pos_account[pos]
    quote_usd = book.prices0[book.quote_idx[acct]][None, :] * sp.quote_ratio[:, acct]
    qty = np.abs(book.quantity[pos])[None, :]
    mark_quote = book.price0[pos][None, :] * sp.mult[:, pos]
    price_quote = np.where(book.perp_entry_basis[None, :], book.perp_entry[None, :], mark_quote)
    notional = qty * price_quote
    if book.tier_bounds.shape[1] == 1:
        mm = notional * book.tier_mmr[None, :, 0] - book.tier_deduction[None, :, 0]
    else:
        k = (notional[:, :, None] >= book.tier_bounds[None, :, :]).sum(axis=2) - 1
        k = np.maximum(k, 0)
        cols = np.arange(pos.shape[0])[None, :]
        mm = notional * book.tier_mmr[cols, k] - book.tier_deduction[cols, k]
    mm = np.maximum(mm, book.perp_min_req[None, :]) * quote_usd
    member = book.membership[pos]
    requirement: FloatArray = blocked_matmul(mm, member)
    notional_usd: FloatArray = blocked_matmul(qty * mark_quote * quote_usd, member)
    return requirement, notional_usd
