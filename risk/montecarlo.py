"""Probability of liquidation ``p_liq(T)`` by Monte Carlo (design section 4.5).

What is read from where
-----------------------
* the book (``risk.arrays.Book``): factors, current prices ``prices0``, vols;
* the market (``risk.model.MarketState``): the correlation between factors (a factor the market does
  not know is uncorrelated with the others);
* ``RiskParams``: ``mc_paths`` (N), ``mc_steps`` (K), ``horizon_hours`` (T), ``mc_distribution`` and
  ``student_t_df``.

Model
-----
Log prices follow a driftless random walk in K equal steps of ``dt = T / K`` (in years of 365 days):
``ln P_{k+1} = ln P_k + L z_k`` with ``L`` the Cholesky factor of ``corr * sigma sigma' * dt`` over the
factors with a positive vol (USD and zero-vol factors stay put) and ``z_k`` either standard normal or
multivariate Student-t with ``df`` degrees of freedom scaled to unit variance
(``z = n * sqrt((df - 2) / w)``, ``w ~ chi2(df)`` shared by the factors of one step). Implied vols
stay at their marks.

Every (path, step) scenario is checked for ``h < 1`` by ``risk.margin.kernel`` (the margin models of
``risk.margin.evaluate`` compiled for batches of log-returns: the same figures, to rounding and to
the options tables' interpolation, 1e-5 of an options account's requirement at most; accounts the
chunk's price range cannot bring below 1 are skipped), in chunks of paths so memory stays bounded.
``tests/unit/risk/test_kernel.py`` checks that ``p_liq`` equals the count done with ``evaluate``.
First passage: an account is liquidated on a path if its health is below 1 at ANY step; the
portfolio is liquidated if any account is (CHF < 1). Standard errors are binomial,
``sqrt(p (1 - p) / N)``. The expected liquidation penalty is the mean over paths of the sum over
accounts of the penalty ``risk.margin.evaluate`` reports at the account's first liquidating step
(lending: close factor x debt x liquidation bonus; perps and options: penalty rate x notional),
evaluated on those scenarios only.

Options tables (``risk.margin.options_table``) span +-8 standard deviations of the pair's
log-multiplier over the horizon on 1025 nodes; scenarios beyond are evaluated exactly.

Reproducibility: the normal draws and the chi-square draws come from two streams spawned from
``SeedSequence(seed)``, so the result depends on the seed only (not on the chunk size). The paths
(cumulative log-returns) depend on the seed, the sizes, the distribution and the per-step covariance
only, not on prices or positions: the last two sets (up to 64 MB each) are kept in memory and reused
when another book is assessed against the same market state (``clear_path_cache`` forgets them).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from risk.arrays import Book, FloatArray
from risk.errors import RiskInputError
from risk.margin import evaluate
from risk.margin.blas import blocked_matmul, column_extremes
from risk.margin.kernel import health_kernel
from risk.model import MarketState
from risk.params import RiskParams
from risk.subbook import select_accounts

__all__ = ["DEFAULT_CHUNK_SCENARIOS", "MonteCarloResult", "clear_path_cache", "p_liq", "step_factor"]

HOURS_PER_YEAR = 365.0 * 24.0
DEFAULT_CHUNK_SCENARIOS = 49_152
"""Scenarios (paths x steps) evaluated at once: bounds the memory of one chunk to a few tens of MB."""
_TABLE_SDS = 8.0
_TABLE_POINTS = 1025


@dataclass(frozen=True, slots=True)
class MonteCarloResult:
    """``p_liq`` of the portfolio (CHF < 1 at any step) and per account, with binomial standard
    errors, and the expected liquidation penalty in USD (portfolio and per account)."""

    p_liq: float
    stderr: float
    account_p_liq: Mapping[str, float]
    account_stderr: Mapping[str, float]
    expected_penalty_usd: float
    account_expected_penalty_usd: Mapping[str, float]
    paths: int
    steps: int
    horizon_hours: float
    distribution: str
    seed: int


def _stderr(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n > 0 else math.nan


def step_factor(book: Book, market: MarketState, dt_years: float) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """(indices of the simulated factors, ``L`` with ``L L' = corr * sigma sigma' * dt``)."""
    live = np.flatnonzero(book.vols > 0)
    n = live.size
    corr = np.eye(n)
    m_index = {f: i for i, f in enumerate(market.factors)}
    pos = [m_index.get(book.factors[j]) for j in live]
    for a in range(n):
        for b in range(n):
            pa, pb = pos[a], pos[b]
            if a != b and pa is not None and pb is not None:
                corr[a, b] = float(market.correlation[pa, pb])
    sigma = book.vols[live] * math.sqrt(dt_years)
    cov = corr * np.outer(sigma, sigma)
    try:
        chol: FloatArray = np.asarray(np.linalg.cholesky(cov), dtype=np.float64)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        if vals.min() < -1e-8 * max(1.0, float(vals.max())):
            raise RiskInputError("Monte Carlo: the factor covariance is not positive semi-definite") from None
        chol = np.asarray(vecs * np.sqrt(np.maximum(vals, 0.0)), dtype=np.float64)
    return live.astype(np.int64), chol


def _pair_log_range(
    live: npt.NDArray[np.int64], chol: FloatArray, n_steps: int
) -> Callable[[int, int], tuple[float, float]]:
    """``log_range(factor, basis)`` for the options tables of ``risk.margin.kernel``: +-``_TABLE_SDS``
    standard deviations of the pair's log-multiplier over the horizon (scenarios beyond are
    evaluated exactly), from the per-step covariance ``chol chol'``."""
    cov = chol @ chol.T * n_steps
    col = {int(f): i for i, f in enumerate(live)}

    def log_range(f: int, b: int) -> tuple[float, float]:
        e = np.zeros(live.size)
        for g in (f, b):
            if g in col:
                e[col[g]] += 1.0
        sd = math.sqrt(max(float(e @ cov @ e), 0.0))
        return -_TABLE_SDS * sd, _TABLE_SDS * sd

    return log_range


@dataclass(frozen=True, eq=False)
class _PathSpec:
    seed: int
    n_paths: int
    n_steps: int
    chol: FloatArray
    student: bool
    df: float
    per_chunk: int

    def key(self) -> tuple[object, ...]:
        df = self.df if self.student else 0.0
        c = self.chol
        return (self.seed, self.n_paths, self.n_steps, c.shape, c.tobytes(), self.student, df, self.per_chunk)


@dataclass(frozen=True, eq=False)
class _Chunk:
    """Cumulative log-returns ``x[steps, paths of the chunk, live factors]`` (step-major: the
    chunk's scenarios are rows ``step * n + path``) and their least and greatest value per factor."""

    x: FloatArray
    lo: FloatArray
    hi: FloatArray


def _log_paths(spec: _PathSpec) -> Iterator[_Chunk]:
    """The paths, chunk by chunk. Draws: standard normals ``[path, step, factor]`` from the first
    stream spawned from ``SeedSequence(seed)``, chi-square ``[path, step]`` from the second, path
    after path, so the numbers do not depend on ``per_chunk``; the running sum over steps is
    sequential (as ``np.cumsum``)."""
    z_stream, w_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(2))
    n_live, n_steps = spec.chol.shape[0], spec.n_steps
    done = 0
    while done < spec.n_paths:
        n = min(spec.per_chunk, spec.n_paths - done)
        z = z_stream.standard_normal((n, n_steps, n_live))
        if spec.student:
            w = w_stream.chisquare(spec.df, size=(n, n_steps, 1))
            z *= np.sqrt((spec.df - 2.0) / w)
        inc = blocked_matmul(z.reshape(n * n_steps, n_live), spec.chol.T).reshape(n, n_steps, n_live)
        x = np.ascontiguousarray(inc.transpose(1, 0, 2))
        for k in range(1, n_steps):
            np.add(x[k], x[k - 1], out=x[k])
        lo, hi = column_extremes(x.reshape(n_steps * n, n_live))
        yield _Chunk(x, lo, hi)
        done += n


_PATH_CACHE: OrderedDict[tuple[object, ...], list[_Chunk]] = OrderedDict()
_PATH_CACHE_LOCK = threading.Lock()
_PATH_CACHE_ENTRIES = 2
_PATH_CACHE_MAX_FLOATS = 8_000_000  # 64 MB per entry; larger runs are generated chunk by chunk


def _cached_log_paths(spec: _PathSpec) -> Iterator[_Chunk]:
    """``_log_paths`` with a small LRU cache: the paths depend only on the seed, the sizes, the
    distribution and the per-step covariance (not on prices nor on the book), so assessing many
    books against one market state draws them once. Runs above ``_PATH_CACHE_MAX_FLOATS`` are not
    kept: their chunks are generated one at a time, so memory stays bounded. The cached arrays are
    read-only; the cache is shared by threads (under a lock)."""
    key = spec.key()
    with _PATH_CACHE_LOCK:
        hit = _PATH_CACHE.get(key)
        if hit is not None:
            _PATH_CACHE.move_to_end(key)
    if hit is not None:
        yield from hit
        return
    if spec.n_paths * spec.n_steps * max(1, spec.chol.shape[0]) > _PATH_CACHE_MAX_FLOATS:
        yield from _log_paths(spec)
        return
    chunks = list(_log_paths(spec))
    for chunk in chunks:
        chunk.x.flags.writeable = False
    with _PATH_CACHE_LOCK:
        _PATH_CACHE[key] = chunks
        while len(_PATH_CACHE) > _PATH_CACHE_ENTRIES:
            _PATH_CACHE.popitem(last=False)
    yield from chunks


def clear_path_cache() -> None:
    """Forget the cached Monte Carlo paths (benchmarks measure the cold case with it)."""
    with _PATH_CACHE_LOCK:
        _PATH_CACHE.clear()


def p_liq(
    book: Book,
    market: MarketState,
    params: RiskParams,
    *,
    seed: int | None = None,
    paths: int | None = None,
    chunk_scenarios: int = DEFAULT_CHUNK_SCENARIOS,
) -> MonteCarloResult:
    """Monte Carlo first-passage probability of liquidation over ``params.horizon_hours``."""
    n_paths = params.mc_paths if paths is None else paths
    n_steps = params.mc_steps
    seed_value = params.mc_seed if seed is None else seed
    if n_paths <= 0 or n_steps <= 0 or params.horizon_hours <= 0:
        raise RiskInputError("Monte Carlo needs paths > 0, steps > 0 and a positive horizon")
    student = params.mc_distribution == "student_t"
    df = params.student_t_df
    if student and not df > 2:
        raise RiskInputError(f"Student-t needs df > 2 for a finite variance, got {df}")

    keys = book.account_keys
    n_acc = len(keys)
    dt = params.horizon_hours / HOURS_PER_YEAR / n_steps
    live, chol = step_factor(book, market, dt)

    liq_any = 0
    liq_acc = np.zeros(n_acc, dtype=np.int64)
    pen_acc = np.zeros(n_acc)
    if n_acc:
        kernel = health_kernel(book, _pair_log_range(live, chol, n_steps), _TABLE_POINTS)
        per_chunk = max(1, chunk_scenarios // n_steps)
        spec = _PathSpec(seed_value, n_paths, n_steps, chol, student, df, per_chunk)
        hit_acct: list[npt.NDArray[np.int64]] = []
        hit_x: list[FloatArray] = []
        for chunk in _cached_log_paths(spec):
            n = chunk.x.shape[1]
            flat = chunk.x.reshape(n_steps * n, live.size)
            active, flags = kernel.below_active(flat, live, chunk.lo, chunk.hi)
            if active.size == 0:
                continue
            below = flags.reshape(n_steps, n, active.size)
            hit = np.logical_or.reduce(below, axis=0)  # [n, active]: first passage, any step
            liq_any += int(np.count_nonzero(hit.any(axis=1)))
            liq_acc[active] += np.count_nonzero(hit, axis=0)
            path_i, col = np.nonzero(hit)
            first = below[:, path_i, col].argmax(axis=0)  # the first liquidating step
            hit_acct.append(active[col])
            hit_x.append(chunk.x[first, path_i])
        if hit_acct:
            pen_acc = _first_penalties(book, live, np.concatenate(hit_acct), np.concatenate(hit_x))

    p = liq_any / n_paths
    acc_p = liq_acc / n_paths
    return MonteCarloResult(
        p_liq=p,
        stderr=_stderr(p, n_paths),
        account_p_liq={k: float(acc_p[i]) for i, k in enumerate(keys)},
        account_stderr={k: _stderr(float(acc_p[i]), n_paths) for i, k in enumerate(keys)},
        expected_penalty_usd=float(pen_acc.sum() / n_paths),
        account_expected_penalty_usd={k: float(pen_acc[i] / n_paths) for i, k in enumerate(keys)},
        paths=n_paths,
        steps=n_steps,
        horizon_hours=params.horizon_hours,
        distribution=params.mc_distribution,
        seed=seed_value,
    )


def _first_penalties(
    book: Book, live: npt.NDArray[np.int64], acct: npt.NDArray[np.int64], x: FloatArray
) -> FloatArray:
    """Per account, the sum of the penalties ``risk.margin.evaluate`` reports at each liquidation's
    scenario (account ``acct[i]`` at log-returns ``x[i]``; exact, on those scenarios only)."""
    out = np.zeros(book.n_accounts)
    if acct.size == 0:
        return out
    accounts = np.unique(acct)
    prices = np.repeat(book.prices0[None, :], acct.size, axis=0)
    prices[:, live] *= np.exp(x)
    penalty = evaluate(select_accounts(book, accounts), prices).penalty
    np.add.at(out, acct, penalty[np.arange(acct.size), np.searchsorted(accounts, acct)])
    return out
