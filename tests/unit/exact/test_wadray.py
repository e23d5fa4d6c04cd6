"""Fixed-point helpers against exact rational arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk.exact.wadray import (
    RAY,
    WAD,
    mul_div_ceil,
    percent_mul,
    percent_mul_floor,
    ray_div,
    ray_mul,
    ray_mul_ceil,
    ray_mul_floor,
    to_decimal,
    wad_div,
)

u128 = st.integers(min_value=0, max_value=2**128 - 1)
positive = st.integers(min_value=1, max_value=2**128 - 1)


def _half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


@given(u128, u128)
def test_ray_mul_variants_bracket_the_exact_product(a: int, b: int) -> None:
    exact = Fraction(a * b, RAY)
    assert ray_mul(a, b) == _half_up(exact)
    assert ray_mul_floor(a, b) == math.floor(exact)
    assert ray_mul_ceil(a, b) == math.ceil(exact)
    assert ray_mul_floor(a, b) <= ray_mul(a, b) <= ray_mul_ceil(a, b) <= ray_mul_floor(a, b) + 1


@given(u128, positive)
def test_wad_and_ray_div_are_half_up(a: int, b: int) -> None:
    assert wad_div(a, b) == _half_up(Fraction(a * WAD, b)) or (
        # Solidity adds floor(b/2), which equals half-up except for odd b at exactly .5
        wad_div(a, b) == (a * WAD + b // 2) // b
    )
    assert ray_div(a, b) == (a * RAY + b // 2) // b


@given(u128, st.integers(min_value=0, max_value=10_000))
def test_percent_mul_half_up_and_floor(v: int, p: int) -> None:
    assert percent_mul(v, p) == _half_up(Fraction(v * p, 10_000))
    assert percent_mul_floor(v, p) == v * p // 10_000
    assert 0 <= percent_mul(v, p) - percent_mul_floor(v, p) <= 1


@given(u128, u128, positive)
def test_mul_div_ceil(x: int, y: int, d: int) -> None:
    assert mul_div_ceil(x, y, d) == math.ceil(Fraction(x * y, d))


def test_negative_operands_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        ray_mul(-1, RAY)
    with pytest.raises(ZeroDivisionError):
        wad_div(1, 0)


@given(st.integers(min_value=1, max_value=10**40), st.integers(min_value=1, max_value=10**40))
def test_to_decimal_keeps_the_side_of_one(n: int, d: int) -> None:
    value = to_decimal(Fraction(n, d))
    assert (value < 1) == (Fraction(n, d) < 1)
    assert to_decimal(None) == Decimal("Infinity")
