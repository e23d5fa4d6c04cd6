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

Every (path, step) scenario goes through ``risk.margin.evaluate`` (vectorized, in chunks of paths so
memory stays bounded). First passage: an account is liquidated on a path if its health is below 1 at
ANY step; the portfolio is liquidated if any account is (CHF < 1). Standard errors are binomial,
``sqrt(p (1 - p) / N)``. The expected liquidation penalty is the mean over paths of the sum over
accounts of the penalty ``risk.margin`` reports at the account's first liquidating step (lending:
close factor x debt x liquidation bonus; perps and options: penalty rate x notional).

Reproducibility: the normal draws and the chi-square draws come from two streams spawned from
``SeedSequence(seed)``, so the result depends on the seed only (not on the chunk size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from risk.arrays import Book, FloatArray
from risk.errors import RiskInputError
from risk.margin import evaluate
from risk.model import MarketState
from risk.params import RiskParams

__all__ = ["DEFAULT_CHUNK_SCENARIOS", "MonteCarloResult", "p_liq", "step_factor"]

HOURS_PER_YEAR = 365.0 * 24.0
DEFAULT_CHUNK_SCENARIOS = 49_152
"""Scenarios (paths x steps) evaluated at once: bounds the memory of one chunk to a few tens of MB."""


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
    log_p0 = np.log(book.prices0)
    z_stream, w_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(seed_value).spawn(2))

    liq_any = 0
    liq_acc = np.zeros(n_acc, dtype=np.int64)
    pen_acc = np.zeros(n_acc)
    per_chunk = max(1, chunk_scenarios // n_steps)
    done = 0
    while done < n_paths and n_acc:
        n = min(per_chunk, n_paths - done)
        z = z_stream.standard_normal((n, n_steps, live.size))
        if student:
            w = w_stream.chisquare(df, size=(n, n_steps, 1))
            z *= np.sqrt((df - 2.0) / w)
        log_prices = np.broadcast_to(log_p0, (n, n_steps, book.n_factors)).copy()
        if live.size:
            log_prices[:, :, live] += np.cumsum(z @ chol.T, axis=1)
        ev = evaluate(book, np.exp(log_prices).reshape(n * n_steps, book.n_factors))
        below: npt.NDArray[np.bool_] = np.asarray(ev.health < 1.0).reshape(n, n_steps, n_acc)
        hit: npt.NDArray[np.bool_] = np.any(below, axis=1)  # [n, A]
        liq_any += int(np.any(hit, axis=1).sum())
        liq_acc += hit.sum(axis=0)
        first = below.argmax(axis=1)  # first liquidating step per path and account
        penalty = ev.penalty.reshape(n, n_steps, n_acc)
        at_first = np.take_along_axis(penalty, first[:, None, :], axis=1)[:, 0, :]
        pen_acc += np.where(hit, at_first, 0.0).sum(axis=0)
        done += n

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
