"""Build realistic margin accounts and assessments for storage tests and benchmarks."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

from risk.assessment import AccountAssessment, Assessment
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

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LENDING = LendingParams(
    ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05")
)


def wallet(i: int) -> str:
    return "0x" + f"{i + 1:040x}"


def account(i: int, *, positions: int = 4, at: datetime = T0, block: int = 20_000_000) -> MarginAccount:
    """A lending account with ``positions`` positions (collateral and debt alternating), exact wad-like values."""
    items = []
    for k in range(positions):
        if k % 2 == 0:
            items.append(
                Position(
                    token=f"TOK{k}",
                    factor=FactorId("ETH"),
                    kind=PositionKind.COLLATERAL,
                    quantity=Decimal(f"{i + 1}.{k:02d}1234567890123456789"),
                    price=Decimal("3012.123456789012345678"),
                    lending=LENDING,
                )
            )
        else:
            items.append(
                Position(
                    token=f"TOK{k}",
                    factor=FactorId("USD"),
                    kind=PositionKind.DEBT,
                    quantity=-Decimal(f"{1000 * (i + 1)}.000001"),
                    price=Decimal("1.000000000000000001"),
                    basis_factor=FactorId("USDC/USD"),
                )
            )
    return MarginAccount(
        venue="aave_v3",
        deployment="aave_v3:ethereum",
        account_id=wallet(i),
        wallet=wallet(i),
        margin_model=LendingModel(),
        positions=tuple(items),
        as_of=AsOf(timestamp=at, chain="ethereum", block_number=block, block_hash="0x" + "ab" * 32),
        venue_health=Decimal("1.234567890123456789"),
    )


def unavailable(i: int, *, at: datetime = T0) -> MarginAccount:
    return MarginAccount.unavailable(
        venue="hyperliquid",
        deployment="hyperliquid",
        account_id=wallet(i),
        wallet=wallet(i),
        margin_model=LendingModel(),
        as_of=AsOf(timestamp=at),
        reason="HTTP 503 after 3 retries",
    )


def assessment(
    portfolio: str, accounts: list[MarginAccount], *, at: datetime = T0, chf: float = 1.5
) -> Assessment:
    figures = tuple(
        AccountAssessment(
            account_key=a.key,
            health=chf + n if n else chf,
            resources_usd=1000.0,
            requirement_usd=500.0,
            venue_health=1.2345,
            model_drift=1e-9,
            liquidation_price={FactorId("ETH"): 1500.0},
            time_to_liquidation_days=None,
            p_liq=0.01,
            greeks=None,
        )
        for n, a in enumerate(accounts)
        if a.status is AccountStatus.OK
    )
    return Assessment(
        portfolio=portfolio,
        as_of=at,
        accounts=figures,
        chf=chf,
        chf_account=accounts[0].key if accounts else None,
        stressed_chf=chf * 0.7,
        stressed_scenario="ETH -33%",
        p_liq=0.02,
        p_liq_stderr=0.001,
        expected_liquidation_penalty_usd=12.5,
        pooled_hf=math.inf,
        netted_hf=2.0,
        fragmentation_cost_usd=1234.5,
        scenarios=(),
        distance_to_liquidation=(),
        liquidation_ladder=(),
        hedge_breaks=(),
        greeks=None,
    )
