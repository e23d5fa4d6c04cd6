"""Black-76 option price with zero rate, the engine's revaluation formula for scenario work.

The same formula as ``risk.options.black76_price`` with ``rate = 0`` (Derive and Deribit reprice
options on the forward with Black-76, undiscounted), written for the hot path of scenario work:
``sd = sigma sqrt(T)``, ``d1 = ln(F / K) / sd + sd / 2``, ``d2 = d1 - sd``,
``price = sign * (F N(sign d1) - K N(sign d2))``; where ``sd`` is 0 (or ``T <= 0``) the price is the
intrinsic value ``max(sign (F - K), 0)``. ``sign`` is +1 for a call and -1 for a put, the layout of
``risk.arrays.Book.opt_sign``; arguments broadcast against each other.
``tests/unit/risk/test_options.py`` checks it against ``risk.options.black76_price``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from risk.arrays import FloatArray

__all__ = ["black76"]

_TINY_SD = 1e-12  # sigma*sqrt(T) below this is treated as deterministic (as risk.options does)


def black76(
    forward: FloatArray,
    strike: FloatArray,
    years: FloatArray,
    vol: FloatArray,
    sign: FloatArray,
) -> FloatArray:
    """Undiscounted Black-76 price; ``sign`` is +1 for a call, -1 for a put."""
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    sg = np.asarray(sign, dtype=np.float64)
    sd = np.asarray(vol, dtype=np.float64) * np.sqrt(np.maximum(np.asarray(years, dtype=np.float64), 0.0))
    live = sd > _TINY_SD
    all_live = bool(np.all(live))
    safe = sd if all_live else np.where(live, sd, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(f / k) / safe
        d1 += 0.5 * safe
        d2 = d1 - safe
        d1 *= sg
        d2 *= sg
        price = f * ndtr(d1)
        price -= k * ndtr(d2)
        price *= sg
    if all_live:
        out: FloatArray = price
        return out
    intrinsic = np.maximum(sg * (f - k), 0.0)
    out = np.where(live, price, intrinsic)
    return out
