"""Compile a book for ``risk.margin.kernel`` (see there for the model): pairs, linear weights, perps,
options tables, and the accounts that need the exact evaluation.

Pairs ``k``: every distinct (factor, basis) of a position, every account's (quote, none), and
(USD, none), whose multiplier is always 1 (the constant column). Linear weights ``W[K, 2A]``
(resources | requirement), coefficients ``quantity * price0_usd`` summed per pair: lending
collateral times LT into resources and debt (negated) into requirement; for perps and options
accounts every non-option position's value plus perps' accrued funding (``funding * P0[quote]`` on
the quote pair) into resources. Perps of perp-model accounts keep their tiers for the kernel.
Exact: accounts holding an option outside an options model, options accounts without a table, and
venue standard-margin accounts (``MODEL_STANDARD``: per-position formulas, ``risk.margin.venue_standard``)
and Derive standard-margin accounts (``MODEL_DERIVE_STANDARD``, ``risk.margin.derive_standard``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from risk.arrays import (
    KIND_COLLATERAL,
    KIND_DEBT,
    KIND_OPTION,
    MODEL_CROSS_PERP,
    MODEL_DERIVE_STANDARD,
    MODEL_ISOLATED_PERP,
    MODEL_LENDING,
    MODEL_OPTIONS,
    MODEL_STANDARD,
    Book,
    BoolArray,
    FloatArray,
    IntArray,
)
from risk.errors import RiskInputError
from risk.margin.options_table import DEFAULT_POINTS, OptionsTable, options_table, single_pair

__all__ = ["Compiled", "Perps", "TableSpec", "compile_kernel"]


@dataclass(frozen=True, eq=False)
class Perps:
    """Perps of perp-model accounts, in position order."""

    pair: IntArray  # [Np] pair of the mark price
    coef: FloatArray  # [Np] |q| * price0 (mark basis) or 0 (entry basis)
    const: FloatArray  # [Np] |q| * entry (entry basis) or 0
    bounds: FloatArray  # [Np, T] tier lower bounds (padding +inf)
    mmr: FloatArray  # [Np, T]
    deduction: FloatArray  # [Np, T]
    min_req: FloatArray  # [Np]
    quote_pair: IntArray  # [Np] pair of the quote (-1: USD)
    quote_usd0: FloatArray  # [Np]
    account: IntArray  # [Np]


@dataclass(frozen=True, eq=False)
class TableSpec:
    """An options account to tabulate (``risk.margin.options_table``) over ``[lo, hi]`` of its pair's
    log-multiplier (pair ``pair``), on ``points`` nodes, once some batch needs it."""

    account: int
    pair: int
    lo: float
    hi: float
    points: int

    def build(self, book: Book) -> OptionsTable:
        table = options_table(book, self.account, self.lo, self.hi, self.points)
        if table is None:  # pragma: no cover - single_pair accepted the account at compile time
            raise RiskInputError(f"{book.account_keys[self.account]}: cannot tabulate this options account")
        return table


@dataclass(frozen=True, eq=False)
class Compiled:
    book: Book
    pair_factor: IntArray  # [K]
    pair_basis: IntArray  # [K] (book.n_factors: none)
    const_pair: int  # the pair (USD, none)
    weights: FloatArray  # [K, 2A]
    perps: Perps | None
    tables: tuple[TableSpec, ...]  # options accounts tabulated when first needed
    exact: IntArray  # accounts evaluated exactly


def _pairs(book: Book) -> tuple[dict[tuple[int, int], int], list[tuple[int, int]]]:
    index: dict[tuple[int, int], int] = {}
    order: list[tuple[int, int]] = []
    keys = [(int(f), int(b)) for f, b in zip(book.factor_idx, book.basis_idx, strict=True)]
    keys += [(int(q), book.n_factors) for q in book.quote_idx] + [(book.usd, book.n_factors)]
    for key in keys:
        if key not in index:
            index[key] = len(order)
            order.append(key)
    return index, order


def _tables(
    book: Book,
    exact: BoolArray,
    index: dict[tuple[int, int], int],
    log_range: Callable[[int, int], tuple[float, float]],
    points: int,
) -> list[TableSpec]:
    tables: list[TableSpec] = []
    for a in np.flatnonzero(book.model == MODEL_OPTIONS):
        pair = single_pair(book, int(a))
        if pair is None or exact[a]:
            exact[a] = True
        else:
            lo, hi = log_range(*pair)
            tables.append(TableSpec(int(a), index[pair], float(lo), float(hi), points))
    return tables


def _weights(
    book: Book, exact: BoolArray, pair_of: IntArray, quote_pair: IntArray, n_k: int
) -> FloatArray:
    n_a = book.n_accounts
    w = np.zeros((n_k, 2 * n_a))
    value = book.quantity * book.price0_usd
    model = book.model[book.pos_account]
    for n in range(book.kind.shape[0]):
        a = int(book.pos_account[n])
        if exact[a]:
            continue
        k = int(pair_of[n])
        if model[n] == MODEL_LENDING:
            if book.kind[n] == KIND_COLLATERAL:
                w[k, a] += value[n] * book.lt[n]
            elif book.kind[n] == KIND_DEBT:
                w[k, n_a + a] -= value[n]
        elif book.kind[n] != KIND_OPTION:
            w[k, a] += value[n]
    for j, n in enumerate(book.perp_pos):
        a = int(book.pos_account[n])
        if book.model[a] != MODEL_LENDING and not exact[a]:
            w[quote_pair[a], a] += book.perp_funding[j] * book.prices0[book.quote_idx[a]]
    return w


def _perps(book: Book, exact: BoolArray, pair_of: IntArray, quote_pair: IntArray) -> Perps | None:
    is_perp_model = (book.model == MODEL_CROSS_PERP) | (book.model == MODEL_ISOLATED_PERP)
    perp_acct = book.pos_account[book.perp_pos]
    sel = np.flatnonzero(is_perp_model[perp_acct] & ~exact[perp_acct]).astype(np.int64)
    if sel.size == 0:
        return None
    pos = book.perp_pos[sel]
    acct = book.pos_account[pos]
    entry = book.perp_entry_basis[sel]
    qty = np.abs(book.quantity[pos])
    return Perps(
        pair=pair_of[pos],
        coef=np.where(entry, 0.0, qty * book.price0[pos]),
        const=np.where(entry, qty * book.perp_entry[sel], 0.0),
        bounds=book.tier_bounds[sel],
        mmr=book.tier_mmr[sel],
        deduction=book.tier_deduction[sel],
        min_req=book.perp_min_req[sel],
        quote_pair=np.where(book.quote_idx[acct] == book.usd, -1, quote_pair[acct]),
        quote_usd0=book.prices0[book.quote_idx[acct]],
        account=acct,
    )


def compile_kernel(
    book: Book, log_range: Callable[[int, int], tuple[float, float]], table_points: int = DEFAULT_POINTS
) -> Compiled:
    """``log_range(factor, basis)``: the span of ``ln m`` an options table must cover for that pair
    (scenarios beyond it are evaluated exactly), tabulated on ``table_points`` nodes."""
    index, order = _pairs(book)
    n_k, n_a, n_f = len(order), book.n_accounts, book.n_factors
    keys = zip(book.factor_idx, book.basis_idx, strict=True)
    pair_of = np.array([index[(int(f), int(b))] for f, b in keys], dtype=np.int64).reshape(book.kind.shape[0])
    quote_pair = np.array([index[(int(q), n_f)] for q in book.quote_idx], dtype=np.int64).reshape(n_a)
    # exact: models the kernel does not compile (e.g. a venue's standard margin), accounts holding an
    # option outside an options model, options accounts without a table
    compiled = np.isin(book.model, [MODEL_LENDING, MODEL_CROSS_PERP, MODEL_ISOLATED_PERP, MODEL_OPTIONS])
    exact = ~compiled
    stray = (book.kind == KIND_OPTION) & (book.model[book.pos_account] != MODEL_OPTIONS)
    exact[book.pos_account[stray]] = True
    exact[book.model == MODEL_STANDARD] = True
    exact[book.model == MODEL_DERIVE_STANDARD] = True  # risk.margin.derive_standard, through evaluate
    tables = _tables(book, exact, index, log_range, table_points)
    return Compiled(
        book=book,
        pair_factor=np.array([f for f, _ in order], dtype=np.int64).reshape(n_k),
        pair_basis=np.array([b for _, b in order], dtype=np.int64).reshape(n_k),
        const_pair=index[(book.usd, n_f)],
        weights=_weights(book, exact, pair_of, quote_pair, n_k),
        perps=_perps(book, exact, pair_of, quote_pair),
        tables=tuple(tables),
        exact=np.flatnonzero(exact).astype(np.int64),
    )
