"""Black-Scholes / Black-76: parity, finite-difference greeks, textbook values, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.margin.pricing import black76
from risk.options import black76_greeks, black76_price, bs_greeks, bs_price, generalized_greeks


def test_textbook_value_hull() -> None:
    # Hull, Options Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, sigma=20%, T=0.5
    call = float(bs_price(42.0, 40.0, 0.5, 0.2, True, rate=0.1))
    put = float(bs_price(42.0, 40.0, 0.5, 0.2, False, rate=0.1))
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)


def test_black76_textbook_value() -> None:
    # Hull Example 18.6 (Black's model): F=20, K=20, r=9%, sigma=25%, T=4/12 -> put 1.12
    put = float(black76_price(20.0, 20.0, 4 / 12, 0.25, False, rate=0.09))
    assert put == pytest.approx(1.12, abs=0.005)


def test_expired_gives_intrinsic_and_zero_time_value_greeks() -> None:
    s = np.array([90.0, 110.0, 90.0, 110.0])
    is_call = np.array([True, True, False, False])
    g = bs_greeks(s, 100.0, np.array([0.0, -1.0, 0.0, 0.0]), 0.8, is_call)
    np.testing.assert_allclose(g.price, [0.0, 10.0, 10.0, 0.0])
    np.testing.assert_allclose(g.delta, [0.0, 1.0, -1.0, 0.0])
    assert not g.gamma.any() and not g.vega.any() and not g.theta.any()
    np.testing.assert_allclose(bs_price(s, 100.0, 0.0, 0.8, is_call), g.price)


def test_zero_vol_is_discounted_forward_intrinsic() -> None:
    price = float(bs_price(100.0, 95.0, 1.0, 0.0, True, rate=0.05))
    assert price == pytest.approx(100.0 - 95.0 * math.exp(-0.05))
    assert float(bs_price(100.0, 120.0, 1.0, 0.0, True)) == 0.0


def test_vectorized_shapes_broadcast() -> None:
    spots = np.linspace(1000, 5000, 7)[:, None]
    strikes = np.array([2000.0, 3000.0, 4000.0])[None, :]
    out = bs_price(spots, strikes, 0.1, 0.7, np.array([True, False, True]))
    assert out.shape == (7, 3)
    assert np.all(out >= 0)


finite = {"allow_nan": False, "allow_infinity": False}


@settings(max_examples=300, deadline=None)
@given(
    s=st.floats(1e-2, 1e6, **finite),
    m=st.floats(0.2, 5.0, **finite),
    t=st.floats(1e-4, 5.0, **finite),
    v=st.floats(0.01, 4.0, **finite),
    r=st.floats(-0.02, 0.2, **finite),
)
def test_put_call_parity(s: float, m: float, t: float, v: float, r: float) -> None:
    k = s * m
    call = float(bs_price(s, k, t, v, True, rate=r))
    put = float(bs_price(s, k, t, v, False, rate=r))
    assert call - put == pytest.approx(s - k * math.exp(-r * t), rel=1e-9, abs=1e-9 * (s + k))
    c76 = float(black76_price(s, k, t, v, True, rate=r))
    p76 = float(black76_price(s, k, t, v, False, rate=r))
    assert c76 - p76 == pytest.approx(math.exp(-r * t) * (s - k), rel=1e-9, abs=1e-9 * (s + k))


@settings(max_examples=300, deadline=None)
@given(
    s=st.floats(1.0, 1e5, **finite),
    m=st.floats(0.2, 5.0, **finite),
    t=st.floats(1e-3, 5.0, **finite),
    v=st.floats(0.01, 4.0, **finite),
    call=st.booleans(),
)
def test_price_bounds(s: float, m: float, t: float, v: float, call: bool) -> None:
    k = s * m
    p = float(bs_price(s, k, t, v, call))
    intrinsic = max(s - k, 0.0) if call else max(k - s, 0.0)
    upper = s if call else k
    assert intrinsic - 1e-9 * upper <= p <= upper * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(
    s=st.floats(10.0, 1e5, **finite),
    m=st.floats(0.5, 2.0, **finite),
    t=st.floats(0.02, 3.0, **finite),
    v=st.floats(0.05, 2.0, **finite),
    r=st.floats(0.0, 0.1, **finite),
    call=st.booleans(),
    black76=st.booleans(),
)
def test_greeks_match_finite_differences(
    s: float, m: float, t: float, v: float, r: float, call: bool, black76: bool
) -> None:
    k = s * m
    carry = 0.0 if black76 else r
    g = generalized_greeks(s, k, t, v, call, rate=r, carry=carry)
    greeks_fn = black76_greeks if black76 else bs_greeks
    assert float(greeks_fn(s, k, t, v, call, rate=r).price) == float(g.price)

    def price(ss: float = s, tt: float = t, vv: float = v) -> float:
        return float(generalized_greeks(ss, k, tt, vv, call, rate=r, carry=carry).price)

    hs = s * v * math.sqrt(t) * 1e-3  # a thousandth of the distribution's width
    fd_delta = (price(ss=s + hs) - price(ss=s - hs)) / (2 * hs)
    fd_gamma = (price(ss=s + hs) - 2 * price() + price(ss=s - hs)) / (hs * hs)
    hv = v * 1e-4
    fd_vega = (price(vv=v + hv) - price(vv=v - hv)) / (2 * hv)
    ht = min(1e-5, t / 10)
    fd_theta = -(price(tt=t + ht) - price(tt=t - ht)) / (2 * ht)

    scale = max(s, k)
    assert float(g.delta) == pytest.approx(fd_delta, abs=1e-6)
    assert float(g.gamma) * s == pytest.approx(fd_gamma * s, abs=1e-3 + 1e-3 * abs(fd_gamma * s))
    assert float(g.vega) == pytest.approx(fd_vega, abs=1e-6 * scale)
    assert float(g.theta) == pytest.approx(fd_theta, abs=1e-6 * scale / t)


@settings(max_examples=200, deadline=None)
@given(
    s=st.floats(1e-3, 1e7, **finite),
    k=st.floats(1e-3, 1e7, **finite),
    t=st.floats(-1.0, 50.0, **finite),
    v=st.floats(0.0, 10.0, **finite),
    call=st.booleans(),
)
def test_wide_range_is_finite_and_monotone_in_vol(s: float, k: float, t: float, v: float, call: bool) -> None:
    g = bs_greeks(s, k, t, v, call)
    for name in ("price", "delta", "gamma", "vega", "theta"):
        assert np.isfinite(getattr(g, name)), name
    assert float(g.vega) >= 0 and float(g.gamma) >= 0
    assert float(bs_price(s, k, t, v + 0.1, call)) >= float(g.price) - 1e-9 * (s + k)


@settings(max_examples=300, deadline=None)
@given(
    s=st.floats(1e-3, 1e7, **finite),
    k=st.floats(1e-3, 1e7, **finite),
    t=st.floats(-1.0, 5.0, **finite),
    v=st.floats(0.0, 5.0, **finite),
    call=st.booleans(),
)
def test_engine_black76_equals_the_reference_formula(s: float, k: float, t: float, v: float, call: bool) -> None:
    # risk.margin.pricing.black76 is the hot-path rewrite of black76_price(rate=0): same numbers
    ref = float(black76_price(s, k, t, v, call))
    fast = float(black76(np.array(s), np.array(k), np.array(t), np.array(v), np.array(1.0 if call else -1.0)))
    assert fast == pytest.approx(ref, rel=1e-12, abs=1e-12 * (s + k))
    # vectorized: the [S, G, N] broadcast of the options margin grid
    under = np.array([[s, 1.1 * s]])[:, None, :] * np.array([0.9, 1.0, 1.1])[None, :, None]
    grid = black76(under, np.array([k, k]), np.array([t, t]), np.full((1, 3, 2), v), np.array([1.0, -1.0]))
    want = black76_price(under, k, t, v, np.array([True, False]))
    assert np.allclose(grid, want, rtol=1e-12, atol=1e-12 * (s + k))
