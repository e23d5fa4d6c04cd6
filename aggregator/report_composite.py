"""The ``composite`` object of ``crossmargin assess --json``: the risk engine's figures (design §4).

Shape::

    {"portfolio": str, "as_of": ISO-8601, "accounts": [AccountOut + "risk": AccountRiskOut],
     "composite": CompositeOut}

``CompositeOut`` carries ``chf``, ``chf_account``, ``stressed_chf``, ``stressed_scenario``, ``p_liq``,
``p_liq_stderr``, ``expected_liquidation_penalty_usd``, ``pooled_hf``, ``netted_hf``,
``fragmentation_cost_usd``, ``liquidation_ladder[]``, ``distance_to_liquidation[]``,
``hedge_breaks[]``, ``greeks``, ``scenarios[]``, ``warnings[]``, ``rebalancing[]`` (the advisor's moves,
``RebalanceMoveOut``; empty when no advice was asked for or nothing helps).

Infinity: every health-like float that is ``+inf`` (no requirement: the account cannot be
liquidated) is written as ``null``; NaN is written as ``null`` too. Floats are written as JSON numbers.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from aggregator.report import AccountOut, account_out
from risk.assessment import (
    AccountAssessment,
    Assessment,
    DistanceToLiquidation,
    Greeks,
    HedgeBreak,
    LadderStep,
    RebalanceMove,
    ScenarioResult,
)
from risk.model import Portfolio
from risk.rebalance import describe_move

__all__ = [
    "AccountRiskOut",
    "AssessAccountOut",
    "AssessReport",
    "CompositeOut",
    "RebalanceMoveOut",
    "build_assess_report",
    "finite",
]


def finite(value: float | None) -> float | None:
    """``inf``/``NaN`` -> ``None`` (JSON ``null``)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _fmap(values: dict[Any, float | None]) -> dict[str, float | None]:
    return {str(k): finite(v) for k, v in values.items()}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GreeksOut(_Out):
    delta: dict[str, float | None]
    delta_usd: dict[str, float | None]
    gamma: dict[str, float | None]
    vega: dict[str, float | None]
    theta: float | None

    @classmethod
    def of(cls, g: Greeks) -> GreeksOut:
        return cls(delta=_fmap(dict(g.delta)), delta_usd=_fmap(dict(g.delta_usd)), gamma=_fmap(dict(g.gamma)),
                   vega=_fmap(dict(g.vega)), theta=finite(g.theta))


class AccountRiskOut(_Out):
    health: float | None
    resources_usd: float | None
    requirement_usd: float | None
    model_drift: float | None
    liquidation_price: dict[str, float | None]
    time_to_liquidation_days: float | None
    p_liq: float | None
    greeks: GreeksOut | None

    @classmethod
    def of(cls, a: AccountAssessment) -> AccountRiskOut:
        return cls(
            health=finite(a.health), resources_usd=finite(a.resources_usd),
            requirement_usd=finite(a.requirement_usd), model_drift=finite(a.model_drift),
            liquidation_price=_fmap(dict(a.liquidation_price)),
            time_to_liquidation_days=finite(a.time_to_liquidation_days), p_liq=finite(a.p_liq),
            greeks=None if a.greeks is None else GreeksOut.of(a.greeks),
        )


class AssessAccountOut(AccountOut):
    """The scan's account shape plus the engine's per-account figures under ``risk``."""

    risk: AccountRiskOut | None


class LadderStepOut(_Out):
    factor: str
    direction: str
    move: float | None
    price: float | None
    account: str
    exposure_left_usd: dict[str, float | None]
    penalty_usd: float | None

    @classmethod
    def of(cls, s: LadderStep) -> LadderStepOut:
        return cls(factor=str(s.factor), direction=s.direction, move=finite(s.move), price=finite(s.price),
                   account=s.account_key, exposure_left_usd=_fmap(dict(s.exposure_left_usd)),
                   penalty_usd=finite(s.penalty_usd))


class DistanceOut(_Out):
    factor: str
    down: float | None
    up: float | None
    down_price: float | None
    up_price: float | None
    down_account: str | None
    up_account: str | None

    @classmethod
    def of(cls, d: DistanceToLiquidation) -> DistanceOut:
        return cls(factor=str(d.factor), down=finite(d.down), up=finite(d.up),
                   down_price=finite(d.down_price), up_price=finite(d.up_price),
                   down_account=d.down_account, up_account=d.up_account)


class HedgeBreakOut(_Out):
    factor: str
    leg_account: str
    trigger_move: float | None
    trigger_price: float | None
    unhedged_exposure_usd: float | None
    group_health_at_trigger: float | None

    @classmethod
    def of(cls, h: HedgeBreak) -> HedgeBreakOut:
        return cls(factor=str(h.factor), leg_account=h.leg_account, trigger_move=finite(h.trigger_move),
                   trigger_price=finite(h.trigger_price),
                   unhedged_exposure_usd=finite(h.unhedged_exposure_usd),
                   group_health_at_trigger=finite(h.group_health_at_trigger))


class ScenarioOut(_Out):
    name: str
    shocks: dict[str, float | None]
    vol_shock: float | None
    chf: float | None
    account_health: dict[str, float | None]

    @classmethod
    def of(cls, s: ScenarioResult) -> ScenarioOut:
        return cls(name=s.name, shocks=_fmap(dict(s.shocks)), vol_shock=finite(s.vol_shock),
                   chf=finite(s.chf), account_health=_fmap(dict(s.account_health)))


class RebalanceMoveOut(_Out):
    """One move of the rebalancing advice (``risk.rebalance``); figures are cumulative over the list."""

    source: str
    destination: str
    token: str
    amount: float
    usd: float | None
    action: str  # deposit | repay
    slow: bool  # a bridge step between two locations
    source_location: str | None
    destination_location: str | None
    delay_minutes: float
    chf_before: float | None
    chf_after: float | None
    stressed_chf_before: float | None
    stressed_chf_after: float | None
    text: str

    @classmethod
    def of(cls, m: RebalanceMove) -> RebalanceMoveOut:
        return cls(source=m.source, destination=m.destination, token=m.token, amount=m.amount,
                   usd=finite(m.usd), action=m.action, slow=m.slow, source_location=m.source_location,
                   destination_location=m.destination_location, delay_minutes=m.delay_minutes,
                   chf_before=finite(m.chf_before), chf_after=finite(m.chf_after),
                   stressed_chf_before=finite(m.stressed_chf_before),
                   stressed_chf_after=finite(m.stressed_chf_after), text=describe_move(m))


class CompositeOut(_Out):
    chf: float | None
    chf_account: str | None
    stressed_chf: float | None
    stressed_scenario: str | None
    p_liq: float | None
    p_liq_stderr: float | None
    expected_liquidation_penalty_usd: float | None
    pooled_hf: float | None
    netted_hf: float | None
    fragmentation_cost_usd: float | None
    liquidation_ladder: tuple[LadderStepOut, ...]
    distance_to_liquidation: tuple[DistanceOut, ...]
    hedge_breaks: tuple[HedgeBreakOut, ...]
    greeks: GreeksOut | None
    scenarios: tuple[ScenarioOut, ...]
    warnings: tuple[str, ...]
    rebalancing: tuple[RebalanceMoveOut, ...] = ()

    @classmethod
    def of(cls, a: Assessment, extra_warnings: tuple[str, ...] = ()) -> CompositeOut:
        return cls(
            chf=finite(a.chf), chf_account=a.chf_account, stressed_chf=finite(a.stressed_chf),
            stressed_scenario=a.stressed_scenario, p_liq=finite(a.p_liq), p_liq_stderr=finite(a.p_liq_stderr),
            expected_liquidation_penalty_usd=finite(a.expected_liquidation_penalty_usd),
            pooled_hf=finite(a.pooled_hf), netted_hf=finite(a.netted_hf),
            fragmentation_cost_usd=finite(a.fragmentation_cost_usd),
            liquidation_ladder=tuple(LadderStepOut.of(s) for s in a.liquidation_ladder),
            distance_to_liquidation=tuple(DistanceOut.of(d) for d in a.distance_to_liquidation),
            hedge_breaks=tuple(HedgeBreakOut.of(h) for h in a.hedge_breaks),
            greeks=None if a.greeks is None else GreeksOut.of(a.greeks),
            scenarios=tuple(ScenarioOut.of(s) for s in a.scenarios),
            warnings=(*extra_warnings, *a.warnings),
            rebalancing=tuple(RebalanceMoveOut.of(m) for m in a.rebalancing),
        )


class AssessReport(_Out):
    portfolio: str
    as_of: datetime
    accounts: tuple[AssessAccountOut, ...]
    composite: CompositeOut


def build_assess_report(
    portfolio: Portfolio, assessment: Assessment, extra_warnings: tuple[str, ...] = ()
) -> AssessReport:
    """The ``assess --json`` document: every account in the scan's shape plus its risk figures."""
    by_key = {a.account_key: a for a in assessment.accounts}
    accounts = []
    for account in portfolio.accounts:
        base = account_out(account)
        risk = by_key.get(account.key)
        risk_out = None if risk is None else AccountRiskOut.of(risk)
        accounts.append(AssessAccountOut(**base.model_dump(), risk=risk_out))
    return AssessReport(
        portfolio=assessment.portfolio, as_of=assessment.as_of, accounts=tuple(accounts),
        composite=CompositeOut.of(assessment, extra_warnings),
    )


# ``aggregator.report``'s scan document embeds the models above (``risk``, ``composite``): resolve its
# annotations now that they exist (whichever of the two modules was imported first).
import sys  # noqa: E402

from aggregator.report import ScanAccountOut, ScanReport  # noqa: E402

ScanAccountOut.model_rebuild(_types_namespace={"_composite": sys.modules[__name__]})
ScanReport.model_rebuild(_types_namespace={"_composite": sys.modules[__name__]})
