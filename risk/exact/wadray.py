"""Fixed-point helpers as the Solidity libraries define them (Aave ``WadRayMath``/``PercentageMath``/
``MathUtils``, Morpho ``MathLib``). All arguments and results are non-negative ``int`` unless stated.

Half-up variants (Aave v3.0-v3.4): ``(a*b + half) // unit``. Floor/ceil variants (Aave v3.5+,
``TokenMath``/``MathUtils.mulDivCeil``): plain floor division and ``-(-x // d)``.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Context, Decimal
from fractions import Fraction

__all__ = [
    "HALF_RAY",
    "HALF_WAD",
    "MAX_UINT256",
    "PERCENTAGE_FACTOR",
    "RAY",
    "WAD",
    "div_ceil",
    "mul_div_ceil",
    "mul_div_down",
    "percent_mul",
    "percent_mul_floor",
    "ray_div",
    "ray_mul",
    "ray_mul_ceil",
    "ray_mul_floor",
    "to_decimal",
    "wad_div",
    "wad_mul",
]

WAD = 10**18
RAY = 10**27
HALF_WAD = WAD // 2
HALF_RAY = RAY // 2
PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
MAX_UINT256 = 2**256 - 1

_DECIMAL_CONTEXT = Context(prec=60, rounding=ROUND_FLOOR)


def _check(*values: int) -> None:
    for v in values:
        if v < 0:
            raise ValueError(f"unsigned fixed-point math got a negative operand {v}")


def div_ceil(a: int, b: int) -> int:
    """``ceil(a / b)`` for ``a >= 0, b > 0``."""
    _check(a)
    if b <= 0:
        raise ZeroDivisionError("division by a non-positive number")
    return -(-a // b)


def mul_div_down(x: int, y: int, d: int) -> int:
    """``x*y // d`` (Morpho ``mulDivDown``; Solidity ``x * y / d``)."""
    _check(x, y)
    if d <= 0:
        raise ZeroDivisionError("mulDiv by zero")
    return x * y // d


def mul_div_ceil(x: int, y: int, d: int) -> int:
    """``ceil(x*y / d)`` (Aave ``MathUtils.mulDivCeil``, Morpho ``mulDivUp``)."""
    _check(x, y)
    return div_ceil(x * y, d)


def ray_mul(a: int, b: int) -> int:
    """Aave ``WadRayMath.rayMul``: half-up, ``(a*b + RAY/2) // RAY``."""
    _check(a, b)
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    """Aave v3.5+ ``WadRayMath.rayMulFloor``: ``a*b // RAY``."""
    _check(a, b)
    return a * b // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """Aave v3.5+ ``WadRayMath.rayMulCeil``: ``ceil(a*b / RAY)``."""
    return mul_div_ceil(a, b, RAY)


def ray_div(a: int, b: int) -> int:
    """Aave ``WadRayMath.rayDiv``: half-up, ``(a*RAY + b/2) // b``."""
    _check(a)
    if b <= 0:
        raise ZeroDivisionError("rayDiv by zero")
    return (a * RAY + b // 2) // b


def wad_mul(a: int, b: int) -> int:
    """Aave ``WadRayMath.wadMul``: half-up."""
    _check(a, b)
    return (a * b + HALF_WAD) // WAD


def wad_div(a: int, b: int) -> int:
    """Aave ``WadRayMath.wadDiv``: half-up, ``(a*WAD + b/2) // b``."""
    _check(a)
    if b <= 0:
        raise ZeroDivisionError("wadDiv by zero")
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage: int) -> int:
    """Aave ``PercentageMath.percentMul``: half-up, ``(v*p + 5000) // 10000``."""
    _check(value, percentage)
    return (value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, percentage: int) -> int:
    """Aave v3.5+ ``PercentageMath.percentMulFloor``: ``v*p // 10000``."""
    _check(value, percentage)
    return value * percentage // PERCENTAGE_FACTOR


def to_decimal(value: Fraction | int | None) -> Decimal:
    """An exact ratio as a ``Decimal`` for ``risk.model``: ``None`` (no requirement) is +Infinity.

    Rounded toward -inf at 60 significant digits, so a ratio below 1 never becomes 1 and a ratio of
    at least 1 never drops below 1 (1 is representable): the liquidation decision survives.
    """
    if value is None:
        return Decimal("Infinity")
    if isinstance(value, int):
        return Decimal(value)
    return _DECIMAL_CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
