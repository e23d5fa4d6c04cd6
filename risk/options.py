"""European option prices and greeks, vectorized over numpy arrays (Black-Scholes and Black-76).

Both models are the generalized Black-Scholes-Merton formula with a cost of carry ``b``
(Haug, *The Complete Guide to Option Pricing Formulas*, ch. 1):

    d1 = (ln(S/K) + (b + sigma^2/2) T) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    call = S e^{(b-r)T} N(d1) - K e^{-rT} N(d2)
    put  = K e^{-rT} N(-d2) - S e^{(b-r)T} N(-d1)

Black-Scholes on a spot ``S`` uses ``b = r`` (no dividend); Black-76 on a forward/future ``F`` uses
``b = 0`` (the underlying argument is then the forward, and delta/gamma are with respect to it).
Crypto venues (Derive, Deribit) quote options on a forward with no discounting, so ``rate``
defaults to 0, where both coincide.

Units of the greeks (raw, per unit of the inputs; ``risk.greeks`` rescales them for reports):
``delta`` dV/dS, ``gamma`` d2V/dS2, ``vega`` dV/dsigma per 1.00 of volatility (divide by 100 for
a vol point), ``theta`` dV/dt per *year* of calendar time (``-dV/dT``; divide by 365 for a day).

Edge cases: ``T <= 0`` gives the intrinsic value ``max(S-K, 0)`` / ``max(K-S, 0)`` with delta the
exercise indicator and zero gamma/vega/theta; ``sigma = 0`` with ``T > 0`` gives the discounted
intrinsic value of the forward. Arguments broadcast against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

__all__ = [
    "OptionGreeks",
    "black76_greeks",
    "black76_price",
    "bs_greeks",
    "bs_price",
    "generalized_greeks",
    "generalized_price",
]

FloatArray = npt.NDArray[np.float64]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TINY_SD = 1e-12  # sigma*sqrt(T) below this is treated as deterministic


@dataclass(frozen=True, slots=True)
class OptionGreeks:
    """Price and raw greeks per unit of the underlying (see the module docstring for units)."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray


def _prepare(
    underlying: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    s, k, tt, v, c = np.broadcast_arrays(
        np.asarray(underlying, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(t, dtype=np.float64),
        np.asarray(vol, dtype=np.float64),
        np.asarray(is_call, dtype=np.bool_),
    )
    return s, k, tt, v, c


def _d1_d2(
    s: FloatArray, k: FloatArray, t: FloatArray, v: FloatArray, b: float
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """d1, d2, sigma*sqrt(T) and the mask of entries that are stochastic (T > 0 and sigma > 0)."""
    t_pos = np.maximum(t, 0.0)
    sd = v * np.sqrt(t_pos)
    live = sd > _TINY_SD
    safe_sd = np.where(live, sd, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_m = np.log(np.where(live, s / k, 1.0))
    d1 = (log_m + (b + 0.5 * v * v) * t_pos) / safe_sd
    d2 = d1 - safe_sd
    return d1, d2, sd, live


def generalized_price(
    underlying: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0, carry: float = 0.0,
) -> FloatArray:
    """Generalized BSM price with cost of carry ``carry`` (``b``) and discount ``rate`` (``r``)."""
    s, k, t_, v, c = _prepare(underlying, strike, t, vol, is_call)
    d1, d2, _sd, live = _d1_d2(s, k, t_, v, carry)
    t_pos = np.maximum(t_, 0.0)
    growth = np.exp((carry - rate) * t_pos)
    disc = np.exp(-rate * t_pos)
    sign = np.where(c, 1.0, -1.0)
    stochastic = sign * (s * growth * ndtr(sign * d1) - k * disc * ndtr(sign * d2))
    # deterministic: T <= 0 -> intrinsic; sigma = 0 -> discounted intrinsic of the forward
    deterministic = np.where(
        t_ > 0.0, np.maximum(sign * (s * growth - k * disc), 0.0), np.maximum(sign * (s - k), 0.0)
    )
    out: FloatArray = np.where(live, stochastic, deterministic)
    return out


def generalized_greeks(
    underlying: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0, carry: float = 0.0,
) -> OptionGreeks:
    """Price, delta, gamma, vega (per 1.00 vol) and theta (per year) of the generalized BSM formula."""
    s, k, t_, v, c = _prepare(underlying, strike, t, vol, is_call)
    d1, d2, sd, live = _d1_d2(s, k, t_, v, carry)
    t_pos = np.maximum(t_, 0.0)
    growth = np.exp((carry - rate) * t_pos)
    disc = np.exp(-rate * t_pos)
    sign = np.where(c, 1.0, -1.0)
    nd1 = ndtr(sign * d1)
    nd2 = ndtr(sign * d2)
    pdf1 = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    safe_sd = np.where(live, sd, 1.0)
    safe_t = np.where(live, t_pos, 1.0)

    price = sign * (s * growth * nd1 - k * disc * nd2)
    delta = sign * growth * nd1
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = growth * pdf1 / (s * safe_sd)
    vega = s * growth * pdf1 * np.sqrt(safe_t)
    theta = (
        -s * growth * pdf1 * v / (2.0 * np.sqrt(safe_t))
        - sign * (carry - rate) * s * growth * nd1
        - sign * rate * k * disc * nd2
    )

    # deterministic entries (T <= 0 or sigma = 0)
    expired = t_ <= 0.0
    fwd_itm = np.where(expired, sign * (s - k) > 0.0, sign * (s * growth - k * disc) > 0.0)
    det_price = np.where(
        expired, np.maximum(sign * (s - k), 0.0), np.maximum(sign * (s * growth - k * disc), 0.0)
    )
    det_delta = np.where(fwd_itm, sign * np.where(expired, 1.0, growth), 0.0)
    # sigma = 0, T > 0, in the money: V = sign*(S e^{(b-r)T} - K e^{-rT}); theta = -dV/dT
    det_theta = np.where(
        fwd_itm & ~expired,
        -sign * ((carry - rate) * s * growth + rate * k * disc),
        0.0,
    )
    zero = np.zeros_like(price)
    return OptionGreeks(
        price=np.where(live, price, det_price),
        delta=np.where(live, delta, det_delta),
        gamma=np.where(live, gamma, zero),
        vega=np.where(live, vega, zero),
        theta=np.where(live, theta, det_theta),
    )


def bs_price(
    spot: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0,
) -> FloatArray:
    """Black-Scholes price of a European option on a spot (no dividend): ``b = r``. ``t`` in years."""
    return generalized_price(spot, strike, t, vol, is_call, rate=rate, carry=rate)


def bs_greeks(
    spot: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0,
) -> OptionGreeks:
    """Black-Scholes price and greeks (delta/gamma with respect to the spot)."""
    return generalized_greeks(spot, strike, t, vol, is_call, rate=rate, carry=rate)


def black76_price(
    forward: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0,
) -> FloatArray:
    """Black-76 price of a European option on a forward/future: ``b = 0``, discounted at ``rate``."""
    return generalized_price(forward, strike, t, vol, is_call, rate=rate, carry=0.0)


def black76_greeks(
    forward: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike,
    is_call: npt.ArrayLike, *, rate: float = 0.0,
) -> OptionGreeks:
    """Black-76 price and greeks (delta/gamma with respect to the forward)."""
    return generalized_greeks(forward, strike, t, vol, is_call, rate=rate, carry=0.0)
