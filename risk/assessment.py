"""What the engine says about one portfolio at one ``as_of`` (design section 4, the contract).

Healths are floats; ``math.inf`` means "no requirement" (never a sentinel). Serializers turn
``inf`` into ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from risk.model import FactorId

__all__ = [
    "AccountAssessment",
    "Assessment",
    "DistanceToLiquidation",
    "Greeks",
    "HedgeBreak",
    "LadderStep",
    "RebalanceMove",
    "ScenarioResult",
]


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities per factor: delta in factor units and USD, gamma (units per unit), vega (USD per
    vol point, i.e. per 0.01 of IV), theta (USD per day)."""

    delta: dict[FactorId, float]
    delta_usd: dict[FactorId, float]
    gamma: dict[FactorId, float]
    vega: dict[FactorId, float]
    theta: float


@dataclass(frozen=True, slots=True)
class AccountAssessment:
    account_key: str
    health: float  # at current prices; inf for no requirement
    resources_usd: float
    requirement_usd: float
    venue_health: float | None
    model_drift: float | None  # health - venue_health, None when the venue publishes no figure
    liquidation_price: dict[FactorId, float | None]  # per factor the account is exposed to, others fixed
    time_to_liquidation_days: float | None  # at constant prices; None when it never liquidates
    p_liq: float | None
    greeks: Greeks | None


@dataclass(frozen=True, slots=True)
class DistanceToLiquidation:
    factor: FactorId | Literal["market"]
    down: float | None  # smallest relative move down (0.12 = -12%) that brings CHF below 1
    up: float | None
    down_price: float | None
    up_price: float | None
    down_account: str | None
    up_account: str | None


@dataclass(frozen=True, slots=True)
class LadderStep:
    factor: FactorId | Literal["market"]
    direction: Literal["down", "up"]
    move: float  # relative move of the factor at which the account liquidates
    price: float  # factor price at that move
    account_key: str
    exposure_left_usd: dict[FactorId, float]  # book's net delta (USD) after this liquidation
    penalty_usd: float


@dataclass(frozen=True, slots=True)
class HedgeBreak:
    factor: FactorId
    leg_account: str  # the leg that liquidates first
    trigger_move: float
    trigger_price: float
    unhedged_exposure_usd: float  # net delta left once the leg is gone
    group_health_at_trigger: float  # pooled health of the group at the trigger (> 1: solvent as a whole)


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    shocks: dict[FactorId, float]  # relative factor moves
    vol_shock: float
    chf: float
    account_health: dict[str, float]


@dataclass(frozen=True, slots=True)
class RebalanceMove:
    source: str
    destination: str
    token: str
    amount: float
    slow: bool
    chf_before: float
    chf_after: float
    stressed_chf_before: float
    stressed_chf_after: float
    # Added for the rebalancing advisor (risk.rebalance); the figures above are cumulative: "before"
    # is the book after the moves listed earlier, "after" includes this one.
    usd: float = 0.0  # amount x the token's current USD price
    action: Literal["deposit", "repay"] = "deposit"  # at the destination: add collateral/margin, or repay
    source_location: str | None = None  # chain (or off-chain venue) the token leaves from
    destination_location: str | None = None
    delay_minutes: float = 0.0  # expected transfer time; > 0 for slow (bridged) moves


@dataclass(frozen=True, slots=True)
class Assessment:
    portfolio: str
    as_of: datetime
    accounts: tuple[AccountAssessment, ...]
    chf: float
    chf_account: str | None
    stressed_chf: float
    stressed_scenario: str | None
    p_liq: float | None
    p_liq_stderr: float | None
    expected_liquidation_penalty_usd: float | None
    pooled_hf: float
    netted_hf: float
    fragmentation_cost_usd: float
    scenarios: tuple[ScenarioResult, ...]
    distance_to_liquidation: tuple[DistanceToLiquidation, ...]
    liquidation_ladder: tuple[LadderStep, ...]
    hedge_breaks: tuple[HedgeBreak, ...]
    greeks: Greeks | None
    warnings: tuple[str, ...] = ()
    rebalancing: tuple[RebalanceMove, ...] = field(default=())
