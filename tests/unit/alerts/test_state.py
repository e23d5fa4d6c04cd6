"""The alert state machine: edge-triggered, hysteresis, repeats, escalation, silences, acks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aggregator.alerts.rules import AlertRule, AlertsSettings, Metric
from aggregator.alerts.state import AlertState, step

T0 = datetime(2026, 11, 21, tzinfo=UTC)
CHF_RULE = AlertRule(
    name="chf",
    metric=Metric.CHF,
    warning=1.25,
    critical=1.10,
    hysteresis=0.05,
    channels=("ops",),
    repeat_warning="6h",
    repeat_critical="30m",
)


def run(rule: AlertRule, values: list[float | None], minutes: float = 1.0) -> list[str]:
    state = AlertState()
    kinds = []
    for i, value in enumerate(values):
        state, decision = step(rule, state, value, T0 + timedelta(minutes=minutes * i))
        if decision:
            kinds.append(f"{decision.kind}:{decision.tier}")
    return kinds


def test_fire_once_escalate_resolve_once() -> None:
    assert run(CHF_RULE, [2.0, 1.2, 1.2, 1.05, 1.05, 1.3, 1.4, 1.4]) == [
        "fire:warning",
        "escalate:critical",
        "resolve:ok",
    ]


def test_hysteresis_keeps_a_flapping_value_in_one_episode() -> None:
    flapping = [1.2 if i % 2 else 1.26 for i in range(200)]  # around 1.25, inside the 5% band
    assert run(CHF_RULE, flapping) == ["fire:warning"]


def test_repeat_at_the_tier_interval() -> None:
    kinds = run(CHF_RULE, [1.05] * 121, minutes=1.0)  # two hours critical
    assert kinds == ["fire:critical"] + ["repeat:critical"] * 4


def test_unknown_value_keeps_state() -> None:
    assert run(CHF_RULE, [1.05, None, None, 1.05]) == ["fire:critical"]


def test_silence_suppresses_but_late_fire_after_silence_and_no_orphan_resolve() -> None:
    state = AlertState(silenced_until=T0 + timedelta(hours=1))
    state, d = step(CHF_RULE, state, 1.2, T0)
    assert d is None and state.tier == "warning"
    state, d = step(CHF_RULE, state, 2.0, T0 + timedelta(minutes=5))
    assert d is None  # never notified -> no resolve
    state, d = step(CHF_RULE, state, 1.2, T0 + timedelta(minutes=10))
    assert d is None
    state, d = step(CHF_RULE, state, 1.2, T0 + timedelta(hours=2))
    assert d is not None and d.kind == "repeat"


def test_acknowledged_stops_repeats_until_next_episode() -> None:
    state, d = step(CHF_RULE, AlertState(), 1.05, T0)
    assert d is not None and d.kind == "fire"
    state = replace(state, acknowledged=True)
    state, d = step(CHF_RULE, state, 1.05, T0 + timedelta(hours=3))
    assert d is None
    state, d = step(CHF_RULE, state, 2.0, T0 + timedelta(hours=4))
    assert d is not None and d.kind == "resolve"
    state, d = step(CHF_RULE, state, 1.05, T0 + timedelta(hours=5))
    assert d is not None and d.kind == "fire" and d.episode == 2


def test_higher_is_worse_metric() -> None:
    rule = AlertRule(name="p", metric=Metric.P_LIQ, warning=0.01, critical=0.05, channels=("ops",))
    assert run(rule, [0.0, 0.02, 0.06, 0.001]) == ["fire:warning", "escalate:critical", "resolve:ok"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"metric": "chf", "warning": 1.1, "critical": 1.3}, "must be below"),
        ({"metric": "p_liq", "warning": 0.5, "critical": 0.2}, "must be above"),
        ({"metric": "p_liq", "critical": 5}, "probability"),
        ({"metric": "chf"}, "set warning"),
        ({"metric": "chf", "warning": 1.2, "repeat_warning": "soon"}, "not a duration"),
        ({"metric": "chff", "warning": 1.2}, "metric"),
    ],
)
def test_impossible_rules_rejected(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        AlertRule(name="r", channels=("ops",), **kwargs)  # type: ignore[arg-type]


def test_unknown_channel_and_unknown_key() -> None:
    with pytest.raises(ValidationError, match="did you mean 'ops'"):
        AlertsSettings.model_validate(
            {
                "channels": {"ops": {"type": "slack"}},
                "rules": [{"name": "r", "metric": "chf", "warning": 1.2, "channels": ["opz"]}],
            }
        )
    with pytest.raises(ValidationError, match="threshhold"):
        AlertsSettings.model_validate(
            {"rules": [{"name": "r", "metric": "chf", "threshhold": 1, "channels": ["x"]}]}
        )


@settings(max_examples=200)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0.5, max_value=2.0)), min_size=1, max_size=120))
def test_invariants_one_fire_per_episode_and_resolve_only_after_fire(values: list[float | None]) -> None:
    state = AlertState()
    fired_episodes: list[int] = []
    resolved_episodes: list[int] = []
    for i, value in enumerate(values):
        state, d = step(CHF_RULE, state, value, T0 + timedelta(minutes=i))
        if d is None:
            continue
        if d.kind == "fire":
            fired_episodes.append(d.episode)
        if d.kind == "resolve":
            assert d.episode in fired_episodes
            resolved_episodes.append(d.episode)
    assert len(fired_episodes) == len(set(fired_episodes))
    assert len(resolved_episodes) == len(set(resolved_episodes))
