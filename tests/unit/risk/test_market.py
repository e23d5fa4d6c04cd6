"""Market state: EWMA against an independent loop and simulated data, defaults, floors, PSD repair."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from risk.errors import RiskInputError
from risk.market import estimate_market, ewma_covariance, nearest_correlation
from risk.model import FactorId
from risk.params import RiskParams

ETH, BTC, ST, USD = FactorId("ETH"), FactorId("BTC"), FactorId("stETH/ETH"), FactorId("USD")
NOW = datetime(2025, 1, 1, tzinfo=UTC)
PARAMS = RiskParams(
    default_vols={"ETH": 0.7, "BTC": 0.55, "stETH/ETH": 0.05},
    factor_groups={"crypto": (ETH, BTC), "lst": (ST,)},
)
PRICES = {ETH: 3000.0, BTC: 60000.0, ST: 0.999, USD: 1.0}


def simulated_history(days: int, vols: list[float], corr: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    daily = np.array(vols) / math.sqrt(365.0)
    cov = corr * np.outer(daily, daily)
    r = rng.multivariate_normal(np.zeros(len(vols)), cov, size=days)
    return 100.0 * np.exp(np.vstack([np.zeros(len(vols)), np.cumsum(r, axis=0)]))


def test_ewma_equals_explicit_weighted_sum() -> None:
    hist = simulated_history(50, [0.7, 0.5], np.array([[1, 0.3], [0.3, 1.0]]))
    hist[:10, 1] = np.nan  # BTC listed later
    cov, counts = ewma_covariance(hist, 0.94)
    r = np.diff(np.log(hist), axis=0)
    expect = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            num = den = 0.0
            for t in range(len(r)):
                if math.isfinite(r[t, i]) and math.isfinite(r[t, j]):
                    w = 0.06 * 0.94 ** (len(r) - 1 - t)
                    num += w * r[t, i] * r[t, j]
                    den += w
            expect[i, j] = num / den
    np.testing.assert_allclose(cov, expect, rtol=1e-12)
    assert counts.tolist() == [[50, 40], [40, 40]]


def test_ewma_recovers_simulated_vols_and_correlation() -> None:
    corr = np.array([[1.0, 0.6], [0.6, 1.0]])
    hist = simulated_history(4000, [0.8, 0.4], corr, seed=3)
    params = RiskParams(ewma_lambda=0.998, vol_floor=0.0, factor_groups={"crypto": (ETH, BTC)})
    est = estimate_market([ETH, BTC], PRICES, params, as_of=NOW, history=hist, history_factors=[ETH, BTC])
    assert est.state.vols[ETH] == pytest.approx(0.8, rel=0.1)
    assert est.state.vols[BTC] == pytest.approx(0.4, rel=0.1)
    assert est.state.correlation[0, 1] == pytest.approx(0.6, abs=0.08)
    assert est.state.betas[BTC] == pytest.approx(
        est.state.correlation[0, 1] * est.state.vols[BTC] / est.state.vols[ETH], rel=1e-12
    )
    assert est.state.betas[ETH] == pytest.approx(1.0)


def test_defaults_until_enough_history_and_basis_uncorrelated() -> None:
    hist = simulated_history(10, [0.7, 0.5, 0.05], np.eye(3))
    est = estimate_market([ETH, BTC, ST, USD], PRICES, PARAMS, as_of=NOW, history=hist,
                          history_factors=[ETH, BTC, ST])
    s = est.state
    assert (s.vols[ETH], s.vols[BTC], s.vols[ST], s.vols[USD]) == (0.7, 0.55, 0.05, 0.0)
    c = s.correlation
    assert c[0, 1] == pytest.approx(0.8) and c[0, 2] == 0.0 and c[1, 3] == 0.0
    assert est.history_days[ETH] == 10
    assert s.betas[BTC] == pytest.approx(0.8 * 0.55 / 0.7)
    assert s.betas[ST] == 0.0


def test_vol_floor_applies_to_crypto_only() -> None:
    hist = simulated_history(60, [0.05, 0.01], np.eye(2))
    est = estimate_market([ETH, ST], PRICES, PARAMS, as_of=NOW, history=hist, history_factors=[ETH, ST])
    assert est.state.vols[ETH] == PARAMS.vol_floor
    assert est.state.vols[ST] < 0.05


def test_unknown_factor_without_default_vol_warns() -> None:
    pepe = FactorId("PEPE")
    est = estimate_market([ETH, pepe], PRICES | {pepe: 1e-5}, PARAMS, as_of=NOW)
    assert est.state.vols[pepe] == 0.7
    assert any("PEPE" in w for w in est.warnings)


def test_missing_price_names_factor() -> None:
    with pytest.raises(RiskInputError, match="SOL"):
        estimate_market([ETH, FactorId("SOL")], PRICES, PARAMS, as_of=NOW)


def test_higham_published_example() -> None:
    # Higham (2002), section 4: nearest correlation matrix to [[1,1,0],[1,1,1],[0,1,1]]
    out = nearest_correlation(np.array([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]]))
    expect = np.array([[1, 0.7607, 0.1573], [0.7607, 1, 0.7607], [0.1573, 0.7607, 1]])
    np.testing.assert_allclose(out, expect, atol=1e-4)


@pytest.mark.parametrize(
    ("matrix", "needle"),
    [
        ([[1.0, math.nan], [math.nan, 1.0]], "correlation: not a number at \\(ETH, BTC\\)"),
        ([[1.0, 0.5], [0.4, 1.0]], "correlation: not symmetric"),
        ([[1.0, 1.2], [1.2, 1.0]], "outside \\[-1, 1\\]"),
    ],
)
def test_correlation_that_is_not_one_is_an_error(matrix: list[list[float]], needle: str) -> None:
    with pytest.raises(RiskInputError, match=needle):
        estimate_market([ETH, BTC], PRICES, PARAMS, as_of=NOW, correlation=np.array(matrix))


def test_negative_variance_and_indefinite_matrix_are_errors() -> None:
    with pytest.raises(RiskInputError, match=r"covariance: negative variance -0\.1 for BTC"):
        estimate_market([ETH, BTC], PRICES, PARAMS, as_of=NOW, covariance=np.array([[0.5, 0], [0, -0.1]]))
    bad = np.array([[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1.0]])
    with pytest.raises(RiskInputError, match="correlation: not positive semi-definite"):
        estimate_market([ETH, BTC, ST], PRICES, PARAMS, as_of=NOW, correlation=bad)


def test_rounding_defect_is_repaired_with_warning() -> None:
    # a valid correlation rounded to one decimal: slightly indefinite
    c = np.array([[1, 0.9, 0.7], [0.9, 1, 0.3], [0.7, 0.3, 1.0]])
    assert np.linalg.eigvalsh(c).min() < 0
    est = estimate_market([ETH, BTC, ST], PRICES, PARAMS, as_of=NOW, correlation=c)
    assert np.linalg.eigvalsh(est.state.correlation).min() > 0
    np.linalg.cholesky(est.state.correlation)
    assert any("repaired" in w for w in est.warnings)
    np.testing.assert_allclose(est.state.correlation, c, atol=0.02)


def test_explicit_covariance_sets_vols() -> None:
    cov = np.array([[0.49, 0.2], [0.2, 0.25]])
    est = estimate_market([ETH, BTC], PRICES, PARAMS, as_of=NOW, covariance=cov)
    np.testing.assert_allclose(est.state.covariance, cov, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (4, 4), elements=st.floats(-1, 1)))
def test_nearest_correlation_is_a_correlation_matrix(raw: np.ndarray) -> None:
    sym = np.clip((raw + raw.T) / 2, -1, 1)
    np.fill_diagonal(sym, 1.0)
    out = nearest_correlation(sym)
    np.testing.assert_allclose(np.diag(out), 1.0)
    np.testing.assert_allclose(out, out.T)
    assert np.linalg.eigvalsh(out).min() > -1e-12
    if np.linalg.eigvalsh(sym).min() > 1e-9:  # already a correlation matrix: unchanged
        np.testing.assert_allclose(out, sym, atol=1e-8)
