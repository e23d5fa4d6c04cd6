"""Aave V3 account data: recorded integer cases per revision, and properties of the math."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.exact.aave import (
    RAY,
    SECONDS_PER_YEAR,
    AaveEModeCategory,
    AaveReserveState,
    AaveUserReserve,
    decode_reserve_configuration,
    normalized_debt,
    normalized_income,
    user_account_data,
    user_config_flags,
)
from risk.exact.wadray import MAX_UINT256, WAD

V30 = 1  # core 1.19 (v3.0.2)
V34 = 8
V35 = 9


def config(ltv: int, lt: int, bonus: int, decimals: int, emode: int = 0) -> int:
    return ltv | lt << 16 | bonus << 32 | decimals << 48 | 1 << 56 | 1 << 58 | emode << 168


def reserve(rid: int, cfg: int, price: int, income: int = RAY, debt: int = RAY) -> AaveReserveState:
    return AaveReserveState(f"0x{rid:040x}", rid, cfg, price, income, debt)


def test_configuration_bits_decode() -> None:
    cfg = decode_reserve_configuration(config(8000, 8250, 10500, 18, emode=3) | 123 << 212)
    assert (cfg.ltv, cfg.liquidation_threshold, cfg.liquidation_bonus, cfg.decimals) == (
        8000,
        8250,
        10500,
        18,
    )
    assert cfg.active and cfg.borrowing_enabled and not cfg.frozen and not cfg.paused
    assert cfg.emode_category == 3
    assert cfg.debt_ceiling == 123


def test_user_config_uses_reserve_id_bits() -> None:
    user_config = 0b10 << (2 * 5) | 0b01 << (2 * 7)  # collateral on id 5, borrowing on id 7
    assert user_config_flags(user_config, 5) == (False, True)
    assert user_config_flags(user_config, 7) == (True, False)
    assert user_config_flags(user_config, 6) == (False, False)


def test_no_position_is_the_sentinel() -> None:
    assert user_account_data(V30, []).as_tuple() == (0, 0, 0, 0, 0, MAX_UINT256)


# --- recorded cases where v3.0-v3.4 and v3.5+ differ by one wei ---------------------------------
# Collateral: 1 unit-less token (decimals 0), scaled balance 3, income 1.5 ray: aToken balance is
# 4.5 -> half-up 5 (v3.0), floor 4 (v3.5). Price 1e8 per token. Debt: decimals 0, scaled 1,
# debt index 1.4 ray: 1.4 -> half-up 1 (v3.0), ceil 2 (v3.5). Price 1e8.
COLL = reserve(0, config(7000, 8000, 10500, 0), 10**8, income=RAY * 3 // 2)
DEBT = reserve(1, config(0, 0, 0, 0), 10**8, debt=RAY * 14 // 10)
CASE = [
    AaveUserReserve(COLL, scaled_a_balance=3, scaled_v_balance=0, collateral_enabled=True, borrowing=False),
    AaveUserReserve(DEBT, scaled_a_balance=0, scaled_v_balance=1, collateral_enabled=False, borrowing=True),
]


def test_recorded_case_v30() -> None:
    data = user_account_data(V30, CASE)
    # coll = 5e8, debt = 1e8, avgLT 8000, avgLTV 7000
    # HF = wadDiv(percentMul(5e8, 8000), 1e8) = 4e8 * 1e18 / 1e8 = 4e18
    # available = percentMul(5e8, 7000) - 1e8 = 3.5e8 - 1e8
    assert data.as_tuple() == (5 * 10**8, 10**8, 25 * 10**7, 8000, 7000, 4 * WAD)


def test_recorded_case_v35() -> None:
    data = user_account_data(V35, CASE)
    # coll = 4e8, debt = 2e8 (ceil), sumLT = 4e8*8000
    # HF = wadDiv(3.2e12, 2e8) // 10000 = 1.6e22 // 1e4 = 1.6e18; available = 2.8e8 - 2e8
    assert data.as_tuple() == (4 * 10**8, 2 * 10**8, 8 * 10**7, 8000, 7000, 16 * 10**17)


def test_v35_debt_in_base_rounds_up_one_wei() -> None:
    # 6 decimals, price 99999999 (~1 USD): debt 1 wei -> 99999999 // 1e6 = 99 (v3.0) vs ceil 100 (v3.5)
    usdc = reserve(2, config(0, 0, 0, 6), 99_999_999)
    weth = reserve(3, config(8000, 8250, 10500, 18), 2000 * 10**8)
    positions = [
        AaveUserReserve(weth, 10**15, 0, collateral_enabled=True, borrowing=False),
        AaveUserReserve(usdc, 0, 1, collateral_enabled=False, borrowing=True),
    ]
    assert user_account_data(V34, positions).total_debt_base == 99
    assert user_account_data(V35, positions).total_debt_base == 100


def test_v35_health_formula_differs_from_averaged_one() -> None:
    # Two collaterals whose averaged LT truncates: sumLT / coll = 8333.33 -> 8333 in v3.0.
    a = reserve(0, config(7000, 8000, 10500, 0), 10**8)
    b = reserve(1, config(7000, 9000, 10500, 0), 10**8)
    d = reserve(2, config(0, 0, 0, 0), 10**8)
    positions = [
        AaveUserReserve(a, 2, 0, collateral_enabled=True, borrowing=False),
        AaveUserReserve(b, 1, 0, collateral_enabled=True, borrowing=False),
        AaveUserReserve(d, 0, 3, collateral_enabled=False, borrowing=True),
    ]
    v30 = user_account_data(V30, positions)
    v35 = user_account_data(V35, positions)
    assert v30.current_liquidation_threshold == v35.current_liquidation_threshold == 8333
    # v3.0: percentMul(3e8, 8333) = 2.4999e8 -> wadDiv(249990000, 3e8) = 0.8333e18
    assert v30.health_factor == 833_300_000_000_000_000
    # v3.5: wadDiv(25000e8, 3e8) // 1e4 = 8333.33..e18 // 1e4 = 0.833333333333333333e18
    assert v35.health_factor == 833_333_333_333_333_333


def test_emode_price_source_and_params_pre_32() -> None:
    stable_a = reserve(0, config(7500, 8000, 10500, 6, emode=1), 100_100_000)
    stable_b = reserve(1, config(7500, 8000, 10500, 6, emode=1), 99_900_000)
    emode = AaveEModeCategory(
        1, ltv=9300, liquidation_threshold=9500, liquidation_bonus=10100, price_source_price=10**8
    )
    positions = [
        AaveUserReserve(stable_a, 1000 * 10**6, 0, collateral_enabled=True, borrowing=False),
        AaveUserReserve(stable_b, 0, 900 * 10**6, collateral_enabled=False, borrowing=True),
    ]
    data = user_account_data(V30, positions, emode)
    # both priced at the category's 1e8: coll 1000e8, debt 900e8, LT 9500
    assert data.total_collateral_base == 1000 * 10**8
    assert data.total_debt_base == 900 * 10**8
    assert data.current_liquidation_threshold == 9500
    assert data.health_factor == (950 * 10**8 * WAD + 450 * 10**8) // (900 * 10**8)
    # v3.2+: bitmap membership by reserve id, no price source
    bitmap_emode = AaveEModeCategory(1, 9300, 9500, 10100, collateral_bitmap=1 << 0)
    data32 = user_account_data(5, positions, bitmap_emode)
    assert data32.total_collateral_base == 1001 * 10**8
    assert data32.current_liquidation_threshold == 9500


def test_lt_zero_collateral_counts_only_from_v36() -> None:
    zero_lt = reserve(0, config(0, 0, 0, 0), 10**8)
    positions = [AaveUserReserve(zero_lt, 5, 0, collateral_enabled=True, borrowing=False)]
    assert user_account_data(V35, positions).total_collateral_base == 0
    assert user_account_data(10, positions).total_collateral_base == 5 * 10**8


def test_index_math_zero_dt_and_one_year() -> None:
    assert normalized_income(V30, 2 * RAY, 10**26, 100, 100) == 2 * RAY
    assert normalized_income(V30, RAY, 10**26, 0, SECONDS_PER_YEAR) == RAY + 10**26
    assert normalized_debt(V30, 3 * RAY, 10**26, 7, 7) == 3 * RAY


@given(
    rate=st.integers(min_value=0, max_value=RAY),  # up to 100% a year
    dt=st.integers(min_value=0, max_value=30 * 86400),
)
def test_compounding_is_close_to_exp_and_below_it(rate: int, dt: int) -> None:
    exact = math.exp(rate / RAY * dt / SECONDS_PER_YEAR)
    for revision in (V30, V34):
        factor = normalized_debt(revision, RAY, rate, 0, dt)
        assert factor >= RAY
        assert factor / RAY == pytest.approx(exact, rel=1e-7)
        assert (
            normalized_debt(revision, RAY, rate, 0, dt) >= normalized_income(revision, RAY, rate, 0, dt) - 1
        )


# --- properties --------------------------------------------------------------------------------
balances = st.integers(min_value=0, max_value=10**30)
prices = st.integers(min_value=1, max_value=10**14)
indexes = st.integers(min_value=RAY, max_value=3 * RAY)
decimals = st.sampled_from([0, 6, 8, 18])


@st.composite
def accounts(draw: st.DrawFn) -> list[AaveUserReserve]:
    n = draw(st.integers(min_value=1, max_value=4))
    out = []
    for rid in range(n):
        lt = draw(st.integers(min_value=0, max_value=9500))
        ltv = draw(st.integers(min_value=0, max_value=lt))
        res = reserve(rid, config(ltv, lt, 10500, draw(decimals)), draw(prices), draw(indexes), draw(indexes))
        out.append(
            AaveUserReserve(res, draw(balances), draw(balances), draw(st.booleans()), draw(st.booleans()))
        )
    return out


@settings(max_examples=200)
@given(accounts())
def test_v35_is_conservative_against_v30(positions: list[AaveUserReserve]) -> None:
    old = user_account_data(V34, positions)
    new = user_account_data(V35, positions)
    assert new.total_collateral_base <= old.total_collateral_base
    assert new.total_debt_base >= old.total_debt_base


@settings(max_examples=200)
@given(accounts(), st.sampled_from([V30, V34, V35, 10]))
def test_health_tracks_the_rational_formula(positions: list[AaveUserReserve], revision: int) -> None:
    data = user_account_data(revision, positions)
    if data.total_debt_base == 0:
        assert data.health_factor == MAX_UINT256
        return
    if data.total_collateral_base == 0:
        assert data.health_factor == 0
        return
    # exact ratio of the rounded totals; v3.0 rounds LT to an integer bps average first
    lt = Fraction(data.current_liquidation_threshold, 10_000)
    if revision >= V35:
        assert data.health_factor >= math.floor(data.total_collateral_base * lt * WAD / data.total_debt_base)
    else:
        # percentMul rounds half-up to a base unit: at most half a unit of collateral value off
        slack = Fraction(WAD, 2 * data.total_debt_base) + 1
        assert abs(data.health_factor - data.total_collateral_base * lt * WAD / data.total_debt_base) <= slack


@settings(max_examples=200)
@given(accounts(), st.sampled_from([V30, V35]), st.integers(min_value=2, max_value=10))
def test_health_is_monotone_in_prices_of_pure_collateral(
    positions: list[AaveUserReserve], revision: int, multiplier: int
) -> None:
    bumped = [
        replace(p, reserve=replace(p.reserve, price=p.reserve.price * multiplier))
        if p.collateral_enabled and not p.borrowing
        else p
        for p in positions
    ]
    assert (
        user_account_data(revision, bumped).health_factor
        >= user_account_data(revision, positions).health_factor
    )
