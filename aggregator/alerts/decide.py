"""Decide a cycle's alerts: observe every rule's metric, step each dedup key, render outbox rows.

Observations (what each ``Metric`` reads; ``None`` means "unknown this cycle", which keeps the tier):

- ``chf`` / ``stressed_chf`` / ``p_liq``: ``Assessment.chf`` / ``.stressed_chf`` / ``.p_liq``;
- ``distance_to_liquidation``: the smallest ``|move|`` over ``Assessment.distance_to_liquidation``
  (down and up, per factor and the market), ``inf`` when no move in the scanned range liquidates;
- ``hedge_break``: 1 when ``Assessment.hedge_breaks`` is non-empty, else 0;
- ``account_health`` (per account): ``AccountAssessment.health``;
- ``model_drift`` (per account): ``|health - venue_health| / |venue_health|`` (``inf`` when only one side
  is infinite, 0 when both are);
- ``venue_unavailable`` (per account): 1 when ``MarginAccount.status`` is unavailable, 0.5 when stale,
  0 when ok (so ``warning = 0.5, critical = 1`` warns on stale and escalates on unavailable);
- ``oracle_stale`` (per account, when the adapter reports it in ``MarginAccount.raw``): seconds beyond
  the oracle heartbeat, ``raw["oracle_stale_seconds"]`` or ``now - raw["oracle_updated_at"] -
  raw["oracle_heartbeat_seconds"]`` (no key when the adapter does not report it);
- ``heartbeat``: seconds since the monitor's last completed cycle, evaluated by
  :func:`decide_heartbeat`; a completed cycle observes 0 (resolving a missed heartbeat).

Scope: a rule applies to a portfolio when ``AlertRule.applies_to_portfolio`` admits it. Its wallet
filter (``wallet`` / ``wallets``) selects the accounts of per-account metrics; a portfolio-wide metric
with a wallet filter applies only to portfolios holding an account of those wallets.

A per-account key whose account is no longer in the scan (position closed) is stepped with a healthy
value so its episode resolves, unless the scan returned no accounts at all or that deployment has an
unavailable account (a read failure is not a recovery).

Silences set with ``crossmargin alerts silence`` are stored as pseudo-keys ``(rule, portfolio, "*")``
and ``(rule, "*", "*")`` in ``previous``; they apply to every key of the rule and are never returned.

Each decision gives one outbox row per rule channel: ``event_id`` is a stable hash of (rule, portfolio,
account, episode, kind, decision time) and doubles as the Standard Webhooks ``webhook-id``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from aggregator.alerts.render import AlertContext, build_message, message_to_json, nearest_distance
from aggregator.alerts.rules import AlertRule, AlertsSettings, Metric
from aggregator.alerts.state import AlertState, Decision, Tier, step
from risk.assessment import AccountAssessment, Assessment, RebalanceMove
from risk.model import AccountStatus, MarginAccount

__all__ = [
    "SILENCE_KEY",
    "AlertDecisionView",
    "AlertOutcome",
    "DedupKey",
    "Observation",
    "decide_alerts",
    "decide_heartbeat",
    "event_id",
    "observe",
]

DedupKey = tuple[str, str, str]  # (rule name, portfolio name, account key or "")
SILENCE_KEY = "*"  # account key (and portfolio) of a rule-wide silence pseudo-state


@dataclass(frozen=True, slots=True)
class AlertDecisionView:
    """One notification decided this cycle, for the report and the CLI."""

    rule: str
    key: DedupKey
    kind: str  # fire | escalate | repeat | resolve
    tier: Tier
    value: float | None
    title: str
    severity: str
    event_id: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    states: dict[DedupKey, AlertState]  # every key observed this cycle, new state
    outbox: list[dict[str, Any]]  # rows for Repository.store_scan(outbox=...), one per (decision, channel)
    decisions: list[AlertDecisionView]


@dataclass(frozen=True, slots=True)
class Observation:
    account_key: str  # "" for a portfolio-wide figure
    value: float | None
    detail: str | None = None
    gone: bool = False  # the account left the scan: step with a healthy value


# ------------------------------------------------------------------------------------------------
# observations


def _relative_drift(figures: AccountAssessment) -> float | None:
    if figures.model_drift is None or figures.venue_health is None:
        return None
    drift, venue = figures.model_drift, figures.venue_health
    if math.isnan(drift):
        return None
    if math.isinf(drift):
        return math.inf
    if drift == 0:
        return 0.0
    if math.isinf(venue):
        return math.inf
    return math.inf if venue == 0 else abs(drift) / abs(venue)


def _as_seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _oracle_stale(account: MarginAccount, now: datetime) -> float | None:
    raw = account.raw
    direct = _as_seconds(raw.get("oracle_stale_seconds"))
    if direct is not None:
        return max(0.0, direct)
    updated = raw.get("oracle_updated_at")
    heartbeat = _as_seconds(raw.get("oracle_heartbeat_seconds"))
    if heartbeat is None:
        return None
    if isinstance(updated, datetime):
        age = (now - updated).total_seconds()
    else:
        epoch = _as_seconds(updated)
        if epoch is None:
            return None
        age = now.timestamp() - epoch
    return max(0.0, age - heartbeat)


def _unavailability(account: MarginAccount) -> float:
    if account.status is AccountStatus.UNAVAILABLE:
        return 1.0
    return 0.5 if account.status is AccountStatus.STALE else 0.0


def _portfolio_value(metric: Metric, assessment: Assessment | None) -> float | None:
    if assessment is None:
        return None
    if metric is Metric.CHF:
        return assessment.chf
    if metric is Metric.STRESSED_CHF:
        return assessment.stressed_chf
    if metric is Metric.P_LIQ:
        return assessment.p_liq
    if metric is Metric.DISTANCE_TO_LIQUIDATION:
        return nearest_distance(assessment)
    if metric is Metric.HEDGE_BREAK:
        return 1.0 if assessment.hedge_breaks else 0.0
    raise ValueError(f"{metric} is not a portfolio-wide metric")


def observe(
    rule: AlertRule, accounts: Sequence[MarginAccount], assessment: Assessment | None, now: datetime
) -> list[Observation]:
    """The rule's observations this cycle (see the module docstring)."""
    wallets = rule.wallet_filter()
    chosen = [a for a in accounts if wallets is None or a.wallet.lower() in wallets]
    metric = rule.metric
    if metric is Metric.HEARTBEAT:
        return [Observation("", 0.0)]
    if not metric.per_account:
        if wallets is not None and not chosen:
            return []
        return [Observation("", _portfolio_value(metric, assessment))]
    figures = {a.account_key: a for a in (assessment.accounts if assessment is not None else ())}
    observations: list[Observation] = []
    for account in chosen:
        assessed = figures.get(account.key)
        if metric is Metric.ACCOUNT_HEALTH:
            value = assessed.health if assessed is not None else None
            observations.append(Observation(account.key, value))
        elif metric is Metric.MODEL_DRIFT:
            observations.append(
                Observation(account.key, _relative_drift(assessed) if assessed is not None else None)
            )
        elif metric is Metric.VENUE_UNAVAILABLE:
            # a venue the user has not given credentials to (Aevo, Deribit) is listed as not
            # configured in every report; that is a setup choice, not an outage to alert on
            if not account.raw.get("not_configured"):
                observations.append(Observation(account.key, _unavailability(account)))
        elif metric is Metric.ORACLE_STALE:
            stale = _oracle_stale(account, now)
            if stale is not None:
                observations.append(Observation(account.key, stale))
    return observations


def _healthy(rule: AlertRule) -> float:
    return -math.inf if rule.metric.higher_is_worse else math.inf


def _gone_keys(
    rule: AlertRule,
    portfolio: str,
    accounts: Sequence[MarginAccount],
    observed: set[str],
    previous: Mapping[DedupKey, AlertState],
) -> list[Observation]:
    """Firing per-account keys whose account left the scan (see the module docstring)."""
    if not rule.metric.per_account or not accounts:
        return []
    unreadable = {a.deployment for a in accounts if a.status is AccountStatus.UNAVAILABLE}
    gone = []
    for (name, owner, key), state in previous.items():
        if name != rule.name or owner != portfolio or key in ("", SILENCE_KEY) or key in observed:
            continue
        if state.tier == "ok" or key.split("/", 1)[0] in unreadable:
            continue
        gone.append(Observation(key, None, "the account is no longer in the scan", gone=True))
    return gone


# ------------------------------------------------------------------------------------------------
# stepping and rendering


def event_id(rule: str, portfolio: str, account: str, decision: Decision, now: datetime) -> str:
    """Stable id of one decision (same inputs, same id): the outbox event id and webhook-id."""
    text = "\x1f".join((rule, portfolio, account, str(decision.episode), decision.kind, now.isoformat()))
    return "alr_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _silenced_until(
    previous: Mapping[DedupKey, AlertState], rule: str, portfolio: str, own: datetime | None
) -> datetime | None:
    candidates = [own] + [
        s.silenced_until
        for s in (
            previous.get((rule, portfolio, SILENCE_KEY)),
            previous.get((rule, SILENCE_KEY, SILENCE_KEY)),
        )
        if s is not None
    ]
    present = [c for c in candidates if c is not None]
    return max(present) if present else None


@dataclass
class _Cycle:
    alerts: AlertsSettings
    portfolio: str
    accounts: Sequence[MarginAccount]
    assessment: Assessment | None
    previous: Mapping[DedupKey, AlertState]
    now: datetime
    rebalancing: Sequence[RebalanceMove]

    def run(self, rules: Sequence[AlertRule], observations_of: Any) -> AlertOutcome:
        states: dict[DedupKey, AlertState] = {}
        outbox: list[dict[str, Any]] = []
        views: list[AlertDecisionView] = []
        for rule in rules:
            observations: list[Observation] = observations_of(rule)
            seen = {o.account_key for o in observations}
            observations += _gone_keys(rule, self.portfolio, self.accounts, seen, self.previous)
            for obs in observations:
                key: DedupKey = (rule.name, self.portfolio, obs.account_key)
                prior = self.previous.get(key)
                if prior is None and obs.value is None:
                    continue  # nothing known and nothing to remember
                state = prior or AlertState()
                effective = replace(
                    state,
                    silenced_until=_silenced_until(
                        self.previous, rule.name, self.portfolio, state.silenced_until
                    ),
                )
                value = _healthy(rule) if obs.gone else obs.value
                new_state, decision = step(rule, effective, value, self.now)
                stored_value = None if obs.gone or value is None or not math.isfinite(value) else value
                states[key] = replace(new_state, silenced_until=state.silenced_until, last_value=stored_value)
                if decision is None:
                    continue
                if obs.gone:
                    decision = replace(decision, value=None)
                self._render(rule, obs, decision, outbox, views)
        return AlertOutcome(states=states, outbox=outbox, decisions=views)

    def _render(
        self,
        rule: AlertRule,
        obs: Observation,
        decision: Decision,
        outbox: list[dict[str, Any]],
        views: list[AlertDecisionView],
    ) -> None:
        eid = event_id(rule.name, self.portfolio, obs.account_key, decision, self.now)
        message = build_message(
            AlertContext(
                rule=rule,
                portfolio=self.portfolio,
                account_key=obs.account_key,
                decision=decision,
                message_id=eid,
                now=self.now,
                assessment=self.assessment,
                accounts=self.accounts,
                rebalancing=self.rebalancing,
                detail=obs.detail,
            )
        )
        document = message_to_json(message)
        for channel in rule.channels:
            outbox.append(
                {
                    "event_id": eid,
                    "channel": channel,
                    "payload": {
                        "v": 1,
                        "channel_type": self.alerts.channels[channel].type,
                        "chat_id": rule.chat_id,
                        "message": document,
                    },
                    "next_attempt_at": self.now,
                }
            )
        views.append(
            AlertDecisionView(
                rule=rule.name,
                key=(rule.name, self.portfolio, obs.account_key),
                kind=decision.kind,
                tier=decision.tier,
                value=decision.value,
                title=message.title,
                severity=message.severity,
                event_id=eid,
                channels=tuple(rule.channels),
            )
        )


def _rules(alerts: AlertsSettings, portfolio: str, *, heartbeat: bool) -> list[AlertRule]:
    return [
        r
        for r in alerts.rules
        if r.enabled and r.applies_to_portfolio(portfolio) and (r.metric is Metric.HEARTBEAT) == heartbeat
    ]


def decide_alerts(
    alerts: AlertsSettings,
    *,
    portfolio: str,
    accounts: Sequence[MarginAccount],
    assessment: Assessment | None,
    previous: Mapping[DedupKey, AlertState],
    now: datetime,
    rebalancing: Sequence[RebalanceMove] = (),
) -> AlertOutcome:
    """Observe every enabled rule of ``portfolio`` in this cycle, step each key, render the outbox.

    ``rebalancing`` defaults to ``assessment.rebalancing``. A completed cycle also observes heartbeat
    0, so a missed-heartbeat alert resolves.
    """
    moves = tuple(rebalancing) or (assessment.rebalancing if assessment is not None else ())
    cycle = _Cycle(alerts, portfolio, accounts, assessment, previous, now, moves)
    rules = _rules(alerts, portfolio, heartbeat=False) + _rules(alerts, portfolio, heartbeat=True)
    return cycle.run(rules, lambda rule: observe(rule, accounts, assessment, now))


def decide_heartbeat(
    alerts: AlertsSettings,
    *,
    portfolio: str,
    last_completed_at: datetime | None,
    previous: Mapping[DedupKey, AlertState],
    now: datetime,
) -> AlertOutcome:
    """Heartbeat rules only: the value is the seconds since ``last_completed_at`` (no observation when
    it is None: pass the monitor's start time when no cycle ever completed)."""
    value = None if last_completed_at is None else max(0.0, (now - last_completed_at).total_seconds())
    detail = (
        None
        if last_completed_at is None
        else f"Last completed cycle: {last_completed_at.isoformat(timespec='seconds')}"
    )
    cycle = _Cycle(alerts, portfolio, (), None, previous, now, ())
    return cycle.run(
        _rules(alerts, portfolio, heartbeat=True), lambda _rule: [Observation("", value, detail)]
    )
