"""Health of every account over a large batch of scenarios given as factor log-returns (Monte Carlo).

``health_kernel(book, log_range)`` compiles a book once (``risk.margin.kernel_build``);
``HealthKernel.figures(x, columns)`` then gives ``(resources[S, A], requirement[S, A])`` in USD and
``HealthKernel.below(x, columns)`` the flags ``health < 1``, for scenarios ``x[S, C]`` of
log-returns ``ln(P_s / P0)`` of the factors ``columns[C]`` (other factors stay put). Same model and
numbers as ``risk.margin.evaluate`` (to rounding, and to the interpolation error of
``risk.margin.options_table`` for options accounts), for much less work:

- **pairs**: every position moves with the multiplier ``m_k = exp(x_f + x_b)`` of its (factor,
  basis) pair ``k`` (``risk.margin.valuation``), quote currencies too: one ``exp`` per pair and
  scenario, and only for the pairs the accounts being computed use.
- **linear parts**: lending resources ``sum collateral value * LT`` and requirement
  ``sum |debt value|``, the equity of perps and options accounts (options excepted) are linear in
  the multipliers: one product ``m[S, K] @ W[K, *]``.
- **perps**: notional ``|q| * price0 * m`` (or ``|q| * entry``), tier ``k`` the last whose lower
  bound is ``<=`` it, maintenance ``max(n mmr_k - deduction_k, min_requirement)`` times the quote's
  USD price, summed per account. A perp (USD quote) whose notional stays in one tier over the whole
  batch, above its minimum, has a requirement linear in ``m``: it joins the product.
- **options accounts** that ``risk.margin.options_table.single_pair`` accepts: requirement and option
  value from a table over the pair's log-multiplier on ``log_range(factor, basis)``; scenarios
  outside it, and every other options account (or any account with an option outside an options
  model), go through ``evaluate`` on a sub-book of those accounts (exact).
- **screen** (``below``): from each pair's least and greatest multiplier over the batch, an account
  whose resources' lower bound exceeds its requirement's upper bound cannot be below 1 anywhere in
  the batch and is not computed at all (linear parts take each coefficient at its worse end; the
  maintenance margin grows with the notional; an options account's bounds come from Black-76
  being monotone in the underlying, ``risk.margin.options_bounds``, or, once its table is built,
  from the table's nodes, where its interpolants have their extremes). A table is built the first
  time its account is not ruled out. The bounds of ``x`` may be given (``x_lo``, ``x_hi`` per
  column, e.g. cached with Monte Carlo paths); a pair's bound is then the sum of its factors'
  bounds (wider, still valid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from risk.arrays import Book, BoolArray, FloatArray, IntArray
from risk.margin import evaluate
from risk.margin.blas import Scratch, blocked_matmul, column_extremes
from risk.margin.kernel_build import Compiled, Perps, TableSpec, compile_kernel
from risk.margin.options_bounds import options_bounds
from risk.margin.options_table import DEFAULT_POINTS, OptionsTable
from risk.subbook import select_accounts

__all__ = ["HealthKernel", "health_kernel"]

_SAFE_MARGIN = 1e-9  # relative to the gross amounts: far above the rounding of the per-row sums


@dataclass(frozen=True, eq=False)
class _Batch:
    x: FloatArray  # [S, C]
    columns: IntArray  # [C]
    exponents: FloatArray  # [C, K]: ln m = x @ exponents
    m_lo: FloatArray  # [K] least multiplier of each pair over the batch (or a lower bound)
    m_hi: FloatArray  # [K] greatest (or an upper bound)
    weights: FloatArray  # [K, 2A] linear weights incl. the perps that stay in one tier
    tier: IntArray  # [Np] that tier; -1: computed per scenario


@dataclass(frozen=True, eq=False)
class HealthKernel:
    c: Compiled
    scratch: Scratch = field(default_factory=Scratch)
    built: dict[int, OptionsTable] = field(default_factory=dict)  # options tables by account

    def _table(self, spec: TableSpec) -> OptionsTable:
        table = self.built.get(spec.account)
        if table is None:
            table = spec.build(self.book)
            self.built[spec.account] = table
        return table

    @property
    def book(self) -> Book:
        return self.c.book

    def _exponents(self, columns: IntArray) -> FloatArray:
        col = {int(f): i for i, f in enumerate(columns)}
        e = np.zeros((len(columns), self.c.pair_factor.shape[0]))
        for k, (f, b) in enumerate(zip(self.c.pair_factor, self.c.pair_basis, strict=True)):
            for g in (int(f), int(b)):
                if g in col:
                    e[col[g], k] += 1.0
        return e

    def _batch(
        self, x: FloatArray, columns: IntArray, x_lo: FloatArray | None, x_hi: FloatArray | None
    ) -> _Batch:
        e = self._exponents(columns)
        if x_lo is None or x_hi is None:
            x_lo, x_hi = column_extremes(x)
        m_lo, m_hi = np.exp(x_lo @ e), np.exp(x_hi @ e)  # e >= 0
        extra, tier = self._perp_tiers(m_lo, m_hi)
        return _Batch(x, columns, e, m_lo, m_hi, self.c.weights + extra, tier)

    def _perp_tiers(self, m_lo: FloatArray, m_hi: FloatArray) -> tuple[FloatArray, IntArray]:
        """Per perp, the one tier its notional stays in over the batch (``-1``: it may change tier,
        hit its minimum requirement, or its quote is not USD), and the linear weights of those that
        stay."""
        p, n_a = self.c.perps, self.book.n_accounts
        extra = np.zeros_like(self.c.weights)
        if p is None:
            return extra, np.zeros(0, dtype=np.int64)
        lo = m_lo[p.pair] * p.coef + p.const
        hi = m_hi[p.pair] * p.coef + p.const
        k_lo = np.maximum((lo[:, None] >= p.bounds).sum(axis=1) - 1, 0)
        k_hi = np.maximum((hi[:, None] >= p.bounds).sum(axis=1) - 1, 0)
        rows = np.arange(p.pair.shape[0])
        floor_ok = lo * p.mmr[rows, k_lo] - p.deduction[rows, k_lo] >= p.min_req
        tier = np.where((k_lo == k_hi) & (p.quote_pair < 0) & floor_ok, k_lo, -1)
        for j in np.flatnonzero(tier >= 0):
            k, col = int(tier[j]), n_a + int(p.account[j])
            extra[p.pair[j], col] += p.coef[j] * p.mmr[j, k] * p.quote_usd0[j]
            extra[self.c.const_pair, col] += (p.const[j] * p.mmr[j, k] - p.deduction[j, k]) * p.quote_usd0[j]
        return extra, tier

    @staticmethod
    def _perp_mm(p: Perps, rest: IntArray, m: FloatArray) -> FloatArray:
        """Maintenance margin (USD) of the perps ``rest`` at pair multipliers ``m[K]``."""
        notional = m[p.pair[rest]] * p.coef[rest] + p.const[rest]
        k = np.maximum((notional[:, None] >= p.bounds[rest]).sum(axis=1) - 1, 0)
        mm = np.maximum(notional * p.mmr[rest, k] - p.deduction[rest, k], p.min_req[rest])
        quote = np.where(p.quote_pair[rest] >= 0, m[p.quote_pair[rest]], 1.0)
        out: FloatArray = mm * p.quote_usd0[rest] * quote
        return out

    def _safe(self, b: _Batch) -> tuple[BoolArray, BoolArray]:
        """``(safe, positive)``: the accounts that cannot be below 1 anywhere in the batch (see the
        module docstring), and those whose requirement is positive everywhere in it."""
        n_a = self.book.n_accounts
        w_res, w_req = b.weights[:, :n_a], b.weights[:, n_a:]
        res_lo = np.maximum(w_res, 0.0).T @ b.m_lo + np.minimum(w_res, 0.0).T @ b.m_hi
        req_hi = np.maximum(w_req, 0.0).T @ b.m_hi + np.minimum(w_req, 0.0).T @ b.m_lo
        req_lo = np.maximum(w_req, 0.0).T @ b.m_lo + np.minimum(w_req, 0.0).T @ b.m_hi
        gross = np.abs(w_res).T @ b.m_hi + np.abs(w_req).T @ b.m_hi
        ok = np.ones(n_a, dtype=np.bool_)
        p = self.c.perps
        rest = np.flatnonzero(b.tier < 0)
        if p is not None and rest.size:  # the maintenance margin grows with the multipliers
            mm_hi = self._perp_mm(p, rest, b.m_hi)
            np.add.at(req_hi, p.account[rest], mm_hi)
            np.add.at(req_lo, p.account[rest], self._perp_mm(p, rest, b.m_lo))
            np.add.at(gross, p.account[rest], mm_hi)
        for spec in self.c.tables:
            a, x_lo, x_hi = spec.account, float(np.log(b.m_lo[spec.pair])), float(np.log(b.m_hi[spec.pair]))
            table = self.built.get(a)
            found = options_bounds(self.book, a, x_lo, x_hi) if table is None else table.bounds(x_lo, x_hi)
            if found is None:
                ok[a] = False
                continue
            res_lo[a] += found[0]
            req_hi[a] = found[1]
            gross[a] += abs(found[0]) + abs(found[1])
        ok[self.c.exact] = False
        safe: BoolArray = ok & (res_lo - req_hi > _SAFE_MARGIN * gross)
        positive: BoolArray = req_lo > _SAFE_MARGIN * gross
        positive[self.c.exact] = False
        positive[[t.account for t in self.c.tables]] = False
        return safe, positive

    def _compute(
        self, b: _Batch, active: IntArray, scratch: Scratch | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """``(resources[S, n], requirement[S, n])`` of the accounts ``active``, in that order (in
        ``scratch`` arrays when given)."""
        book, c, p = self.book, self.c, self.c.perps
        n_s, n_a, n_act = b.x.shape[0], book.n_accounts, active.shape[0]
        where = np.full(n_a, -1, dtype=np.int64)
        where[active] = np.arange(n_act)
        w = b.weights[:, np.concatenate([active, n_a + active])]
        rest = np.zeros(0, dtype=np.int64)
        if p is not None:
            rest = np.flatnonzero((b.tier < 0) & (where[p.account] >= 0))
        tables = [(self._table(t), t.pair) for t in c.tables if where[t.account] >= 0]
        # the pairs needed, and their multipliers only
        need = np.flatnonzero(w.any(axis=1))
        if p is not None and rest.size:
            quotes = p.quote_pair[rest]
            need = np.union1d(need, np.concatenate([p.pair[rest], quotes[quotes >= 0]]))
        need = np.union1d(need, np.array([k for _, k in tables], dtype=np.int64))
        slot = np.full(c.pair_factor.shape[0], -1, dtype=np.int64)
        slot[need] = np.arange(need.size)
        sc = scratch if scratch is not None else Scratch()
        e_need, w_need = np.ascontiguousarray(b.exponents[:, need]), np.ascontiguousarray(w[need])
        logm = blocked_matmul(b.x, e_need, sc.get("logm", (n_s, need.size)))
        m = np.exp(logm, out=sc.get("m", (n_s, need.size)))
        both = blocked_matmul(m, w_need, sc.get("both", (n_s, 2 * n_act)))
        resources, requirement = both[:, :n_act], both[:, n_act:]
        if p is not None and rest.size:
            notional = m[:, slot[p.pair[rest]]] * p.coef[rest] + p.const[rest]
            k = np.maximum((notional[:, :, None] >= p.bounds[rest][None, :, :]).sum(axis=2) - 1, 0)
            mm = notional * p.mmr[rest[None, :], k] - p.deduction[rest[None, :], k]
            np.maximum(mm, p.min_req[rest], out=mm)
            mm *= p.quote_usd0[rest]
            quoted = np.flatnonzero(p.quote_pair[rest] >= 0)
            if quoted.size:
                mm[:, quoted] *= m[:, slot[p.quote_pair[rest][quoted]]]
            member = np.zeros((rest.size, n_act))
            member[np.arange(rest.size), where[p.account[rest]]] = 1.0
            requirement += blocked_matmul(mm, member)
        outside: list[tuple[int, IntArray]] = []
        for table, k_pair in tables:
            j = int(where[table.account])
            xk = logm[:, slot[k_pair]]
            inside = table.covers(xk)
            xin = xk if inside.all() else np.where(inside, xk, table.lo)
            resources[:, j] += table.option_value(xin)
            requirement[:, j] = table.requirement(xin)
            if not inside.all():
                outside.append((table.account, np.flatnonzero(~inside)))
        exact = c.exact[where[c.exact] >= 0]
        if exact.size or outside:
            prices = book.prices0[None, :].repeat(n_s, axis=0)
            prices[:, b.columns] *= np.exp(b.x)
            if exact.size:
                ev = evaluate(select_accounts(book, exact), prices)
                resources[:, where[exact]] = ev.resources
                requirement[:, where[exact]] = ev.requirement
            for a, rows in outside:
                ev = evaluate(select_accounts(book, np.array([a])), prices[rows])
                resources[rows, where[a]] = ev.resources[:, 0]
                requirement[rows, where[a]] = ev.requirement[:, 0]
        return resources, requirement

    def figures(self, x: FloatArray, columns: IntArray) -> tuple[FloatArray, FloatArray]:
        """``(resources[S, A], requirement[S, A])`` in USD for log-returns ``x[S, C]``."""
        every = np.arange(self.book.n_accounts, dtype=np.int64)
        return self._compute(self._batch(x, columns, None, None), every)

    def below(self, x: FloatArray, columns: IntArray) -> BoolArray:
        """``health < 1`` per scenario and account ``[S, A]``: ``requirement > 0`` and ``resources <
        requirement`` (the test of ``evaluate(...).health < 1`` without the division), computed
        only for the accounts the screen cannot rule out (``below_active``)."""
        active, flags = self.below_active(x, columns)
        out = np.zeros((x.shape[0], self.book.n_accounts), dtype=np.bool_)
        out[:, active] = flags
        return out

    def below_active(
        self,
        x: FloatArray,
        columns: IntArray,
        x_lo: FloatArray | None = None,
        x_hi: FloatArray | None = None,
    ) -> tuple[IntArray, BoolArray]:
        """``below`` for the accounts the screen cannot rule out only: ``(accounts, flags[S, n])``
        (every other account is above 1 throughout). ``x_lo``/``x_hi``: bounds of ``x`` per column
        over the batch, when known. Calls on batches of one size reuse their temporaries: ``flags``
        is a ``Scratch`` array, overwritten by the next call."""
        b = self._batch(x, columns, x_lo, x_hi)
        n_s = x.shape[0]
        safe, positive = self._safe(b)
        active = np.flatnonzero(~safe).astype(np.int64)
        shape = (n_s, active.size)
        flags = self.scratch.get("flags", shape, np.bool_)
        if active.size:
            resources, requirement = self._compute(b, active, self.scratch)
            np.less(resources, requirement, out=flags)
            check = np.flatnonzero(~positive[active])
            if check.size:  # h < 1 needs a requirement: where it may be 0, test it too
                flags[:, check] &= requirement[:, check] > 0.0
        return active, flags


def health_kernel(
    book: Book, log_range: Callable[[int, int], tuple[float, float]], table_points: int = DEFAULT_POINTS
) -> HealthKernel:
    """Compile ``book`` (``risk.margin.kernel_build.compile_kernel``)."""
    return HealthKernel(compile_kernel(book, log_range, table_points))
