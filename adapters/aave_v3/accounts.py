"""One wallet's Aave V3 reads -> :class:`risk.model.MarginAccount` (positions, venue and exact health).

Positions, in reserve-id order:

- ``COLLATERAL``: aToken balance > 0, the user's collateral bit (``2*id+1``) set and the reserve
  counting in the health factor (LT != 0, or any LT from v3.6); ``LendingParams`` are the effective
  LTV / LT / bonus with e-mode applied (:func:`risk.exact.aave.effective_params`);
- ``SUPPLY``: aToken balance > 0 that does not count as collateral;
- ``DEBT``: variable (+ stable, revision <= 4) debt balance, negative quantity.

Balances are the tokens' own ``balanceOf`` reproduced from ``scaledBalanceOf`` and the Pool's normalized
income/debt with the revision's rounding. ``price`` is the price the Pool uses (oracle price, or the
e-mode category's price source before v3.2) divided by ``BASE_CURRENCY_UNIT``; the quote is USD.

``venue_health`` is ``getUserAccountData().healthFactor`` (wad -> ``Decimal``, max uint -> Infinity).
``raw`` carries, as integers: ``exact_health_wad`` (ours, :func:`risk.exact.aave.user_account_data`),
``exact_account_data`` and ``venue_account_data`` (the six fields each), ``exact_matches_venue``,
``pool_revision``, ``emode_category``, ``base_currency_unit``; and the oracle freshness of every
reserve with a position (:func:`adapters.oracle_freshness.freshness_raw`: ``oracle_stale_seconds``,
``oracle_feeds``, ...), from the reserves' ``AaveOracle.getSourceOfAsset`` feeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.assets import AssetMap
from adapters.base import BlockRef
from adapters.lending_common import fraction_bps, units, wad_health
from adapters.oracle_freshness import FeedReading, freshness_raw
from risk.exact.aave import (
    AaveEModeCategory,
    AaveReserveState,
    AaveUserReserve,
    a_token_balance,
    asset_price,
    effective_params,
    user_account_data,
    user_config_flags,
    v_token_balance,
)
from risk.model import (
    AsOf,
    LendingModel,
    LendingParams,
    MarginAccount,
    Position,
    PositionKind,
    PriceSource,
)

__all__ = ["WalletReads", "build_account", "lending_model"]

_FIRST_LT_ZERO_COUNTS_REVISION = 10
_FIRST_FULL_CLOSE_FACTOR_REVISION = 7  # v3.3: 100% close factor by default


@dataclass(frozen=True, slots=True)
class WalletReads:
    """Everything read for one wallet at the pinned block (integers as the contracts return them)."""

    user_config: int
    emode_category: int
    venue_account_data: tuple[int, int, int, int, int, int]
    scaled_a: Mapping[str, int]  # asset -> aToken.scaledBalanceOf
    scaled_v: Mapping[str, int]  # asset -> variableDebtToken.scaledBalanceOf (borrowed reserves)
    stable: Mapping[str, int]  # asset -> stableDebtToken.balanceOf (revision <= 4, borrowed reserves)


def lending_model(revision: int) -> LendingModel:
    close = Decimal(1) if revision >= _FIRST_FULL_CLOSE_FACTOR_REVISION else Decimal("0.5")
    return LendingModel(liquidation_close_factor=close)


def _bonus(bps: int) -> Decimal:
    return fraction_bps(bps - 10_000) if bps > 10_000 else Decimal(0)


def build_account(
    *,
    venue: str,
    deployment: str,
    wallet: str,
    as_of: AsOf,
    revision: int,
    base_currency_unit: int,
    reserves: tuple[AaveReserveState, ...],
    symbols: Mapping[str, str],
    emode: AaveEModeCategory | None,
    reads: WalletReads,
    assets: AssetMap,
    feeds: Mapping[str, FeedReading] | None = None,
    block: BlockRef | None = None,
) -> MarginAccount | None:
    """The wallet's account, or ``None`` when it has nothing on this deployment. ``feeds`` (reserve
    asset -> its price feed's reading) and the pinned block give the oracle freshness entries."""
    user_reserves: list[AaveUserReserve] = []
    held: list[str] = []
    positions: list[Position] = []
    warnings: list[str] = []
    for reserve in sorted(reserves, key=lambda r: r.reserve_id):
        borrowing, collateral = user_config_flags(reads.user_config, reserve.reserve_id)
        scaled_a = reads.scaled_a.get(reserve.asset, 0)
        scaled_v = reads.scaled_v.get(reserve.asset, 0) if borrowing else 0
        stable = reads.stable.get(reserve.asset, 0) if borrowing else 0
        if borrowing or collateral:
            user_reserves.append(AaveUserReserve(reserve, scaled_a, scaled_v, collateral, borrowing, stable))
        cfg = reserve.config
        symbol = symbols.get(reserve.asset, reserve.asset)
        info = assets.resolve(symbol)
        if not info.known:
            warnings.append(f"unknown symbol {symbol!r} is its own factor {info.factor}")
        price = Decimal(asset_price(revision, reserve, emode)) / Decimal(base_currency_unit)
        supplied = a_token_balance(revision, scaled_a, reserve.normalized_income)
        owed = v_token_balance(revision, scaled_v, reserve.normalized_debt) + stable
        if supplied > 0 or owed > 0:
            held.append(reserve.asset)
        if supplied > 0:
            counts = collateral and (
                cfg.liquidation_threshold != 0 or revision >= _FIRST_LT_ZERO_COUNTS_REVISION
            )
            params = effective_params(revision, reserve, emode)
            positions.append(
                Position(
                    token=symbol,
                    factor=info.factor,
                    kind=PositionKind.COLLATERAL if counts else PositionKind.SUPPLY,
                    quantity=units(supplied, cfg.decimals),
                    price=price,
                    price_source=PriceSource.ORACLE,
                    basis_factor=info.basis,
                    lending=LendingParams(
                        ltv=fraction_bps(params.ltv),
                        liquidation_threshold=fraction_bps(params.liquidation_threshold),
                        liquidation_bonus=_bonus(params.liquidation_bonus),
                    ),
                )
            )
        if owed > 0:
            positions.append(
                Position(
                    token=symbol,
                    factor=info.factor,
                    kind=PositionKind.DEBT,
                    quantity=-units(owed, cfg.decimals),
                    price=price,
                    price_source=PriceSource.ORACLE,
                    basis_factor=info.basis,
                )
            )
    if not positions and reads.user_config == 0:
        return None
    exact = user_account_data(revision, user_reserves, emode)
    venue_data = reads.venue_account_data
    freshness: dict[str, object] = {}
    if feeds is not None and block is not None:
        freshness = freshness_raw((feeds[a] for a in held if a in feeds), block)
    return MarginAccount(
        venue=venue,
        deployment=deployment,
        account_id=wallet,
        wallet=wallet,
        margin_model=lending_model(revision),
        positions=tuple(positions),
        as_of=as_of,
        venue_health=wad_health(venue_data[5]),
        raw={
            "exact_health_wad": exact.health_factor,
            "exact_account_data": exact.as_tuple(),
            "venue_account_data": venue_data,
            "exact_matches_venue": exact.as_tuple() == venue_data,
            "pool_revision": revision,
            "emode_category": reads.emode_category,
            "base_currency_unit": base_currency_unit,
            "warnings": warnings,
            # symbol -> underlying token address of every position (adapters.wallet_balances)
            "token_addresses": {
                symbols.get(r.asset, r.asset): r.asset
                for r in reserves
                if symbols.get(r.asset, r.asset) in {p.token for p in positions}
            },
            **freshness,
        },
    )
