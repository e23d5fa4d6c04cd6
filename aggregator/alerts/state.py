"""The edge-triggered alert state machine: one state per dedup key (rule, portfolio, account).

Tier of an observation (with hysteresis, so a value flapping around a threshold does not flap):
a value enters a tier when it crosses the tier's threshold, and leaves it only once it is past the
threshold by ``hysteresis`` (relative). Decisions:

- ``fire``      the key was ok and is now warning or critical (a new episode starts);
- ``escalate``  the tier rose (warning -> critical) within the episode;
- ``repeat``    still firing and the tier's repeat interval has passed since the last notification;
- ``resolve``   the key was firing and is now ok (the episode ends; sent once);
- nothing otherwise (de-escalation critical -> warning is recorded, not notified).

Silences suppress notifications but not state changes; an acknowledgement stops repeats for the
rest of the episode. Pure: the caller stores ``AlertState`` in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from aggregator.alerts.rules import AlertRule

__all__ = ["AlertState", "Decision", "Tier", "classify", "step"]

Tier = Literal["ok", "warning", "critical"]
_RANK: dict[Tier, int] = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class AlertState:
    tier: Tier = "ok"
    episode: int = 0
    last_notified_at: datetime | None = None
    acknowledged: bool = False
    silenced_until: datetime | None = None
    last_value: float | None = None
    notified_in_episode: bool = False  # a resolve is sent only for an episode that was notified
    fired_at: datetime | None = None  # start of the current (or last) episode
    resolved_at: datetime | None = None  # end of the last episode


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Literal["fire", "escalate", "repeat", "resolve"]
    tier: Tier
    episode: int
    value: float | None


def _breaches(rule: AlertRule, value: float, threshold: float, *, leaving: bool) -> bool:
    """Is ``value`` on the bad side of ``threshold``? When already in the tier (``leaving``), the
    value must recover past the threshold by the hysteresis band to count as out."""
    band = abs(threshold) * rule.hysteresis if leaving else 0.0
    if rule.metric.higher_is_worse:
        return value > threshold - band
    return value < threshold + band


def classify(rule: AlertRule, value: float | None, current: Tier) -> Tier:
    """The tier of ``value`` given the current tier (hysteresis). ``None`` (unknown) keeps the tier."""
    if value is None:
        return current
    if rule.critical is not None and _breaches(
        rule, value, rule.critical, leaving=_RANK[current] >= _RANK["critical"]
    ):
        return "critical"
    if rule.warning is not None and _breaches(
        rule, value, rule.warning, leaving=_RANK[current] >= _RANK["warning"]
    ):
        return "warning"
    return "ok"


def step(
    rule: AlertRule, state: AlertState, value: float | None, now: datetime
) -> tuple[AlertState, Decision | None]:
    """Advance one key's state with a new observation; return the new state and what to notify."""
    new_tier = classify(rule, value, state.tier)
    silenced = state.silenced_until is not None and now < state.silenced_until
    decision: Decision | None = None
    next_state = replace(state, tier=new_tier, last_value=value)

    if state.tier == "ok" and new_tier != "ok":
        episode = state.episode + 1
        next_state = replace(
            next_state,
            episode=episode,
            acknowledged=False,
            notified_in_episode=False,
            last_notified_at=None,
            fired_at=now,
            resolved_at=None,
        )
        decision = Decision("fire", new_tier, episode, value)
    elif state.tier != "ok" and new_tier == "ok":
        next_state = replace(next_state, resolved_at=now)
        if state.notified_in_episode:
            decision = Decision("resolve", "ok", state.episode, value)
    elif _RANK[new_tier] > _RANK[state.tier]:
        decision = Decision("escalate", new_tier, state.episode, value)
    elif new_tier != "ok" and not state.acknowledged:
        last = state.last_notified_at
        if last is None or now - last >= rule.repeat_interval(new_tier):
            decision = Decision("repeat", new_tier, state.episode, value)

    if decision is not None and silenced and decision.kind != "resolve":
        return next_state, None
    if decision is not None:
        next_state = replace(next_state, last_notified_at=now, notified_in_episode=decision.kind != "resolve")
    return next_state, decision
