"""``kill -9`` of a writer in the middle of storing a snapshot leaves the whole snapshot or none of it.

A forked child (inheriting the prepared accounts, so it only connects and stores) opens its own engine,
says it is ready and stores one large snapshot (60 accounts x 20 positions, an assessment, factor
prices, outbox rows); the parent SIGKILLs it after a random delay drawn over the measured duration of a
store. 50 rounds on each backend (the PostgreSQL server is the session's one). After every kill the
database must hold, for every snapshot, all of its rows, and nothing else; afterwards it still takes
writes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import uuid
from multiprocessing.connection import Connection as Pipe

import pytest
import sqlalchemy as sa

from aggregator.db import Repository, ScanInfo, create_engine, upgrade
from aggregator.db.models import AccountSnapshot, AssessmentRow, OutboxRow, PositionRow, Snapshot
from tests.db import factories as f

ACCOUNTS, POSITIONS = 60, 20
ROUNDS = 50
_ctx = multiprocessing.get_context("fork")
# Built once in the parent; a forked writer inherits them, so it only connects and stores.
_ACCOUNTS = [f.account(i, positions=POSITIONS) for i in range(ACCOUNTS)]
_ASSESSMENT = f.assessment("fund", _ACCOUNTS)


def _store(engine: sa.Engine, scan_id: str) -> None:
    Repository(engine).store_scan(
        ScanInfo(id=scan_id, started_at=f.T0),
        "fund",
        _ACCOUNTS,
        _ASSESSMENT,
        factor_prices={"ETH": 3000.0},
        outbox=[{"event_id": scan_id, "channel": "slack", "payload": {}}],
    )


def _child(url: str, scan_id: str, ready: Pipe) -> None:
    engine = create_engine(sa.make_url(url))
    with engine.connect():
        pass  # connect before saying ready: the kill lands in the store, not in the connect
    ready.send(True)
    _store(engine, scan_id)
    os._exit(0)


def _check_all_or_nothing(engine: sa.Engine) -> set[str]:
    """Every stored snapshot has all its rows, and no row exists without its snapshot (grouped counts,
    a constant number of queries however many snapshots are stored)."""
    with engine.connect() as conn:
        snapshots = dict(conn.execute(sa.select(Snapshot.id, Snapshot.scan_id)).tuples().all())
        accounts = dict(
            conn.execute(
                sa.select(AccountSnapshot.snapshot_id, sa.func.count()).group_by(AccountSnapshot.snapshot_id)
            ).tuples().all()
        )
        positions = dict(
            conn.execute(
                sa.select(AccountSnapshot.snapshot_id, sa.func.count())
                .select_from(PositionRow)
                .join(AccountSnapshot, PositionRow.account_snapshot_id == AccountSnapshot.id)
                .group_by(AccountSnapshot.snapshot_id)
            ).tuples().all()
        )
        assessments = dict(
            conn.execute(
                sa.select(AssessmentRow.snapshot_id, sa.func.count()).group_by(AssessmentRow.snapshot_id)
            ).tuples().all()
        )
        outbox = dict(
            conn.execute(sa.select(OutboxRow.event_id, sa.func.count()).group_by(OutboxRow.event_id)).tuples().all()
        )
    for snapshot_id, scan_id in snapshots.items():
        got = (accounts.get(snapshot_id), positions.get(snapshot_id), assessments.get(snapshot_id), outbox.get(scan_id))
        assert got == (ACCOUNTS, ACCOUNTS * POSITIONS, 1, 1), scan_id
    assert set(accounts) <= set(snapshots) and set(assessments) <= set(snapshots)  # nothing half-written
    assert set(outbox) == set(snapshots.values())
    return set(snapshots.values())


def _kill_loop(url: str, rounds: int) -> None:
    engine = create_engine(sa.make_url(url))
    started = time.perf_counter()
    _store(engine, "calibration")
    duration = time.perf_counter() - started
    rng = random.Random(20260101)
    completed = killed = 0
    for _ in range(rounds):
        scan_id = uuid.uuid4().hex
        receive, send = _ctx.Pipe(duplex=False)
        child = _ctx.Process(target=_child, args=(url, scan_id, send))
        child.start()
        assert receive.poll(30), "child never became ready"
        receive.recv()
        time.sleep(rng.uniform(0, 1.3 * duration))
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
        stored = _check_all_or_nothing(engine)
        if scan_id in stored:
            completed += 1
        else:
            killed += 1
    _store(engine, "after")  # the database still takes writes after the kills
    assert "after" in _check_all_or_nothing(engine)
    engine.dispose()
    assert completed + killed == rounds
    assert killed > 0  # the kills did land inside stores


def test_kill9_during_store_sqlite(sqlite_url: str) -> None:
    engine = create_engine(sa.make_url(sqlite_url))
    upgrade(engine)
    engine.dispose()
    _kill_loop(sqlite_url, ROUNDS)


@pytest.mark.postgres
def test_kill9_during_store_postgres(pg_url: str) -> None:
    engine = create_engine(sa.make_url(pg_url))
    upgrade(engine)
    engine.dispose()
    _kill_loop(pg_url, ROUNDS)
