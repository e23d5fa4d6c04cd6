"""Small, explicit accounts and assessments for the alert tests (numbers chosen by hand)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from risk.assessment import AccountAssessment, Assessment, DistanceToLiquidation, HedgeBreak
from risk.model import (
    AccountStatus,
    AsOf,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    Position,
    PositionKind,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ETH = FactorId("ETH")
WALLET_A = "0x" + "a1" * 20
WALLET_B = "0x" + "b2" * 20
LENDING = LendingParams(
    ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05")
)


def account(
    wallet: str = WALLET_A,
    deployment: str = "aave_v3:ethereum",
    *,
    eth_price: str = "2800",
    status: AccountStatus = AccountStatus.OK,
    venue_health: str | None = "1.5",
    raw: dict[str, object] | None = None,
) -> MarginAccount:
    positions: tuple[Position, ...] = ()
    if status is not AccountStatus.UNAVAILABLE:
        positions = (
            Position(
                token="WETH",
                factor=ETH,
                kind=PositionKind.COLLATERAL,
                quantity=Decimal("10"),
                price=Decimal(eth_price),
                lending=LENDING,
            ),
            Position(
                token="USDC",
                factor=FactorId("USD"),
                kind=PositionKind.DEBT,
                quantity=Decimal("-15000"),
                price=Decimal("1"),
            ),
        )
    return MarginAccount(
        venue=deployment.split(":", maxsplit=1)[0],
        deployment=deployment,
        account_id=wallet,
        wallet=wallet,
        margin_model=LendingModel(),
        positions=positions,
        as_of=AsOf(timestamp=T0, chain="ethereum", block_number=21_000_000, block_hash="0x" + "cd" * 32),
        status=status,
        status_reason=None if status is AccountStatus.OK else "RPC timed out twice",
        venue_health=None if venue_health is None else Decimal(venue_health),
        raw=raw or {},
    )


def figures(acct: MarginAccount, health: float, *, venue: float | None = 1.5) -> AccountAssessment:
    return AccountAssessment(
        account_key=acct.key,
        health=health,
        resources_usd=23_100.0,
        requirement_usd=23_100.0 / health if math.isfinite(health) and health > 0 else 0.0,
        venue_health=venue,
        model_drift=None if venue is None else health - venue,
        liquidation_price={ETH: 2800.0 / health if health > 0 else None},
        time_to_liquidation_days=None,
        p_liq=0.03,
        greeks=None,
    )


def assessment(
    accounts: list[MarginAccount],
    healths: list[float],
    *,
    portfolio: str = "fund",
    at: datetime = T0,
    stressed: float | None = None,
    p_liq: float | None = 0.02,
    distances: tuple[DistanceToLiquidation, ...] = (),
    hedge_breaks: tuple[HedgeBreak, ...] = (),
) -> Assessment:
    assessed = [figures(a, h) for a, h in zip(accounts, healths, strict=True) if a.status is AccountStatus.OK]
    chf = min((f.health for f in assessed), default=math.inf)
    setter = min(assessed, key=lambda f: f.health).account_key if assessed else None
    return Assessment(
        portfolio=portfolio,
        as_of=at,
        accounts=tuple(assessed),
        chf=chf,
        chf_account=setter,
        stressed_chf=chf * 0.8 if stressed is None else stressed,
        stressed_scenario="ETH -20%",
        p_liq=p_liq,
        p_liq_stderr=0.001 if p_liq is not None else None,
        expected_liquidation_penalty_usd=None,
        pooled_hf=math.inf,
        netted_hf=2.0,
        fragmentation_cost_usd=0.0,
        scenarios=(),
        distance_to_liquidation=distances,
        liquidation_ladder=(),
        hedge_breaks=hedge_breaks,
        greeks=None,
    )


def with_time(a: Assessment, at: datetime) -> Assessment:
    return replace(a, as_of=at)
