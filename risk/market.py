"""Market state: factor vols and correlations from price history (EWMA) or from defaults.

What is read from where
-----------------------
* current prices: the caller's mapping (the scan's oracle/mark prices, or a portfolio file);
* history: an array ``[days, factors]`` of daily closes in USD, oldest row first, ``NaN`` where a
  factor has no price that day (a factor listed later simply has leading ``NaN``);
* defaults: ``RiskParams.default_vols`` / ``default_correlation`` / ``factor_groups`` / ``vol_floor``
  (``config/risk.toml``), used for every vol and every pair with fewer than ``min_history_days``
  daily returns in common;
* explicit inputs: vols and an optional correlation (portfolio file, what-if), which take precedence.

Formulas
--------
* daily log returns ``r_t = ln(P_t / P_{t-1})``;
* EWMA (RiskMetrics, zero mean): ``cov_ij = sum_t w_t r_it r_jt / sum_t w_t`` with
  ``w_t = (1 - lambda) lambda^age_t`` over the days both factors have a return; annualized x 365
  (crypto trades every day);
* defaults: vol from ``default_vols`` (a factor without one gets the largest crypto default and a
  warning); correlation ``default_correlation`` between crypto factors (members of the ``crypto``
  group, or any non-basis factor that belongs to no group), 0 for basis factors (``stETH/ETH``,
  ``USDC/USD``: names with a ``/``) and for ``USD``;
* vol floor: crypto factors never get a vol below ``vol_floor`` (basis factors and USD are exempt);
* nearest PSD: Higham's alternating projections with Dykstra's correction (Higham 2002, *Computing
  the nearest correlation matrix*) on the correlation matrix;
* betas to the driver: ``beta_i = cov_i,driver / var_driver``.

A matrix that is not a covariance at all (NaN, asymmetric beyond tolerance, negative variance,
correlation outside [-1, 1], or an eigenvalue below ``-PSD_REPAIR_TOLERANCE``) is a
``RiskInputError`` naming the matrix; a small negative eigenvalue (rounding) is repaired with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from risk.errors import RiskInputError
from risk.model import USD, FactorId, MarketState
from risk.params import RiskParams

__all__ = [
    "PSD_REPAIR_TOLERANCE",
    "MarketEstimate",
    "default_correlation",
    "estimate_market",
    "ewma_covariance",
    "is_basis",
    "nearest_correlation",
    "validate_correlation",
]

FloatArray = npt.NDArray[np.float64]
DAYS_PER_YEAR = 365.0
PSD_REPAIR_TOLERANCE = 1e-2
"""Most negative eigenvalue of a *given* correlation matrix still treated as rounding and repaired."""
_SYMMETRY_TOLERANCE = 1e-8
_MIN_EIGENVALUE = 1e-10  # the repaired matrix is made strictly positive definite by this margin


@dataclass(frozen=True, slots=True)
class MarketEstimate:
    """The market state plus what the estimate had to do: warnings and days of history per factor."""

    state: MarketState
    warnings: tuple[str, ...]
    history_days: Mapping[FactorId, int]


def is_basis(factor: FactorId) -> bool:
    """Basis factors (multiplicative spreads such as ``stETH/ETH``, ``USDC/USD``) have a slash."""
    return "/" in factor


def _is_crypto(factor: FactorId, params: RiskParams) -> bool:
    if factor == USD or is_basis(factor):
        return False
    crypto = params.factor_groups.get("crypto")
    if crypto is not None and factor in crypto:
        return True
    grouped = {f for members in params.factor_groups.values() for f in members}
    return factor not in grouped


def ewma_covariance(history: npt.ArrayLike, lam: float) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Daily EWMA covariance of log returns and the number of common returns per pair.

    ``history`` is ``[days, factors]`` of prices, oldest first, ``NaN`` for missing days.
    """
    prices = np.asarray(history, dtype=np.float64)
    if prices.ndim != 2:
        raise RiskInputError(f"price history must be [days, factors], got shape {prices.shape}")
    if not 0.0 < lam < 1.0:
        raise RiskInputError(f"EWMA lambda must be in (0, 1), got {lam}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.any(prices[np.isfinite(prices)] <= 0):
            raise RiskInputError("price history holds a non-positive price")
        returns = np.diff(np.log(prices), axis=0)
    n_days, n_f = returns.shape
    if n_days == 0:
        return np.zeros((n_f, n_f)), np.zeros((n_f, n_f), dtype=np.int64)
    mask = np.isfinite(returns).astype(np.float64)
    r0 = np.where(mask > 0, returns, 0.0)
    age = np.arange(n_days - 1, -1, -1, dtype=np.float64)
    w = (1.0 - lam) * lam**age
    num = (r0 * w[:, None]).T @ r0
    den = (mask * w[:, None]).T @ mask
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(den > 0, num / den, 0.0)
    counts = (mask.T @ mask).round().astype(np.int64)
    return cov, counts


def default_correlation(factors: Sequence[FactorId], params: RiskParams) -> FloatArray:
    """``default_correlation`` between crypto factors, 0 elsewhere, 1 on the diagonal."""
    crypto = np.array([_is_crypto(f, params) for f in factors], dtype=bool)
    corr = np.where(np.outer(crypto, crypto), params.default_correlation, 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def validate_correlation(matrix: npt.ArrayLike, factors: Sequence[FactorId], name: str) -> FloatArray:
    """Check that ``matrix`` is a correlation matrix over ``factors``; raise naming ``name`` if not.

    Returns the symmetrized matrix. Positive semi-definiteness is *not* checked here (see
    ``nearest_correlation``).
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = len(factors)
    if m.shape != (n, n):
        raise RiskInputError(f"{name}: shape {m.shape}, expected {(n, n)} for factors {list(factors)}")
    bad = np.argwhere(~np.isfinite(m))
    if bad.size:
        i, j = bad[0]
        raise RiskInputError(f"{name}: not a number at ({factors[i]}, {factors[j]})")
    scale = max(1.0, float(np.max(np.abs(m))))
    asym = np.abs(m - m.T)
    if float(asym.max()) > _SYMMETRY_TOLERANCE * scale:
        i, j = (int(x) for x in np.unravel_index(int(np.argmax(asym)), asym.shape))
        raise RiskInputError(
            f"{name}: not symmetric at ({factors[i]}, {factors[j]}): {m[i, j]} vs {m[j, i]}"
        )
    diag = np.diag(m)
    for k, value in enumerate(diag):
        if value < 0:
            raise RiskInputError(f"{name}: negative variance {value} for {factors[k]}")
        if abs(value - 1.0) > 1e-9:
            raise RiskInputError(f"{name}: diagonal must be 1, got {value} for {factors[k]}")
    if float(np.max(np.abs(m))) > 1.0 + 1e-9:
        i, j = (int(x) for x in np.unravel_index(int(np.argmax(np.abs(m))), m.shape))
        raise RiskInputError(
            f"{name}: correlation {m[i, j]} of ({factors[i]}, {factors[j]}) is outside [-1, 1]"
        )
    sym: FloatArray = 0.5 * (m + m.T)
    return sym


def covariance_to_correlation(
    cov: npt.ArrayLike, factors: Sequence[FactorId], name: str
) -> tuple[FloatArray, FloatArray]:
    """Split a covariance into (annualized vols as given, correlation); raise naming ``name`` if the
    matrix is not a covariance (NaN, asymmetric, negative variance)."""
    c = np.asarray(cov, dtype=np.float64)
    n = len(factors)
    if c.shape != (n, n):
        raise RiskInputError(f"{name}: shape {c.shape}, expected {(n, n)} for factors {list(factors)}")
    bad = np.argwhere(~np.isfinite(c))
    if bad.size:
        i, j = bad[0]
        raise RiskInputError(f"{name}: not a number at ({factors[i]}, {factors[j]})")
    diag = np.diag(c)
    for k, value in enumerate(diag):
        if value < 0:
            raise RiskInputError(f"{name}: negative variance {value} for {factors[k]}")
    sd = np.sqrt(diag)
    safe = np.where(sd > 0, sd, 1.0)
    corr = c / np.outer(safe, safe)
    corr = np.where(np.outer(sd > 0, sd > 0), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return sd, validate_correlation(corr, factors, name)


def nearest_correlation(corr: npt.ArrayLike, *, max_iter: int = 200, tol: float = 1e-12) -> FloatArray:
    """Higham (2002): nearest correlation matrix in the Frobenius norm by alternating projections
    onto the PSD cone and the unit-diagonal set, with Dykstra's correction; then a tiny eigenvalue
    floor so that the result is strictly positive definite (Cholesky works on it)."""
    a = np.asarray(corr, dtype=np.float64)
    y = a.copy()
    ds = np.zeros_like(a)
    for _ in range(max_iter):
        r = y - ds
        vals, vecs = np.linalg.eigh(0.5 * (r + r.T))
        x = (vecs * np.maximum(vals, 0.0)) @ vecs.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        if np.linalg.norm(y_new - y) <= tol * max(1.0, float(np.linalg.norm(y))):
            y = y_new
            break
        y = y_new
    vals, vecs = np.linalg.eigh(0.5 * (y + y.T))
    fixed = (vecs * np.maximum(vals, _MIN_EIGENVALUE)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    out: FloatArray = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return 0.5 * (out + out.T)


def _ensure_psd(
    corr: FloatArray, factors: Sequence[FactorId], name: str, tolerance: float, warnings: list[str]
) -> FloatArray:
    if corr.size == 0:
        return corr
    min_eig = float(np.linalg.eigvalsh(corr).min())
    if min_eig >= 0.0:
        return corr
    if min_eig < -tolerance:
        _vals, vecs = np.linalg.eigh(corr)
        worst = np.argsort(-np.abs(vecs[:, 0]))[:3]
        involved = ", ".join(str(factors[i]) for i in worst)
        raise RiskInputError(
            f"{name}: not positive semi-definite (eigenvalue {min_eig:.4g}, mostly {involved}); "
            "not a covariance, check the correlations"
        )
    warnings.append(
        f"{name}: repaired to the nearest positive semi-definite matrix (eigenvalue {min_eig:.3g})"
    )
    return nearest_correlation(corr)


def estimate_market(
    factors: Sequence[FactorId],
    prices: Mapping[FactorId, float],
    params: RiskParams,
    *,
    as_of: datetime,
    history: npt.ArrayLike | None = None,
    history_factors: Sequence[FactorId] | None = None,
    vols: Mapping[FactorId, float] | None = None,
    correlation: npt.ArrayLike | None = None,
    covariance: npt.ArrayLike | None = None,
    correlation_factors: Sequence[FactorId] | None = None,
) -> MarketEstimate:
    """Build the ``MarketState`` over ``factors`` (``USD`` and the driver are added when priced).

    Precedence per vol: explicit ``vols`` > EWMA from ``history`` (with enough days) > defaults;
    per correlation: explicit ``correlation``/``covariance`` > EWMA > defaults. Vol floors apply to
    every crypto factor's vol that was *estimated or defaulted*; explicit vols are taken as given.
    An explicit ``correlation``/``covariance`` is over ``correlation_factors`` (default: ``factors``);
    pairs outside it keep their estimated or default correlation.
    """
    warnings: list[str] = []
    names = list(dict.fromkeys(factors))
    if params.driver not in names and params.driver in prices:
        names.append(params.driver)
    for f in names:
        if f not in prices:
            raise RiskInputError(f"factor {f}: no price")
    n = len(names)
    idx = {f: i for i, f in enumerate(names)}
    vol = np.full(n, np.nan)
    corr = default_correlation(names, params)
    days: dict[FactorId, int] = dict.fromkeys(names, 0)

    if history is not None:
        hist = np.asarray(history, dtype=np.float64)
        hf = list(history_factors or [])
        if hist.ndim != 2 or hist.shape[1] != len(hf):
            raise RiskInputError(
                f"price history has shape {hist.shape}, expected [days, {len(hf)}] for {hf}"
            )
        cov, counts = ewma_covariance(hist, params.ewma_lambda)
        cols = [(idx[f], j) for j, f in enumerate(hf) if f in idx]
        for a, ja in cols:
            days[names[a]] = int(counts[ja, ja])
            if counts[ja, ja] >= params.min_history_days:
                vol[a] = math.sqrt(max(cov[ja, ja], 0.0) * DAYS_PER_YEAR)
            for b, jb in cols:
                ok = counts[ja, jb] >= params.min_history_days and cov[ja, ja] > 0 and cov[jb, jb] > 0
                if a != b and ok:
                    corr[a, b] = cov[ja, jb] / math.sqrt(cov[ja, ja] * cov[jb, jb])

    crypto_defaults = [v for f, v in params.default_vols.items() if _is_crypto(FactorId(f), params)]
    fallback = max(crypto_defaults, default=max(params.vol_floor, 1.0))
    for f, i in idx.items():
        if not math.isnan(vol[i]):
            continue
        if f == USD:
            vol[i] = 0.0
        elif f in params.default_vols:
            vol[i] = params.default_vols[f]
        else:
            vol[i] = fallback
            warnings.append(f"factor {f}: no history and no default volatility; assuming {fallback:.0%}")
    for f, i in idx.items():
        if _is_crypto(f, params) and vol[i] < params.vol_floor:
            vol[i] = params.vol_floor

    if vols is not None:
        for f, v in vols.items():
            if f not in idx:
                continue
            if not math.isfinite(v) or v < 0:
                raise RiskInputError(f"vols.{f}: volatility must be a finite number >= 0, got {v}")
            vol[idx[f]] = v

    if covariance is not None or correlation is not None:
        given_factors = list(dict.fromkeys(correlation_factors or factors))
        for f in given_factors:
            if f not in idx:
                raise RiskInputError(f"correlation: factor {f} is not among the priced factors")
        if covariance is not None:
            sd, given = covariance_to_correlation(covariance, given_factors, "covariance")
            for k, f in enumerate(given_factors):
                vol[idx[f]] = sd[k]
            label = "covariance"
        else:
            assert correlation is not None
            given = validate_correlation(correlation, given_factors, "correlation")
            label = "correlation"
        given = _ensure_psd(given, given_factors, label, PSD_REPAIR_TOLERANCE, warnings)
        pos = [idx[f] for f in given_factors]
        corr[np.ix_(pos, pos)] = given
        corr = _ensure_psd(corr, names, "correlation", math.inf, warnings)
    else:
        corr = _ensure_psd(corr, names, "estimated correlation", math.inf, warnings)

    var_d = None
    betas: dict[FactorId, float] = {}
    if params.driver in idx:
        d = idx[params.driver]
        var_d = vol[d] ** 2
    for f, i in idx.items():
        if var_d is not None and var_d > 0:
            d = idx[params.driver]
            betas[f] = float(corr[i, d] * vol[i] * vol[d] / var_d)
        else:
            betas[f] = 1.0 if _is_crypto(f, params) else 0.0
    if var_d is None:
        warnings.append(f"driver {params.driver} has no price: market-direction betas default to 1")

    state = MarketState(
        factors=tuple(names),
        prices={f: float(prices[f]) for f in names},
        vols={f: float(vol[i]) for f, i in idx.items()},
        correlation=corr,
        betas=betas,
        as_of=as_of,
        driver=params.driver,
    )
    return MarketEstimate(state=state, warnings=tuple(warnings), history_days=days)
