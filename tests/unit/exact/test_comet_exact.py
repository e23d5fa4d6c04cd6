"""Comet liquidity: truncation toward zero, the stored index, and health vs isLiquidatable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from risk.exact.comet import (
    CometCollateral,
    health_ratio,
    is_liquidatable,
    liquidity,
    present_value,
)

E18 = 10**18


def test_present_value_uses_the_given_index_and_truncates() -> None:
    assert present_value(-3, 10**15, 1_500_000_000_000_001) == -4  # 3*1.5000..1 = 4.5 -> -(4)
    assert present_value(3, 1_500_000_000_000_001, 0) == 4


def test_negative_division_truncates_toward_zero_like_solidity() -> None:
    # debt value = -(7 * 3) / 2 = -10.5 -> Solidity -10 (Python floor would give -11)
    collateral = [CometCollateral(balance=10, price=1, scale=1, collateral_factor=E18)]
    assert liquidity(-7, 10**15, 3, 2, collateral) == 0
    assert is_liquidatable(-7, 10**15, 3, 2, collateral) is False
    assert health_ratio(-7, 10**15, 3, 2, collateral) == 1
    # one unit of collateral less: liquidatable
    short = [CometCollateral(balance=9, price=1, scale=1, collateral_factor=E18)]
    assert is_liquidatable(-7, 10**15, 3, 2, short) is True


def test_stored_index_decides_not_the_accrued_one() -> None:
    collateral = [CometCollateral(balance=100, price=10**8, scale=1, collateral_factor=E18)]
    principal = -100 * 10**6
    stored, accrued = 10**15, 10**15 + 10**12
    assert not is_liquidatable(principal, stored, 10**8, 10**6, collateral)
    assert is_liquidatable(principal, accrued, 10**8, 10**6, collateral)


def test_suppliers_are_never_liquidatable() -> None:
    assert not is_liquidatable(0, 10**15, 10**8, 10**6, [])
    assert health_ratio(5, 10**15, 10**8, 10**6, []) is None


collaterals = st.lists(
    st.builds(
        CometCollateral,
        balance=st.integers(min_value=0, max_value=10**30),
        price=st.integers(min_value=1, max_value=10**13),
        scale=st.sampled_from([1, 10**6, 10**8, 10**18]),
        collateral_factor=st.integers(min_value=0, max_value=10**4).map(lambda f: f * 10**14),
    ),
    max_size=5,
)


@given(
    principal=st.integers(min_value=-(10**30), max_value=10**20),
    index=st.integers(min_value=10**15, max_value=3 * 10**15),
    base_price=st.integers(min_value=1, max_value=10**13),
    base_scale=st.sampled_from([10**6, 10**8, 10**18]),
    cs=collaterals,
)
def test_health_below_one_iff_liquidatable(
    principal: int, index: int, base_price: int, base_scale: int, cs: list[CometCollateral]
) -> None:
    h = health_ratio(principal, index, base_price, base_scale, cs)
    assert (h is not None and h < 1) == is_liquidatable(principal, index, base_price, base_scale, cs)


@given(
    principal=st.integers(min_value=-(10**24), max_value=-1),
    index=st.integers(min_value=10**15, max_value=2 * 10**15),
    bump=st.integers(min_value=0, max_value=10**14),
    cs=collaterals,
)
def test_liquidity_decreases_as_the_borrow_index_grows(
    principal: int, index: int, bump: int, cs: list[CometCollateral]
) -> None:
    assert liquidity(principal, index + bump, 10**8, 10**6, cs) <= liquidity(
        principal, index, 10**8, 10**6, cs
    )
