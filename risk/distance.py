"""Distance to liquidation and the liquidation ladder (design section 4.3).

Paths
    A path moves prices as ``P(x) = P0 * exp(x * e)`` for a scalar ``x = ln(1 + m)`` (``m`` the
    relative move) and an exponent vector ``e[F]``: one factor alone (``e`` = unit vector, others
    fixed), or the market direction (``e = betas``: every factor moves with its beta to the driver,
    ``P_f = P0_f (1 + m)^beta_f``; reported with the driver's price). A path's reported ``price`` is
    that of its own factor (the driver for the market path).

Search (vectorized, no loop over scenarios)
    Every path and direction is scanned on a grid of ``x`` (down to ``m = -99.9%`` in 320 steps, up
    to ``m = +900%`` in 160 steps) with one ``evaluate`` call; for every account, the first grid
    point with ``h < 1`` brackets its liquidation move with the point before it; all brackets are
    then solved together by a vectorized Illinois method (modified regula falsi, in the price
    multiplier, on resources minus requirement) to a bracket narrower than 1e-13 in ``x`` (a
    relative price error below 1e-12). Work is limited to what can move: a path is scanned only for
    the accounts whose factors it moves (``risk.subbook.select_accounts``), and each solver step
    evaluates only the accounts being solved for. An
    account already below 1 at current prices has move 0. A liquidation closer than the grid step
    that recovers before the next point (possible only with options) is not seen.

Outputs
    ``DistanceToLiquidation`` per path: the smallest move down / up that brings CHF below 1 (the
    minimum over accounts of their first crossings), as positive magnitudes (``0.12`` = -12% / +12%),
    with the price and the account. ``LadderStep``s per path and direction: every account that
    liquidates within the range, in order of ``|move|``, with its signed move and price, the book's
    net USD delta of the accounts that are still alive after it (evaluated at that price,
    ``risk.exposure.usd_delta``; a liquidated account's positions are treated as closed) and the
    account's liquidation penalty at that price (``risk.margin.Evaluation.penalty``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from risk.arrays import Book, BoolArray, FloatArray
from risk.assessment import DistanceToLiquidation, LadderStep
from risk.exposure import usd_delta
from risk.margin import evaluate
from risk.model import FactorId
from risk.subbook import select_accounts

__all__ = [
    "LiquidationMoves",
    "Path",
    "account_liquidation_prices",
    "distances",
    "exposed_factors",
    "ladder",
    "liquidation_moves",
    "paths",
]

_DOWN = np.log1p(-0.999)
_UP = np.log(10.0)
_N_DOWN = 320
_N_UP = 160
_MAX_ITER = 100
_X_TOL = 1e-13
_DIRECTIONS: tuple[Literal["down"], Literal["up"]] = ("down", "up")


@dataclass(frozen=True, eq=False)
class Path:
    name: FactorId | Literal["market"]
    exponents: FloatArray  # [F]
    price_index: int  # factor whose price is reported


def exposed_factors(book: Book) -> list[int]:
    """Indices of the non-USD factors some position moves with (primary or basis), in book order."""
    used = set(book.factor_idx.tolist()) | set(book.basis_idx.tolist())
    return [i for i in range(book.n_factors) if i in used and i != book.usd]


def paths(book: Book) -> list[Path]:
    """One path per exposed factor, plus the market direction when the book has a driver."""
    out = []
    for i in exposed_factors(book):
        e = np.zeros(book.n_factors)
        e[i] = 1.0
        out.append(Path(name=book.factors[i], exponents=e, price_index=i))
    if book.driver >= 0 and book.n_accounts:
        out.append(Path(name="market", exponents=book.betas.copy(), price_index=book.driver))
    return out


@dataclass(frozen=True, eq=False)
class LiquidationMoves:
    """``x[P, 2, A]`` (log move, NaN when the account never liquidates on that side), ``move``
    (relative, signed) and ``price`` (the path's reported price) of the same shape; direction 0 is
    down, 1 is up."""

    paths: tuple[Path, ...]
    x: FloatArray
    move: FloatArray
    price: FloatArray

    def prices_at(self, book: Book, p: int, x: float) -> FloatArray:
        out: FloatArray = book.prices0 * np.exp(x * self.paths[p].exponents)
        return out


def _grid() -> tuple[FloatArray, FloatArray]:
    down: FloatArray = np.linspace(0.0, _DOWN, _N_DOWN + 1)[1:]
    up: FloatArray = np.linspace(0.0, _UP, _N_UP + 1)[1:]
    return down, up


def _touched(book: Book, expo: FloatArray) -> BoolArray:
    """``[P, A]``: the path moves a factor the account's positions or quote move with (elsewhere its
    health stays what it is now)."""
    uses = np.zeros((book.n_accounts, book.n_factors + 1), dtype=np.bool_)
    uses[book.pos_account, book.factor_idx] = True
    uses[book.pos_account, book.basis_idx] = True
    uses[np.arange(book.n_accounts), book.quote_idx] = True
    moving = expo != 0.0  # [P, F]
    out: BoolArray = (moving.astype(np.int64) @ uses[:, :-1].T.astype(np.int64)) > 0
    return out


def liquidation_moves(book: Book, path_list: list[Path]) -> LiquidationMoves:
    n_p, n_a = len(path_list), book.n_accounts
    x_out = np.full((n_p, 2, n_a), np.nan)
    if n_p == 0 or n_a == 0:
        return LiquidationMoves(tuple(path_list), x_out, x_out.copy(), x_out.copy())
    expo = np.stack([p.exponents for p in path_list])  # [P, F]
    h0 = evaluate(book, book.prices0[None, :]).health[0]
    already = h0 < 1.0
    touched = _touched(book, expo)
    down, up = _grid()
    xs = np.concatenate([down, up])
    n_down, n_k = down.shape[0], xs.shape[0]
    below = np.zeros((n_p, n_k, n_a), dtype=np.bool_)
    # one evaluate per set of accounts that the same paths move, on those paths' grids only
    groups: dict[bytes, list[int]] = {}
    for a in range(n_a):
        groups.setdefault(touched[:, a].tobytes(), []).append(a)
    for members in groups.values():
        accts = np.asarray(members, dtype=np.int64)
        moved = np.flatnonzero(touched[:, accts[0]])
        if moved.size == 0:
            continue
        sub = select_accounts(book, accts)
        prices = book.prices0[None, None, :] * np.exp(xs[None, :, None] * expo[moved][:, None, :])
        h = evaluate(sub, prices.reshape(-1, book.n_factors)).health.reshape(moved.size, n_k, accts.size)
        below[np.ix_(moved, np.arange(n_k), accts)] = h < 1.0
    found: list[tuple[npt.NDArray[Any], ...]] = []
    for d, part in enumerate((below[:, :n_down], below[:, n_down:])):
        grid = xs[:n_down] if d == 0 else xs[n_down:]
        first = part.argmax(axis=1)  # [P, A]
        pi, ai = np.nonzero(part.any(axis=1) & ~already[None, :])
        k = first[pi, ai]
        lo = np.where(k > 0, grid[np.maximum(k - 1, 0)], 0.0)
        found.append((pi, np.full(pi.shape, d), ai, lo, grid[k]))
    pi, di, ai, lo_b, hi_b = (np.concatenate(parts) for parts in zip(*found, strict=True))
    pi, di, ai = pi.astype(np.int64), di.astype(np.int64), ai.astype(np.int64)
    x_out[pi, di, ai] = _solve(book, expo[pi], ai, lo_b, hi_b)
    x_out[:, :, already] = 0.0
    move = np.expm1(x_out)
    ref = np.array([p.price_index for p in path_list])
    price = book.prices0[ref][:, None, None] * np.exp(x_out * expo[np.arange(n_p), ref][:, None, None])
    return LiquidationMoves(tuple(path_list), x_out, move, price)


def _margin(book: Book, expo: FloatArray, acct: npt.NDArray[np.int64], x: FloatArray) -> FloatArray:
    """``resources - requirement`` of each bracket's account at its ``x`` (negative exactly when
    ``h < 1``; an account with no requirement gets ``max(|resources|, 1)``: never liquidated)."""
    prices = book.prices0[None, :] * np.exp(x[:, None] * expo)
    accts, local = np.unique(acct, return_inverse=True)
    ev = evaluate(select_accounts(book, accts), prices)
    rows = np.arange(x.shape[0])
    res = ev.resources[rows, local.reshape(-1)]
    req = ev.requirement[rows, local.reshape(-1)]
    out: FloatArray = np.where(req > 0, res - req, np.maximum(np.abs(res), 1.0))
    return out


def _solve(
    book: Book, expo: FloatArray, acct: npt.NDArray[np.int64], lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """Vectorized Illinois (modified regula falsi) on ``g = resources - requirement`` (``_margin``)
    over brackets with ``g(lo) >= 0 > g(hi)``, interpolating in the price multiplier ``e^x`` (where
    a lending account's ``g`` on one factor, or a perp's within a tier, is linear: the first step
    lands on the root). A step never comes closer than ``_X_TOL / 2`` to an end of its bracket, so
    once the root is found the next evaluation closes the bracket on its other side. Stops when
    every bracket is narrower than ``_X_TOL`` in ``x`` (a relative price error below 1e-12)."""
    lo, hi = lo.copy(), hi.copy()
    if lo.size == 0:
        return lo
    both = _margin(book, np.concatenate([expo, expo]), np.concatenate([acct, acct]), np.concatenate([lo, hi]))
    f_lo, f_hi = both[: lo.size], both[lo.size :]
    side = np.zeros(lo.shape, dtype=np.int64)  # last side moved: -1 lo, +1 hi
    for _ in range(_MAX_ITER):
        active = np.abs(hi - lo) > _X_TOL
        if not active.any():
            break
        a = np.flatnonzero(active)
        xl, xh, flo, fhi = lo[a], hi[a], f_lo[a], f_hi[a]
        ml, mh = np.exp(xl), np.exp(xh)
        usable = np.isfinite(flo) & np.isfinite(fhi) & (flo != fhi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            m = mh - fhi * (mh - ml) / (fhi - flo)
            x = np.log(m)
        x = np.where(usable & np.isfinite(x), x, 0.5 * (xl + xh))
        # keep at least _X_TOL / 2 away from both ends (ends may be in either order)
        left, right = np.minimum(xl, xh), np.maximum(xl, xh)
        half = 0.5 * _X_TOL
        x = np.clip(x, left + half, right - half)
        x = np.where(right - left <= _X_TOL * 1.5, 0.5 * (left + right), x)
        fx = _margin(book, expo[a], acct[a], x)
        liquid = fx < 0.0
        # Illinois: when the same end stays twice, halve the other end's value
        stay_lo = liquid & (side[a] == 1)
        stay_hi = ~liquid & (side[a] == -1)
        f_lo[a] = np.where(stay_lo, 0.5 * f_lo[a], f_lo[a])
        f_hi[a] = np.where(stay_hi, 0.5 * f_hi[a], f_hi[a])
        hi[a] = np.where(liquid, x, hi[a])
        f_hi[a] = np.where(liquid, fx, f_hi[a])
        lo[a] = np.where(liquid, lo[a], x)
        f_lo[a] = np.where(liquid, f_lo[a], fx)
        side[a] = np.where(liquid, 1, -1)
    out: FloatArray = 0.5 * (lo + hi)
    return out


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else value


def distances(book: Book, lm: LiquidationMoves) -> tuple[DistanceToLiquidation, ...]:
    out = []
    for p, path in enumerate(lm.paths):
        found: list[tuple[float | None, float | None, str | None]] = []
        for d in range(2):
            xs = np.abs(lm.x[p, d])
            if np.all(np.isnan(xs)):
                found.append((None, None, None))
                continue
            a = int(np.nanargmin(xs))
            found.append((abs(float(lm.move[p, d, a])), float(lm.price[p, d, a]), book.account_keys[a]))
        (dn, dn_px, dn_acc), (up, up_px, up_acc) = found
        out.append(
            DistanceToLiquidation(
                factor=path.name,
                down=dn,
                up=up,
                down_price=dn_px,
                up_price=up_px,
                down_account=dn_acc,
                up_account=up_acc,
            )
        )
    return tuple(out)


def ladder(book: Book, lm: LiquidationMoves) -> tuple[LadderStep, ...]:
    """Every liquidation on every path and side, in order of ``|move|`` (see the module docstring)."""
    entries: list[tuple[int, int, npt.NDArray[np.int64]]] = []
    scenario_prices: list[FloatArray] = []
    for p in range(len(lm.paths)):
        for d in range(2):
            hit = np.flatnonzero(~np.isnan(lm.x[p, d]))
            if hit.size == 0:
                continue
            order = hit[np.argsort(np.abs(lm.x[p, d, hit]), kind="stable")]
            entries.append((p, d, order))
            scenario_prices.extend(lm.prices_at(book, p, float(lm.x[p, d, a])) for a in order)
    if not scenario_prices:
        return ()
    prices = np.stack(scenario_prices)
    deltas = usd_delta(book, prices)  # [S, A, F]
    penalty = evaluate(book, prices).penalty  # [S, A]
    exposed = exposed_factors(book)
    steps: list[LadderStep] = []
    s = 0
    for p, d, order in entries:
        alive = np.ones(book.n_accounts, dtype=bool)
        for a in order:
            alive[a] = False
            left = deltas[s][alive].sum(axis=0)
            steps.append(
                LadderStep(
                    factor=lm.paths[p].name,
                    direction=_DIRECTIONS[d],
                    move=float(lm.move[p, d, a]),
                    price=float(lm.price[p, d, a]),
                    account_key=book.account_keys[a],
                    exposure_left_usd={book.factors[f]: float(left[f]) for f in exposed},
                    penalty_usd=float(penalty[s, a]),
                )
            )
            s += 1
    return tuple(steps)


def account_liquidation_prices(book: Book, lm: LiquidationMoves) -> list[dict[FactorId, float | None]]:
    """Per account: for every single factor its positions move with, the price at which it
    liquidates with the others fixed (the nearer side in ``|ln move|``; ``None``: neither side
    within range)."""
    out: list[dict[FactorId, float | None]] = [{} for _ in range(book.n_accounts)]
    for a in range(book.n_accounts):
        mine = book.pos_account == a
        used = set(book.factor_idx[mine].tolist()) | set(book.basis_idx[mine].tolist())
        for p, path in enumerate(lm.paths):
            if path.name == "market" or path.price_index not in used:
                continue
            xs = np.abs(lm.x[p, :, a])
            if np.all(np.isnan(xs)):
                out[a][path.name] = None
            else:
                d = int(np.nanargmin(xs))
                out[a][path.name] = _opt(float(lm.price[p, d, a]))
    return out
