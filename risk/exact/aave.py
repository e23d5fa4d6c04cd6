"""Aave V3 ``getUserAccountData`` reproduced in integers, per ``POOL_REVISION``.

Sources (see ``shared/protocols/lending.md`` §1.2-1.4): ``GenericLogic.calculateUserAccountData``,
``GenericLogic.calculateAvailableBorrows``, ``ReserveLogic.getNormalizedIncome/Debt``,
``MathUtils.calculateLinearInterest/CompoundedInterest``, ``TokenMath`` (v3.5+),
``ReserveConfiguration`` and ``UserConfiguration`` bit layouts.

Rounding by revision:

* revision <= 8 (v3.0-v3.4): balances ``rayMul`` half-up; base value ``bal*price // unit``;
  ``HF = wadDiv(percentMul(totalColl, sumLT // totalColl), totalDebt)``;
  available borrows ``percentMul`` (half-up), 0 when below the debt.
* revision >= 9 (v3.5+): aToken ``rayMulFloor``, vToken ``rayMulCeil``; debt in base ``mulDivCeil``;
  ``HF = wadDiv(sumLT, totalDebt) // 10000``; available borrows ``percentMulFloor``, 0 when <= debt.

E-mode: revision <= 4 (v3.0/3.1) uses the asset's category in configuration bits 168-175 and the
category's optional ``priceSource`` (its price replaces the price of every reserve of the category,
collateral and debt); revision >= 5 (v3.2+) uses the category's collateral bitmap indexed by reserve
id; revision >= 10 (v3.6) adds the LTV-zero bitmap and counts every collateral-enabled reserve even
with LT 0; revision >= 11 (v3.7) adds isolated categories (LTV 0 outside the bitmap). Stable debt is
added to the variable debt for revision <= 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from risk.exact.wadray import (
    MAX_UINT256,
    PERCENTAGE_FACTOR,
    RAY,
    mul_div_ceil,
    percent_mul,
    percent_mul_floor,
    ray_mul,
    ray_mul_ceil,
    ray_mul_floor,
    wad_div,
)

__all__ = [
    "SECONDS_PER_YEAR",
    "AaveAccountData",
    "AaveEModeCategory",
    "AaveReserveState",
    "AaveUserReserve",
    "EffectiveParams",
    "ReserveConfiguration",
    "a_token_balance",
    "asset_price",
    "decode_reserve_configuration",
    "effective_params",
    "normalized_debt",
    "normalized_income",
    "user_account_data",
    "user_config_flags",
    "v_token_balance",
]

SECONDS_PER_YEAR = 365 * 24 * 3600

# Revision thresholds (PoolInstance.POOL_REVISION at each tag, lending.md §1.10).
_LAST_STABLE_DEBT_REVISION = 4  # v3.1: stable debt, per-asset e-mode category with price source
_FIRST_BITMAP_EMODE_REVISION = 5  # v3.2
_FIRST_NEW_COMPOUNDING_REVISION = 8  # v3.4: x + x^2/2 + x^3/6 compounding
_FIRST_FLOOR_CEIL_REVISION = 9  # v3.5
_FIRST_LT_ZERO_COUNTS_REVISION = 10  # v3.6: ltvzero bitmap, collateral counts with LT 0
_FIRST_ISOLATED_EMODE_REVISION = 11  # v3.7


def _bits(value: int, start: int, width: int) -> int:
    return (value >> start) & ((1 << width) - 1)


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """The fields of ``ReserveConfigurationMap`` the risk figures need (bps for percentages)."""

    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    decimals: int
    active: bool
    frozen: bool
    borrowing_enabled: bool
    paused: bool
    emode_category: int  # bits 168-175, meaningful for revision <= 4 only
    debt_ceiling: int  # bits 212-251, 2 decimals


def decode_reserve_configuration(bitmap: int) -> ReserveConfiguration:
    """Decode ``Pool.getConfiguration(asset).data`` (lending.md §1.4)."""
    if not 0 <= bitmap <= MAX_UINT256:
        raise ValueError("reserve configuration is not a uint256")
    return ReserveConfiguration(
        ltv=_bits(bitmap, 0, 16),
        liquidation_threshold=_bits(bitmap, 16, 16),
        liquidation_bonus=_bits(bitmap, 32, 16),
        decimals=_bits(bitmap, 48, 8),
        active=bool(_bits(bitmap, 56, 1)),
        frozen=bool(_bits(bitmap, 57, 1)),
        borrowing_enabled=bool(_bits(bitmap, 58, 1)),
        paused=bool(_bits(bitmap, 60, 1)),
        emode_category=_bits(bitmap, 168, 8),
        debt_ceiling=_bits(bitmap, 212, 40),
    )


def user_config_flags(user_config: int, reserve_id: int) -> tuple[bool, bool]:
    """``(borrowing, using_as_collateral)``: bits ``2*id`` and ``2*id+1`` of the user configuration
    (``id`` is ``getReserveData(asset).id``, not the index in ``getReservesList``)."""
    if not 0 <= reserve_id < 128:
        raise ValueError(f"reserve id {reserve_id} is outside 0..127")
    return bool((user_config >> (2 * reserve_id)) & 1), bool((user_config >> (2 * reserve_id + 1)) & 1)


def normalized_income(
    revision: int, liquidity_index: int, liquidity_rate: int, last_update: int, now: int
) -> int:
    """``ReserveLogic.getNormalizedIncome``: ``rayMul(RAY + rate*dt // YEAR, liquidityIndex)``."""
    del revision  # the linear formula and its half-up rayMul are the same in every revision
    if now < last_update:
        raise ValueError("block timestamp is before the reserve's last update")
    if now == last_update:
        return liquidity_index
    return ray_mul(RAY + liquidity_rate * (now - last_update) // SECONDS_PER_YEAR, liquidity_index)


def _compounded_interest(revision: int, rate: int, dt: int) -> int:
    if dt == 0:
        return RAY
    if revision >= _FIRST_NEW_COMPOUNDING_REVISION:
        x = rate * dt // SECONDS_PER_YEAR
        return RAY + x + ray_mul(x, x // 2 + ray_mul(x, x // 6))
    exp_minus_one = dt - 1
    exp_minus_two = dt - 2 if dt > 2 else 0
    base_power_two = ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul(base_power_two, rate) // SECONDS_PER_YEAR
    second = dt * exp_minus_one * base_power_two // 2
    third = dt * exp_minus_one * exp_minus_two * base_power_three // 6
    return RAY + rate * dt // SECONDS_PER_YEAR + second + third


def normalized_debt(revision: int, borrow_index: int, borrow_rate: int, last_update: int, now: int) -> int:
    """``ReserveLogic.getNormalizedDebt``: ``rayMul(compounded(rate, dt), variableBorrowIndex)``;
    binomial expansion up to v3.3, ``x + x²/2 + x³/6`` in rays from v3.4 (revision 8)."""
    if now < last_update:
        raise ValueError("block timestamp is before the reserve's last update")
    if now == last_update:
        return borrow_index
    return ray_mul(_compounded_interest(revision, borrow_rate, now - last_update), borrow_index)


def a_token_balance(revision: int, scaled: int, income: int) -> int:
    """``aToken.balanceOf``: half-up before v3.5, floor from v3.5 (``TokenMath.getATokenBalance``)."""
    return (
        ray_mul_floor(scaled, income) if revision >= _FIRST_FLOOR_CEIL_REVISION else ray_mul(scaled, income)
    )


def v_token_balance(revision: int, scaled: int, debt_index: int) -> int:
    """``vToken.balanceOf``: half-up before v3.5, ceil from v3.5 (``TokenMath.getVTokenBalance``)."""
    if revision >= _FIRST_FLOOR_CEIL_REVISION:
        return ray_mul_ceil(scaled, debt_index)
    return ray_mul(scaled, debt_index)


@dataclass(frozen=True, slots=True)
class AaveReserveState:
    """One reserve at the pinned block: ``getReserveData`` id and configuration, the oracle price
    (base currency units), and the normalized income/debt (``getReserveNormalizedIncome/Debt``)."""

    asset: str
    reserve_id: int
    configuration: int
    price: int
    normalized_income: int
    normalized_debt: int

    @property
    def config(self) -> ReserveConfiguration:
        return decode_reserve_configuration(self.configuration)


@dataclass(frozen=True, slots=True)
class AaveUserReserve:
    """A user's balances in one reserve and the two user-configuration bits for its id."""

    reserve: AaveReserveState
    scaled_a_balance: int
    scaled_v_balance: int
    collateral_enabled: bool
    borrowing: bool
    stable_debt: int = 0  # stableDebtToken.balanceOf, revision <= 4 only


@dataclass(frozen=True, slots=True)
class AaveEModeCategory:
    """The user's e-mode category (``getUserEMode`` != 0) as the Pool stores it.

    ``price_source_price`` is ``oracle.getAssetPrice(priceSource)`` for revision <= 4 (0 when the
    category has no price source); the bitmaps are for revision >= 5.
    """

    category_id: int
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    price_source_price: int = 0
    collateral_bitmap: int = 0
    ltvzero_bitmap: int = 0
    isolated: bool = False


@dataclass(frozen=True, slots=True)
class EffectiveParams:
    """The LTV, LT and bonus (bps) that apply to one reserve for one user, e-mode applied."""

    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    in_emode: bool


def _in_emode(revision: int, reserve: AaveReserveState, emode: AaveEModeCategory | None) -> bool:
    if emode is None or emode.category_id == 0:
        return False
    if revision <= _LAST_STABLE_DEBT_REVISION:
        return reserve.config.emode_category == emode.category_id
    return bool((emode.collateral_bitmap >> reserve.reserve_id) & 1)


def effective_params(
    revision: int, reserve: AaveReserveState, emode: AaveEModeCategory | None
) -> EffectiveParams:
    """LTV/LT/bonus for this reserve: the e-mode values when the reserve is in the user's category
    (v3.6+: LTV 0 when in the LTV-zero bitmap; v3.7: LTV 0 outside the bitmap of an isolated category)."""
    cfg = reserve.config
    inside = _in_emode(revision, reserve, emode)
    if emode is not None and inside:
        ltv = emode.ltv
        if revision >= _FIRST_LT_ZERO_COUNTS_REVISION and (emode.ltvzero_bitmap >> reserve.reserve_id) & 1:
            ltv = 0
        return EffectiveParams(ltv, emode.liquidation_threshold, emode.liquidation_bonus, True)
    ltv = cfg.ltv
    if (
        revision >= _FIRST_ISOLATED_EMODE_REVISION
        and emode is not None
        and emode.category_id != 0
        and emode.isolated
    ):
        ltv = 0
    return EffectiveParams(ltv, cfg.liquidation_threshold, cfg.liquidation_bonus, False)


def asset_price(revision: int, reserve: AaveReserveState, emode: AaveEModeCategory | None) -> int:
    """The price ``calculateUserAccountData`` uses: the e-mode price source's price for reserves of
    the user's category (revision <= 4 with a price source), else the oracle price."""
    if (
        revision <= _LAST_STABLE_DEBT_REVISION
        and emode is not None
        and emode.price_source_price != 0
        and _in_emode(revision, reserve, emode)
    ):
        return emode.price_source_price
    return reserve.price


@dataclass(frozen=True, slots=True)
class AaveAccountData:
    """The six ``getUserAccountData`` fields, in its order and units (base currency, bps, wad)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.total_collateral_base,
            self.total_debt_base,
            self.available_borrows_base,
            self.current_liquidation_threshold,
            self.ltv,
            self.health_factor,
        )


NO_POSITION = AaveAccountData(0, 0, 0, 0, 0, MAX_UINT256)


def user_account_data(
    revision: int, reserves: Sequence[AaveUserReserve], emode: AaveEModeCategory | None = None
) -> AaveAccountData:
    """Reproduce ``Pool.getUserAccountData`` exactly for ``revision`` (see the module docstring)."""
    if revision < 1:
        raise ValueError(f"POOL_REVISION {revision} is not a v3 revision")
    floor_ceil = revision >= _FIRST_FLOOR_CEIL_REVISION
    flagged = [r for r in reserves if r.collateral_enabled or r.borrowing]
    if not flagged:
        return NO_POSITION
    total_collateral = total_debt = sum_ltv = sum_lt = 0
    for user_reserve in sorted(flagged, key=lambda r: r.reserve.reserve_id):
        reserve = user_reserve.reserve
        cfg = reserve.config
        unit = 10**cfg.decimals
        price = asset_price(revision, reserve, emode)
        counts = user_reserve.collateral_enabled and (
            cfg.liquidation_threshold != 0 or revision >= _FIRST_LT_ZERO_COUNTS_REVISION
        )
        if counts:
            balance = a_token_balance(revision, user_reserve.scaled_a_balance, reserve.normalized_income)
            value = balance * price // unit
            total_collateral += value
            params = effective_params(revision, reserve, emode)
            if revision >= _FIRST_LT_ZERO_COUNTS_REVISION or cfg.ltv != 0:
                sum_ltv += value * params.ltv
            sum_lt += value * params.liquidation_threshold
        if user_reserve.borrowing:
            debt = v_token_balance(revision, user_reserve.scaled_v_balance, reserve.normalized_debt)
            if revision <= _LAST_STABLE_DEBT_REVISION:
                debt += user_reserve.stable_debt
            total_debt += mul_div_ceil(debt, price, unit) if floor_ceil else debt * price // unit
    avg_ltv = sum_ltv // total_collateral if total_collateral else 0
    avg_lt = sum_lt // total_collateral if total_collateral else 0
    if total_debt == 0:
        health = MAX_UINT256
    elif floor_ceil:
        health = wad_div(sum_lt, total_debt) // PERCENTAGE_FACTOR
    else:
        health = wad_div(percent_mul(total_collateral, avg_lt), total_debt)
    borrowable = (
        percent_mul_floor(total_collateral, avg_ltv) if floor_ceil else percent_mul(total_collateral, avg_ltv)
    )
    if floor_ceil:
        available = borrowable - total_debt if borrowable > total_debt else 0
    else:
        available = borrowable - total_debt if borrowable >= total_debt else 0
    return AaveAccountData(total_collateral, total_debt, available, avg_lt, avg_ltv, health)
