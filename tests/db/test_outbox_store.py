"""Alert state and outbox on SQLite and PostgreSQL: one transaction with the snapshot, state round trip,
acks and silences that survive a concurrent cycle, leases, expired-lease reclaim and fencing."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.alerts.decide import DedupKey, decide_alerts
from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.state import AlertState
from aggregator.db import Repository, ScanInfo
from aggregator.db import alerts_store as st
from aggregator.db import outbox_store as ob
from aggregator.db.models import AlertState as StateRow
from aggregator.db.models import OutboxRow, Snapshot
from aggregator.errors import CrossmarginError
from tests.unit.alerts.builders import T0, account, assessment

ALERTS = AlertsSettings.model_validate(
    {
        "channels": {"hook": {"type": "webhook", "webhook_url": "https://example.com/h"}},
        "rules": [{"name": "health", "metric": "account_health", "warning": 1.25, "channels": ["hook"]}],
    }
)


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())


def run_cycle(repo: Repository, health: float, minute: int) -> list[str]:
    acct = account()
    now = T0 + timedelta(minutes=minute)
    a = assessment([acct], [health], at=now)
    out = decide_alerts(
        ALERTS,
        portfolio="fund",
        accounts=[acct],
        assessment=a,
        previous=repo.load_alert_states("fund"),
        now=now,
    )
    repo.store_scan(
        ScanInfo(id=f"scan-{minute}", started_at=now),
        "fund",
        [acct],
        a,
        outbox=out.outbox,
        alert_states=out.states,
    )
    return [d.kind for d in out.decisions]


def test_flapping_through_the_database_gives_one_alert_per_episode(engine: Engine) -> None:
    repo = Repository(engine, clock=lambda: T0)
    values = [1.25 * (1.004 if i % 2 else 0.996) for i in range(30)] + [1.4] * 3 + [1.2] * 3
    kinds = [k for i, v in enumerate(values) for k in run_cycle(repo, v, i)]
    assert kinds == ["fire", "resolve", "fire"]
    assert count(engine, OutboxRow) == 3
    [(key, state)] = repo.load_alert_states("fund").items()
    assert key == ("health", "fund", account().key)
    assert state.tier == "warning" and state.episode == 2 and state.notified_in_episode


def test_states_and_outbox_roll_back_with_the_snapshot(engine: Engine) -> None:
    repo = Repository(engine, clock=lambda: T0)
    acct = account()
    bad: dict[DedupKey, AlertState] = {("health", "fund", acct.key): replace(AlertState(), tier="purple")}  # type: ignore[arg-type]
    with pytest.raises(CrossmarginError):
        repo.store_scan(
            ScanInfo(id="s1", started_at=T0),
            "fund",
            [acct],
            assessment([acct], [1.1]),
            outbox=[{"event_id": "e1", "channel": "hook", "payload": {}}],
            alert_states=bad,
        )
    assert count(engine, Snapshot) == count(engine, OutboxRow) == count(engine, StateRow) == 0


def test_state_round_trip(engine: Engine) -> None:
    repo = Repository(engine, clock=lambda: T0)
    states: dict[DedupKey, AlertState] = {
        ("r", "fund", ""): AlertState(
            tier="critical",
            episode=3,
            last_notified_at=T0,
            acknowledged=True,
            last_value=1.05,
            notified_in_episode=True,
            fired_at=T0 - timedelta(hours=1),
        ),
        ("r", "fund", "aave/0x1"): AlertState(tier="warning", episode=1, last_value=1.2, fired_at=T0),
        ("r", "fund", "aave/0x2"): AlertState(
            tier="ok", episode=2, last_notified_at=T0, resolved_at=T0, last_value=None
        ),
    }
    from aggregator.alerts.decide import AlertOutcome

    repo.store_alert_outcome("fund", AlertOutcome(states=states, outbox=[], decisions=[]))
    assert repo.load_alert_states("fund") == states
    assert repo.load_alert_states("other") == {}


def test_ack_survives_a_cycle_that_loaded_before_it_and_ends_with_the_episode(engine: Engine) -> None:
    repo = Repository(engine, clock=lambda: T0)
    run_cycle(repo, 1.1, 0)  # fire
    stale_previous = repo.load_alert_states("fund")
    [alert] = st.firing_alerts(engine)
    assert st.acknowledge(engine, alert.id, T0) is not None
    # a cycle that loaded its state before the ack stores afterwards: the ack must stay
    acct = account()
    now = T0 + timedelta(minutes=1)
    a = assessment([acct], [1.1], at=now)
    out = decide_alerts(
        ALERTS, portfolio="fund", accounts=[acct], assessment=a, previous=stale_previous, now=now
    )
    repo.store_scan(ScanInfo(id="late", started_at=now), "fund", [acct], a, alert_states=out.states)
    [state] = repo.load_alert_states("fund").values()
    assert state.acknowledged
    # repeats stop (6 h later still nothing), a new episode clears the ack
    assert run_cycle(repo, 1.1, 60 * 7) == []
    assert run_cycle(repo, 1.5, 60 * 8) == ["resolve"]
    assert run_cycle(repo, 1.1, 60 * 9) == ["fire"]
    [state] = repo.load_alert_states("fund").values()
    assert not state.acknowledged


def test_silence_and_unsilence(engine: Engine) -> None:
    repo = Repository(engine, clock=lambda: T0)
    st.silence(engine, "health", T0 + timedelta(hours=2), T0)
    assert run_cycle(repo, 1.1, 0) == []  # fired while silenced: no notification
    assert run_cycle(repo, 1.1, 60) == []
    assert [a.account for a in st.firing_alerts(engine)] == ["*", account().key]
    assert st.unsilence(engine, "health", T0) == 1
    assert run_cycle(repo, 1.1, 61) == ["repeat"]  # the firing key is notified once the silence is lifted


def _enqueue(engine: Engine, n: int) -> None:
    repo = Repository(engine, clock=lambda: T0)
    rows = [{"event_id": f"e{i}", "channel": "hook", "payload": {"i": i}} for i in range(n)]
    repo.store_scan(ScanInfo(id="s", started_at=T0), "fund", [], outbox=rows)


def test_lease_expiry_reclaim_and_fencing(engine: Engine) -> None:
    _enqueue(engine, 3)
    lease = timedelta(seconds=60)
    first = ob.claim_due(engine, worker_id="w1", now=T0, lease=lease, limit=10)
    assert [r.attempt for r in first] == [1, 1, 1]
    assert ob.claim_due(engine, worker_id="w2", now=T0 + timedelta(seconds=59), lease=lease, limit=10) == []
    # w1 was killed: after the lease the rows are claimed again, attempt 2
    later = T0 + timedelta(seconds=61)
    second = ob.claim_due(engine, worker_id="w2", now=later, lease=lease, limit=10)
    assert [(r.event_id, r.attempt) for r in second] == [("e0", 2), ("e1", 2), ("e2", 2)]
    record = ob.AttemptRecord(started_at=later, outcome="sent", status_code=200, error=None, latency_ms=1.0)
    # the late w1 result does not overwrite w2's lease, but its attempt is recorded
    assert not ob.finish(
        engine, first[0], worker_id="w1", record=record, status="sent", next_attempt_at=None, now=later
    )
    assert ob.finish(
        engine, second[0], worker_id="w2", record=record, status="sent", next_attempt_at=None, now=later
    )
    by_attempt = {(d["event_id"], d["attempt"]): d["outcome"] for d in ob.deliveries(engine)}
    assert by_attempt[("e0", 1)] == "sent" and by_attempt[("e0", 2)] == "sent"
    assert by_attempt[("e1", 1)] == "in_flight"  # the killed attempt stays visible
    statuses = {r["event_id"]: r["status"] for r in ob.outbox_rows(engine)}
    assert statuses == {"e0": "sent", "e1": "pending", "e2": "pending"}


def test_concurrent_claims_never_overlap(engine: Engine) -> None:
    _enqueue(engine, 200)
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        got: list[str] = []
        while True:
            rows = ob.claim_due(engine, worker_id=name, now=T0, lease=timedelta(minutes=5), limit=7)
            if not rows:
                break
            got += [r.event_id for r in rows]
        claimed[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [e for got in claimed.values() for e in got]
    assert sorted(every) == sorted(f"e{i}" for i in range(200))  # each row exactly once
    assert len(ob.deliveries(engine, limit=1000)) == 200
