"""The ``scan --json`` document of one pipeline cycle (``aggregator.pipeline.run_cycle``).

Builds ``aggregator.report.ScanReport`` from the scan, the engine's assessment, the market inputs and
the alert decisions:

* ``accounts[]``: the scan's account shape (``aggregator.report.account_out``) plus ``risk`` (the
  engine's ``AccountRiskOut``: health, resources, requirement, model drift, liquidation price per
  factor, days to liquidation, p_liq, greeks); ``health`` / ``health_source``: the exact lending
  formula for lending accounts (``"lending_formula"``), the engine's figure for every other margin
  model (``"risk"``, the float written in its shortest exact decimal form); ``null`` + ``null`` for an
  account that was not assessed (unavailable);
* ``composite``: ``aggregator.report_composite.CompositeOut`` (the same object as
  ``crossmargin assess --json``), its ``warnings`` led by the market-input warnings;
* ``market``, ``alerts``, ``critical_chf``, ``snapshot_id``, ``portfolio``;
* ``idle_balances``: the wallets' non-zero idle balances per chain and token (``idle_out``), with
  their USD price and value at the cycle's factor prices;
* ``warnings``: the scan's warnings, then every composite warning (unavailable and stale accounts,
  model drift beyond tolerance, price spreads, missing history), each once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from aggregator.alerts.decide import AlertOutcome
from aggregator.market_inputs import MarketInputs
from aggregator.report import (
    AlertOut,
    IdleBalanceOut,
    MarketOut,
    ReadOut,
    ScanAccountOut,
    ScanReport,
    account_out,
)
from aggregator.report_composite import AccountRiskOut, CompositeOut
from aggregator.scan import ScanResult
from risk.assessment import AccountAssessment, Assessment
from risk.model import USD, MarginAccount
from risk.rebalance.inputs import IdleBalance

__all__ = ["alerts_out", "idle_out", "market_out", "scan_account_out", "scan_report"]


def _float_decimal(value: float) -> Decimal | None:
    """A finite float as the Decimal of its shortest repr (``1.65`` not ``1.6499999999999999``)."""
    return Decimal(repr(value)) if math.isfinite(value) else None


def scan_account_out(account: MarginAccount, figures: AccountAssessment | None) -> ScanAccountOut:
    base = account_out(account)
    data = base.model_dump()
    if figures is not None and base.health_source is None:
        data["health"] = _float_decimal(figures.health)
        data["health_source"] = "risk"
    return ScanAccountOut(**data, risk=None if figures is None else AccountRiskOut.of(figures))


def market_out(inputs: MarketInputs) -> MarketOut:
    state = inputs.estimate.state
    return MarketOut(
        prices={str(f): q.price for f, q in sorted(inputs.quotes.items())},
        price_sources={str(f): q.source for f, q in sorted(inputs.quotes.items())},
        vols={str(f): float(state.vols[f]) for f in sorted(state.factors) if f != USD},
        vol_sources={str(f): s for f, s in sorted(inputs.vol_source.items())},
        history_days={str(f): int(d) for f, d in sorted(inputs.history_days.items()) if f != USD},
    )


def alerts_out(outcome: AlertOutcome | None) -> tuple[AlertOut, ...]:
    if outcome is None:
        return ()
    out = []
    for d in outcome.decisions:
        _rule, portfolio, account = d.key
        value = d.value if d.value is None or math.isfinite(d.value) else None
        out.append(
            AlertOut(
                rule=d.rule,
                portfolio=portfolio,
                account=account or None,
                kind=d.kind,
                tier=d.tier,
                value=value,
                title=d.title,
            )
        )
    return tuple(out)


def idle_out(balances: Iterable[IdleBalance]) -> tuple[IdleBalanceOut, ...]:
    """One entry per balance, sorted by (wallet, chain, token)."""
    out = []
    for b in sorted(balances, key=lambda b: (b.wallet, b.location, b.token)):
        value = float(b.amount) * b.price_usd if b.price_usd is not None else None
        out.append(
            IdleBalanceOut(
                wallet=b.wallet,
                chain=b.location,
                token=b.token,
                amount=b.amount,
                price_usd=b.price_usd,
                value_usd=value,
            )
        )
    return tuple(out)


def _unique(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lines))


def scan_report(
    scan: ScanResult,
    *,
    portfolio: str,
    assessment: Assessment | None,
    inputs: MarketInputs | None,
    alerts: AlertOutcome | None,
    critical_chf: float | None,
    snapshot_id: int | None,
    extra_warnings: tuple[str, ...] = (),
    generated_at: datetime,
    idle_balances: Iterable[IdleBalance] = (),
) -> ScanReport:
    """The document (see the module docstring)."""
    by_key = {a.account_key: a for a in assessment.accounts} if assessment is not None else {}
    composite = None
    if assessment is not None:
        market_warnings = inputs.warnings if inputs is not None else ()
        composite = CompositeOut.of(assessment, (*market_warnings, *extra_warnings))
    warnings = _unique((*scan.warnings, *(composite.warnings if composite is not None else extra_warnings)))
    return ScanReport(
        generated_at=generated_at,
        wallets=tuple(scan.wallets),
        accounts=tuple(scan_account_out(a, by_key.get(a.key)) for a in scan.accounts),
        reads=tuple(
            ReadOut(
                deployment=r.deployment,
                wallet=r.wallet,
                status=r.status,
                reason=r.reason,
                accounts=r.accounts,
            )
            for r in scan.reads
        ),
        warnings=warnings,
        portfolio=portfolio,
        composite=composite,
        market=market_out(inputs) if inputs is not None else None,
        alerts=alerts_out(alerts),
        critical_chf=critical_chf,
        snapshot_id=snapshot_id,
        idle_balances=idle_out(idle_balances),
    )
