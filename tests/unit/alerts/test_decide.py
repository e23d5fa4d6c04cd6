"""decide_alerts / decide_heartbeat: observations per metric, scope, episodes, silences, outbox rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.alerts.decide import AlertOutcome, DedupKey, decide_alerts, decide_heartbeat
from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.state import AlertState
from risk.assessment import Assessment, DistanceToLiquidation, HedgeBreak, RebalanceMove
from risk.model import AccountStatus, FactorId, MarginAccount
from tests.unit.alerts.builders import ETH, T0, WALLET_A, WALLET_B, account, assessment

CHANNELS = {
    "ops": {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    "hook": {"type": "webhook", "webhook_url": "https://example.com/hook"},
}


def settings_with(*rules: dict[str, Any]) -> AlertsSettings:
    return AlertsSettings.model_validate({"channels": CHANNELS, "rules": list(rules)})


def rule(name: str, metric: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "metric": metric, "channels": ["ops"], **extra}


def cycle(
    alerts: AlertsSettings,
    accounts: Sequence[MarginAccount],
    a: Assessment | None,
    previous: dict[DedupKey, AlertState],
    minute: float,
    **kw: Any,
) -> AlertOutcome:
    return decide_alerts(
        alerts,
        portfolio="fund",
        accounts=accounts,
        assessment=a,
        previous=previous,
        now=T0 + timedelta(minutes=minute),
        **kw,
    )


def schmitt_episodes(values: list[float], low: float, high: float) -> int:
    """Independent count of episodes: enter below ``low``, leave above ``high``."""
    inside, episodes = False, 0
    for v in values:
        if not inside and v < low:
            inside, episodes = True, episodes + 1
        elif inside and v > high:
            inside = False
    return episodes


def run_health(values: list[float]) -> list[str]:
    alerts = settings_with(rule("acct", "account_health", warning=1.25, hysteresis=0.05))
    acct = account()
    previous: dict[DedupKey, AlertState] = {}
    kinds: list[str] = []
    for i, value in enumerate(values):
        out = cycle(alerts, [acct], assessment([acct], [value]), previous, i)
        previous = {**previous, **out.states}
        kinds += [d.kind for d in out.decisions]
        assert len(out.outbox) == len(out.decisions)  # one channel
    return kinds


def test_flapping_health_gives_one_alert_per_episode() -> None:
    flap = [1.25 * (1.005 if i % 2 else 0.995) for i in range(60)]  # +-0.5% around the threshold
    values = flap + [1.40] * 5 + flap + [1.40] * 5
    kinds = run_health(values)
    assert kinds == ["fire", "resolve", "fire", "resolve"]
    assert kinds.count("fire") == schmitt_episodes(values, 1.25, 1.25 * 1.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=1.5), min_size=1, max_size=80))
def test_fires_match_an_independent_schmitt_trigger(values: list[float]) -> None:
    kinds = run_health(values)  # one minute apart: never reaches the 6 h repeat interval
    assert kinds.count("fire") == schmitt_episodes(values, 1.25, 1.25 * 1.05)
    assert kinds.count("resolve") in (kinds.count("fire"), kinds.count("fire") - 1)


def test_each_metric_reads_its_figure() -> None:
    a_ok = account(WALLET_A, venue_health="1.5")
    b_stale = account(WALLET_B, "morpho_blue:ethereum", status=AccountStatus.STALE)
    c_down = account(WALLET_B, "hyperliquid", status=AccountStatus.UNAVAILABLE, venue_health=None)
    oracle = account(
        WALLET_A,
        "compound_v3:usdc",
        raw={"oracle_updated_at": T0 - timedelta(seconds=4000), "oracle_heartbeat_seconds": 3600},
    )
    accounts = [a_ok, b_stale, c_down, oracle]
    a = assessment(
        accounts,
        [1.4, 1.6, 0.0, 2.0],
        distances=(
            DistanceToLiquidation(ETH, 0.12, 0.30, 2464.0, 3640.0, a_ok.key, None),
            DistanceToLiquidation("market", 0.15, None, None, None, a_ok.key, None),
        ),
        hedge_breaks=(HedgeBreak(ETH, a_ok.key, -0.12, 2464.0, -50_000.0, 1.3),),
        stressed=0.95,
        p_liq=0.07,
    )
    alerts = settings_with(
        rule("chf", "chf", warning=1.5),
        rule("stressed", "stressed_chf", warning=1.0),
        rule("health", "account_health", warning=1.45),
        rule("p", "p_liq", warning=0.05),
        rule("dist", "distance_to_liquidation", warning=0.2),
        rule("hedge", "hedge_break", warning=0),
        rule("drift", "model_drift", warning=0.05),
        rule("venue", "venue_unavailable", warning=0, critical=0.5),
        rule("oracle", "oracle_stale", warning=60),
    )
    out = cycle(alerts, accounts, a, {}, 0)
    values = {key: state.last_value for key, state in out.states.items()}
    assert values[("chf", "fund", "")] == 1.4
    assert values[("stressed", "fund", "")] == 0.95
    assert values[("p", "fund", "")] == 0.07
    assert values[("dist", "fund", "")] == 0.12  # the smaller of 12% down and 30% up
    assert values[("hedge", "fund", "")] == 1.0
    assert math.isclose(values[("drift", "fund", a_ok.key)] or 0, 0.1 / 1.5)
    assert values[("venue", "fund", c_down.key)] == 1.0
    assert values[("venue", "fund", b_stale.key)] == 0.5
    assert values[("venue", "fund", a_ok.key)] == 0.0
    assert values[("oracle", "fund", oracle.key)] == 400.0  # 4000 s old, heartbeat 3600 s
    assert ("oracle", "fund", a_ok.key) not in values  # no oracle data: no key
    tiers = {d.key: d.tier for d in out.decisions}
    assert tiers[("venue", "fund", c_down.key)] == "critical"
    assert tiers[("venue", "fund", b_stale.key)] == "warning"
    assert ("venue", "fund", a_ok.key) not in tiers
    assert tiers[("health", "fund", a_ok.key)] == "warning"
    assert ("health", "fund", c_down.key) not in out.states  # unknown health, nothing stored


def test_a_venue_without_credentials_is_not_an_outage() -> None:
    down = account(WALLET_A, "deribit:main", status=AccountStatus.UNAVAILABLE)
    unset = account(WALLET_B, "aevo:main", status=AccountStatus.UNAVAILABLE, raw={"not_configured": True})
    alerts = settings_with(rule("venue", "venue_unavailable", warning=0, critical=0.5))
    out = cycle(alerts, [down, unset], assessment([], []), {}, 0)
    assert [d.key for d in out.decisions] == [("venue", "fund", down.key)]
    assert ("venue", "fund", unset.key) not in out.states


def test_scope_by_portfolio_and_wallet() -> None:
    a, b = account(WALLET_A), account(WALLET_B, "morpho_blue:ethereum")
    alerts = settings_with(
        rule("only-b", "account_health", warning=2.0, wallets=[WALLET_B.upper().replace("0X", "0x")]),
        rule("other-portfolio", "chf", warning=2.0, portfolio="treasury"),
        rule("listed", "chf", warning=2.0, portfolios=["fund", "x"]),
        rule("chf-of-c", "chf", warning=2.0, wallet="0x" + "c3" * 20),
    )
    out = cycle(alerts, [a, b], assessment([a, b], [1.1, 1.2]), {}, 0)
    assert {d.key for d in out.decisions} == {("only-b", "fund", b.key), ("listed", "fund", "")}


def test_silence_pseudo_key_suppresses_every_key_and_is_not_returned() -> None:
    a = account()
    alerts = settings_with(rule("health", "account_health", warning=1.5))
    silence = AlertState(silenced_until=T0 + timedelta(hours=2))
    previous = {("health", "*", "*"): silence}
    out = cycle(alerts, [a], assessment([a], [1.1]), previous, 0)
    assert out.decisions == [] and out.outbox == []
    assert set(out.states) == {("health", "fund", a.key)}
    assert out.states[("health", "fund", a.key)].tier == "warning"
    assert out.states[("health", "fund", a.key)].silenced_until is None  # the silence stays in its own row
    later = cycle(alerts, [a], assessment([a], [1.1]), {**previous, **out.states}, 180)
    assert [d.kind for d in later.decisions] == ["repeat"]  # silence over: the firing key is notified


def test_account_leaving_the_scan_resolves_unless_its_venue_is_unreadable() -> None:
    a, b = account(WALLET_A), account(WALLET_B, "hyperliquid")
    alerts = settings_with(rule("health", "account_health", warning=1.5))
    first = cycle(alerts, [a, b], assessment([a, b], [1.1, 1.2]), {}, 0)
    assert len(first.decisions) == 2
    gone = cycle(alerts, [a], assessment([a], [1.1]), first.states, 1)
    assert [(d.kind, d.key[2]) for d in gone.decisions] == [("resolve", b.key)]
    down = account(WALLET_B, "hyperliquid", status=AccountStatus.UNAVAILABLE, venue_health=None)
    down = MarginAccount.unavailable(
        venue="hyperliquid",
        deployment="hyperliquid",
        account_id="0x" + "ee" * 20,
        wallet=WALLET_B,
        margin_model=down.margin_model,
        as_of=down.as_of,
        reason="HTTP 503",
    )
    kept = cycle(alerts, [a, down], assessment([a, down], [1.1, 0.0]), first.states, 1)
    assert kept.decisions == []
    assert cycle(alerts, [], None, first.states, 1).decisions == []


def test_outbox_rows_one_per_channel_with_a_stable_event_id() -> None:
    a = account()
    alerts = settings_with(
        {"name": "chf", "metric": "chf", "warning": 1.5, "critical": 1.2, "channels": ["ops", "hook"]}
    )
    out = cycle(alerts, [a], assessment([a], [1.1]), {}, 0)
    again = cycle(alerts, [a], assessment([a], [1.1]), {}, 0)
    assert [r["channel"] for r in out.outbox] == ["ops", "hook"]
    assert out.outbox[0]["event_id"] == out.outbox[1]["event_id"] == again.outbox[0]["event_id"]
    assert out.outbox[0]["payload"]["message"]["message_id"] == out.outbox[0]["event_id"]
    assert out.outbox[1]["payload"]["channel_type"] == "webhook"
    assert out.decisions[0].severity == "critical"
    assert out.decisions[0].title.startswith("CRITICAL")


def test_rebalancing_move_is_the_suggested_action() -> None:
    a, b = account(WALLET_A), account(WALLET_B, "morpho_blue:ethereum")
    move = RebalanceMove(
        source=b.key,
        destination=a.key,
        token="USDC",
        amount=5000.0,
        slow=False,
        chf_before=1.05,
        chf_after=1.21,
        stressed_chf_before=0.84,
        stressed_chf_after=1.02,
    )
    alerts = settings_with(rule("chf", "chf", warning=1.2))
    out = cycle(alerts, [a, b], assessment([a, b], [1.05, 2.0]), {}, 0, rebalancing=[move])
    body = "\n".join(out.outbox[0]["payload"]["message"]["body"])
    assert f"What to do: move 5,000.00 USDC ($0) from {b.key} to {a.key} (deposit)" in body
    assert "CHF 1.05 -> 1.21, stressed CHF 0.84 -> 1.02" in body


def test_heartbeat_fires_when_cycles_stop_and_resolves_on_the_next_cycle() -> None:
    alerts = settings_with(rule("beat", "heartbeat", warning=300, critical=900))
    missed = decide_heartbeat(
        alerts, portfolio="fund", last_completed_at=T0, previous={}, now=T0 + timedelta(seconds=600)
    )
    assert [(d.kind, d.tier, d.value) for d in missed.decisions] == [("fire", "warning", 600.0)]
    worse = decide_heartbeat(
        alerts,
        portfolio="fund",
        last_completed_at=T0,
        previous=missed.states,
        now=T0 + timedelta(seconds=1000),
    )
    assert [(d.kind, d.tier) for d in worse.decisions] == [("escalate", "critical")]
    a = account()
    back = cycle(alerts, [a], assessment([a], [2.0]), worse.states, 17)
    assert [d.kind for d in back.decisions] == ["resolve"]
    never = decide_heartbeat(alerts, portfolio="fund", last_completed_at=None, previous={}, now=T0)
    assert never.decisions == [] and never.states == {}


def test_infinite_health_and_missing_assessment() -> None:
    a = account()
    alerts = settings_with(
        rule("chf", "chf", warning=1.5), rule("dist", "distance_to_liquidation", warning=0.1)
    )
    calm = cycle(alerts, [a], assessment([a], [math.inf]), {}, 0)
    assert calm.decisions == []
    assert calm.states[("dist", "fund", "")].tier == "ok"  # no distance in range = never liquidates
    assert cycle(alerts, [a], None, {}, 0).states == {}


def test_liquidation_details_in_the_message() -> None:
    a = account(eth_price="2800")
    alerts = settings_with(rule("health", "account_health", warning=1.2, critical=1.1))
    out = cycle(alerts, [a], assessment([a], [1.12]), {}, 0)
    body = out.outbox[0]["payload"]["message"]["body"]
    text = "\n".join(body)
    liq = 2800.0 / 1.12  # builders.figures: liquidation price = 2800 / health
    assert (
        f"Liquidation price: {FactorId('ETH')} {liq:,.0f} (now 2,800, {(liq / 2800 - 1) * 100:+.1f}%)" in text
    )
    assert "Health: 1.120 (venue reports 1.500)" in text
    assert f"wallet {WALLET_A}" in text and "aave_v3" in text
    assert out.outbox[0]["payload"]["message"]["title"].startswith("WARNING")
