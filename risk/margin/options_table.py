"""An options account's margin figures tabulated along its one price multiplier (large batches).

When every non-USD position of an options-model account moves with one (factor, basis) pair and its
quote is USD, everything about the account that is not linear depends on the pair's multiplier
``m = (P_f / P0_f) (P_b / P0_b)`` only (implied vols at their marks: no vol shift):

- each grid point's PnL ``PnL_g(m)`` of ``risk.margin.options`` (smooth in ``m``), and so the
  requirement ``mm_factor * max(0, -min_g PnL_g) + contingency``;
- the options' value ``sum_o q_o (mark_o + (B76(U_o m) - B76(U_o)) size_o)`` (Black-76,
  ``risk.margin.valuation``).

``options_table(book, a, lo, hi)`` computes them exactly (with the engine's own code) on a grid
uniform in ``x = ln m`` from ``lo`` to ``hi``; between nodes each ``PnL_g`` is interpolated linearly
in ``x`` and the minimum over ``g`` is taken afterwards, so the kinks of the requirement (where the
worst grid point changes, or the worst PnL crosses 0) are kept exact: per interval only the lines on
the lower envelope of the ``G`` interpolants are stored (computed exactly, usually 1 to 3), which
gives the same minimum as interpolating all ``G`` of them. The option value is interpolated on a
grid 4 times finer. The error is second order in the step (``tests/unit/risk/test_margin_models.py``
bounds it against the exact evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.arrays import KIND_OPTION, MODEL_OPTIONS, Book, BoolArray, FloatArray, IntArray
from risk.margin.options_grid import pnl_table
from risk.margin.valuation import scenario_prices
from risk.subbook import select_accounts

__all__ = ["OptionsTable", "options_table", "single_pair"]

DEFAULT_POINTS = 2049
_VALUE_REFINE = 4
_W_SLACK = 1e-12


@dataclass(frozen=True, eq=False)
class OptionsTable:
    """Requirement and option value (USD) of account ``account`` as functions of ``x = ln m``."""

    account: int
    factor: int  # the pair's factor index
    basis: int  # the pair's basis index (``book.n_factors``: none)
    lo: float
    hi: float
    step: float  # 0 when lo == hi (a single node)
    env_left: FloatArray  # [C, I]: PnL of each envelope line at the interval's left node
    env_slope: FloatArray  # [C, I]: its change across the interval
    mm_factor: float
    contingency: float
    value_step: float
    value_nodes: FloatArray  # [V]: option value at lo + i * value_step
    req_nodes: FloatArray  # [I + 1]: the requirement at each node

    def bounds(self, x_lo: float, x_hi: float) -> tuple[float, float] | None:
        """``(least option value, greatest requirement)`` over ``[x_lo, x_hi]`` (``None`` when the
        table does not cover it): both interpolants take their extremes at nodes (the value is
        linear between its nodes; the requirement is a convex function of the linear PnLs
        between its nodes), so the nodes around the range bound them exactly."""
        if not (bool(self.covers(np.array([x_lo]))[0]) and bool(self.covers(np.array([x_hi]))[0])):
            return None
        out: list[float] = []
        pairs = ((self.value_nodes, self.value_step, np.min), (self.req_nodes, self.step, np.max))
        for nodes, step, pick in pairs:
            if step == 0.0:
                out.append(float(pick(nodes)))
                continue
            i = max(0, min(int(np.floor((x_lo - self.lo) / step)), nodes.shape[0] - 1))
            j = max(0, min(int(np.ceil((x_hi - self.lo) / step)), nodes.shape[0] - 1))
            out.append(float(pick(nodes[i : j + 1])))
        return out[0], out[1]

    def covers(self, x: FloatArray) -> BoolArray:
        """Where ``x`` lies within the table (elsewhere the caller evaluates exactly)."""
        tol = 1e-12 * max(1.0, abs(self.lo), abs(self.hi))
        out: BoolArray = (x >= self.lo - tol) & (x <= self.hi + tol)
        return out

    def requirement(self, x: FloatArray) -> FloatArray:
        """For ``x`` within the table (``covers``)."""
        if self.step == 0.0:
            worst = self.env_left[:, 0].min()
            return np.full(x.shape, self.mm_factor * max(0.0, -float(worst)) + self.contingency)
        i, w = _locate(x, self.lo, self.step, self.env_left.shape[1])
        pnl = self.env_left[0][i] + self.env_slope[0][i] * w
        for c in range(1, self.env_left.shape[0]):
            np.minimum(pnl, self.env_left[c][i] + self.env_slope[c][i] * w, out=pnl)
        np.negative(pnl, out=pnl)
        np.maximum(pnl, 0.0, out=pnl)
        pnl *= self.mm_factor
        pnl += self.contingency
        out: FloatArray = pnl
        return out

    def option_value(self, x: FloatArray) -> FloatArray:
        """For ``x`` within the table (``covers``)."""
        nodes = self.value_nodes
        if self.value_step == 0.0:
            return np.full(x.shape, float(nodes[0]))
        i, w = _locate(x, self.lo, self.value_step, nodes.shape[0] - 1)
        left = nodes[i]
        out: FloatArray = left + (nodes[i + 1] - left) * w
        return out


def _locate(x: FloatArray, lo: float, step: float, intervals: int) -> tuple[IntArray, FloatArray]:
    """Interval index and position within it (``x`` at or after ``lo``, to rounding)."""
    t = x - lo
    t *= 1.0 / step
    np.maximum(t, 0.0, out=t)
    i = t.astype(np.int64)
    np.minimum(i, intervals - 1, out=i)
    t -= i
    return i, t


def single_pair(book: Book, a: int) -> tuple[int, int] | None:
    """The (factor, basis) pair every non-USD position of options account ``a`` moves with, when
    there is exactly one, the account's quote is USD and no option is written on USD."""
    if book.model[a] != MODEL_OPTIONS or book.quote_idx[a] != book.usd:
        return None
    mine = book.pos_account == a
    if (mine & (book.kind == KIND_OPTION) & (book.factor_idx == book.usd)).any():
        return None
    moving = mine & (book.factor_idx != book.usd)
    pairs = {(int(f), int(b)) for f, b in zip(book.factor_idx[moving], book.basis_idx[moving], strict=True)}
    if len(pairs) != 1:
        return None
    return next(iter(pairs))


def _envelope(left: FloatArray, right: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per interval (row), the lines ``left_g + (right_g - left_g) w`` that form the lower envelope
    over ``w`` in [0, 1]: walk from ``w = 0`` along the current minimum to the first crossing by a
    line falling faster, until none is left (at most ``G`` steps; rows padded with their last
    line). Returns those lines' left values and slopes, ``[C, I]``."""
    slope = right - left
    n_i = left.shape[0]
    rows = np.arange(n_i)
    tie = left <= left.min(axis=1)[:, None]
    cur = np.argmin(np.where(tie, slope, np.inf), axis=1)
    w_cur = np.zeros(n_i)
    chosen = [cur]
    active = np.ones(n_i, dtype=np.bool_)
    for _ in range(left.shape[1]):
        ds = slope[rows, cur][:, None] - slope
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (left - left[rows, cur][:, None]) / ds
        ok = active[:, None] & (ds > 0) & (w <= 1.0) & (w >= w_cur[:, None] - _W_SLACK)
        if not ok.any():
            break
        w = np.where(ok, w, np.inf)
        w_min = w.min(axis=1)
        has = np.isfinite(w_min)
        nxt = np.argmin(np.where(ok & (w <= w_min[:, None]), slope, np.inf), axis=1)
        cur = np.where(has, nxt, cur)
        w_cur = np.where(has, w_min, w_cur)
        active &= has
        chosen.append(cur)
    cand: IntArray = np.stack(chosen, axis=1).astype(np.int64)
    keep = [0] + [c for c in range(1, cand.shape[1]) if (cand[:, c] != cand[:, c - 1]).any()]
    cand = cand[:, keep]
    lines = np.take_along_axis(left, cand, axis=1).T, np.take_along_axis(slope, cand, axis=1).T
    return np.ascontiguousarray(lines[0]), np.ascontiguousarray(lines[1])


def options_table(
    book: Book, a: int, lo: float, hi: float, points: int = DEFAULT_POINTS
) -> OptionsTable | None:
    """Tabulate account ``a`` over ``x = ln m`` in ``[lo, hi]`` (``None`` when ``single_pair`` is
    ``None``: the account then needs the exact evaluation)."""
    pair = single_pair(book, a)
    if pair is None:
        return None
    f, b = pair
    sub = select_accounts(book, [a])
    n = points if hi > lo else 1
    x = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    prices = np.tile(book.prices0, (n, 1))
    prices[:, f] *= np.exp(x)  # the basis stays put: the multiplier is the product of both ratios
    pnl = pnl_table(sub, scenario_prices(sub, prices, None))[:, :, 0]  # [n, G]
    if n > 1:
        left, slope = _envelope(pnl[:-1], pnl[1:])
    else:
        left, slope = pnl[:1].T.copy(), np.zeros((pnl.shape[1], 1))

    n_v = (n - 1) * _VALUE_REFINE + 1 if n > 1 else 1
    xv = np.linspace(lo, hi, n_v) if n_v > 1 else np.array([lo])
    vprices = np.tile(book.prices0, (n_v, 1))
    vprices[:, f] *= np.exp(xv)
    opts = sub.kind == KIND_OPTION
    values = scenario_prices(sub, vprices, None).values[:, opts].sum(axis=1)
    return OptionsTable(
        account=a,
        factor=f,
        basis=b,
        lo=float(lo),
        hi=float(hi),
        step=(hi - lo) / (n - 1) if n > 1 else 0.0,
        env_left=left,
        env_slope=slope,
        mm_factor=float(book.mm_factor[a]),
        contingency=float(book.contingency[a]),
        value_step=(hi - lo) / (n_v - 1) if n_v > 1 else 0.0,
        value_nodes=values,
        req_nodes=float(book.mm_factor[a]) * np.maximum(0.0, -pnl.min(axis=1)) + float(book.contingency[a]),
    )
