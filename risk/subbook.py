"""Reshape a compiled ``risk.arrays.Book`` without going back to the portfolio.

``select_accounts(book, accounts)`` restricts a book to some of its accounts (what the solvers and the
Monte Carlo evaluate when only those accounts move); ``repeat_account(book, copies)`` tiles a
one-account book into identical copies (``risk.ttl`` ages each copy by a different time). Both read
only the book's arrays (layout in ``risk.arrays``) and return a new ``Book``; no Python object of
``risk.model`` is revisited.
"""

from __future__ import annotations

import weakref
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from risk.arrays import Book, IntArray
from risk.errors import RiskInputError

__all__ = ["repeat_account", "select_accounts"]

_SUB_BOOKS: weakref.WeakKeyDictionary[Book, dict[tuple[int, ...], Book]] = weakref.WeakKeyDictionary()
_SUB_BOOKS_PER_BOOK = 64


def select_accounts(book: Book, accounts: IntArray | list[int]) -> Book:
    """The same book restricted to ``accounts`` (indices into ``book.account_keys``, kept in the
    given order): same factors, prices, vols and betas; only those accounts' positions, perps and
    options (position indices renumbered). Every figure of an account depends on its own positions
    only, so evaluating the sub-book gives the same numbers for those accounts, for less work. The
    whole book is returned as is; sub-books are remembered per book (a few dozen, while it lives)."""
    keep = np.asarray(accounts, dtype=np.int64).reshape(-1)
    key = tuple(int(a) for a in keep)
    if key == tuple(range(book.n_accounts)):
        return book
    known = _SUB_BOOKS.setdefault(book, {})
    sub = known.get(key)
    if sub is None:
        sub = _select(book, keep)
        if len(known) < _SUB_BOOKS_PER_BOOK:
            known[key] = sub
    return sub


def _select(book: Book, keep: IntArray) -> Book:
    new_of = np.full(book.n_accounts, -1, dtype=np.int64)
    new_of[keep] = np.arange(keep.shape[0])
    pos = np.flatnonzero(new_of[book.pos_account] >= 0)
    pos = pos[np.argsort(new_of[book.pos_account[pos]], kind="stable")]
    pos_new = np.full(book.kind.shape[0], -1, dtype=np.int64)
    pos_new[pos] = np.arange(pos.shape[0])
    perps = np.flatnonzero(pos_new[book.perp_pos] >= 0)
    perps = perps[np.argsort(pos_new[book.perp_pos[perps]], kind="stable")]
    opts = np.flatnonzero(pos_new[book.opt_pos] >= 0)
    opts = opts[np.argsort(pos_new[book.opt_pos[opts]], kind="stable")]
    pos_account = new_of[book.pos_account[pos]]
    membership = np.zeros((pos.shape[0], keep.shape[0]))
    membership[np.arange(pos.shape[0]), pos_account] = 1.0
    return replace(
        book,
        accounts=tuple(book.accounts[int(a)] for a in keep),
        account_keys=tuple(book.account_keys[int(a)] for a in keep),
        skipped=(),
        model=book.model[keep],
        quote_idx=book.quote_idx[keep],
        penalty_rate=book.penalty_rate[keep],
        close_factor=book.close_factor[keep],
        grid_spot=book.grid_spot[keep],
        grid_vol=book.grid_vol[keep],
        mm_factor=book.mm_factor[keep],
        contingency=book.contingency[keep],
        vega_power_short=book.vega_power_short[keep],
        vega_power_long=book.vega_power_long[keep],
        pos_account=pos_account,
        kind=book.kind[pos],
        quantity=book.quantity[pos],
        price0=book.price0[pos],
        price0_usd=book.price0_usd[pos],
        factor_idx=book.factor_idx[pos],
        basis_idx=book.basis_idx[pos],
        lt=book.lt[pos],
        bonus=book.bonus[pos],
        membership=membership,
        perp_pos=pos_new[book.perp_pos[perps]],
        perp_entry=book.perp_entry[perps],
        perp_funding=book.perp_funding[perps],
        perp_entry_basis=book.perp_entry_basis[perps],
        perp_min_req=book.perp_min_req[perps],
        tier_bounds=book.tier_bounds[perps],
        tier_mmr=book.tier_mmr[perps],
        tier_deduction=book.tier_deduction[perps],
        opt_pos=pos_new[book.opt_pos[opts]],
        opt_strike=book.opt_strike[opts],
        opt_expiry=book.opt_expiry[opts],
        opt_sign=book.opt_sign[opts],
        opt_iv=book.opt_iv[opts],
        opt_underlying=book.opt_underlying[opts],
        opt_size=book.opt_size[opts],
        sm_call_spot=book.sm_call_spot[keep],
        sm_put_spot=book.sm_put_spot[keep],
        sm_put_mark=book.sm_put_mark[keep],
        sm_option_value=book.sm_option_value[keep],
        opt_spot=book.opt_spot[opts],
    )


def repeat_account(book: Book, copies: int) -> Book:
    """A book of ``copies`` identical copies of ``book``'s single account (keys suffixed ``#k``),
    so that per-copy edits of its arrays (e.g. options aged by different times, ``risk.ttl``) are
    evaluated in one ``risk.margin.evaluate`` call. Account ``k`` owns positions
    ``k * N .. (k + 1) * N - 1`` (likewise its perps and options)."""
    if book.n_accounts != 1:
        raise RiskInputError(f"repeat_account needs a one-account book, got {book.n_accounts} accounts")
    n_pos = book.kind.shape[0]

    def rows(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        reps = (copies,) + (1,) * (x.ndim - 1)
        out: npt.NDArray[Any] = np.tile(x, reps)
        return out

    offset = np.repeat(np.arange(copies, dtype=np.int64) * n_pos, book.perp_pos.shape[0])
    opt_offset = np.repeat(np.arange(copies, dtype=np.int64) * n_pos, book.opt_pos.shape[0])
    return replace(
        book,
        accounts=book.accounts * copies,
        account_keys=tuple(f"{book.account_keys[0]}#{k}" for k in range(copies)),
        skipped=(),
        model=rows(book.model),
        quote_idx=rows(book.quote_idx),
        penalty_rate=rows(book.penalty_rate),
        close_factor=rows(book.close_factor),
        grid_spot=rows(book.grid_spot),
        grid_vol=rows(book.grid_vol),
        mm_factor=rows(book.mm_factor),
        contingency=rows(book.contingency),
        vega_power_short=rows(book.vega_power_short),
        vega_power_long=rows(book.vega_power_long),
        pos_account=np.repeat(np.arange(copies, dtype=np.int64), n_pos),
        kind=rows(book.kind),
        quantity=rows(book.quantity),
        price0=rows(book.price0),
        price0_usd=rows(book.price0_usd),
        factor_idx=rows(book.factor_idx),
        basis_idx=rows(book.basis_idx),
        lt=rows(book.lt),
        bonus=rows(book.bonus),
        membership=np.kron(np.eye(copies), book.membership).astype(np.float64),
        perp_pos=rows(book.perp_pos) + offset,
        perp_entry=rows(book.perp_entry),
        perp_funding=rows(book.perp_funding),
        perp_entry_basis=rows(book.perp_entry_basis),
        perp_min_req=rows(book.perp_min_req),
        tier_bounds=rows(book.tier_bounds),
        tier_mmr=rows(book.tier_mmr),
        tier_deduction=rows(book.tier_deduction),
        opt_pos=rows(book.opt_pos) + opt_offset,
        opt_strike=rows(book.opt_strike),
        opt_expiry=rows(book.opt_expiry),
        opt_sign=rows(book.opt_sign),
        opt_iv=rows(book.opt_iv),
        opt_underlying=rows(book.opt_underlying),
        opt_size=rows(book.opt_size),
        sm_call_spot=rows(book.sm_call_spot),
        sm_put_spot=rows(book.sm_put_spot),
        sm_put_mark=rows(book.sm_put_mark),
        sm_option_value=rows(book.sm_option_value),
        opt_spot=rows(book.opt_spot),
    )
