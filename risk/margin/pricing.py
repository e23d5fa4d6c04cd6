"""Black-76 option price with zero rate, the engine's revaluation formula for scenario work.

Delegates to ``risk.options.black76_price`` (undiscounted, ``rate = 0``: Derive and Deribit reprice
options on the forward with Black-76). ``sign`` is +1 for a call and -1 for a put, the layout of
``risk.arrays.Book.opt_sign``. At ``sigma sqrt T == 0`` the price is the intrinsic value.
"""

from __future__ import annotations

import numpy as np

from risk.arrays import FloatArray
from risk.options import black76_price

__all__ = ["black76"]


def black76(
    forward: FloatArray,
    strike: FloatArray,
    years: FloatArray,
    vol: FloatArray,
    sign: FloatArray,
) -> FloatArray:
    """Undiscounted Black-76 price; ``sign`` is +1 for a call, -1 for a put."""
    return black76_price(forward, strike, years, vol, np.asarray(sign) > 0)
