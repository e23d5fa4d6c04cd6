"""Exact integer re-implementations of protocols' own arithmetic (no I/O, stdlib only).

Each module reproduces one protocol's view-function math with Python ``int`` so that our figure can
equal the venue's to the last wei: ``aave`` (per ``POOL_REVISION`` rounding, health factor and the
other ``getUserAccountData`` fields), ``comet`` (``isLiquidatable`` with the stored borrow index and
truncation toward zero), ``morpho`` (shares math, interest accrual, ``_isHealthy``), ``gmx``
(``PositionUtils.isPositionLiquidatable`` in 1e30 fixed point). ``wadray`` holds
the fixed-point helpers they share. Ratios are returned as :class:`fractions.Fraction` so that
``h < 1`` is decided without any rounding; :func:`to_decimal` converts for ``risk.model``.
"""

from risk.exact.wadray import to_decimal

__all__ = ["to_decimal"]
