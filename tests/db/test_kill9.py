"""``kill -9`` of a writer in the middle of storing a snapshot leaves the whole snapshot or none of it.

A forked child opens its own engine, says it is ready and stores one large snapshot (60 accounts x 20
positions, an assessment, factor prices, outbox rows); the parent SIGKILLs it after a random delay drawn
over the measured duration of a store. After every kill the database must hold, for every snapshot,
all of its rows, and nothing else.
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
_ctx = multiprocessing.get_context("fork")


def _store(url: str, scan_id: str) -> None:
    engine = create_engine(sa.make_url(url))
    accounts = [f.account(i, positions=POSITIONS) for i in range(ACCOUNTS)]
    Repository(engine).store_scan(
        ScanInfo(id=scan_id, started_at=f.T0),
        "fund",
        accounts,
        f.assessment("fund", accounts),
        factor_prices={"ETH": 3000.0},
        outbox=[{"event_id": scan_id, "channel": "slack", "payload": {}}],
    )
    engine.dispose()


def _child(url: str, scan_id: str, ready: Pipe) -> None:
    engine = create_engine(sa.make_url(url))
    with engine.connect():
        pass  # connect before saying ready: the kill lands in the store, not in the connect
    ready.send(True)
    accounts = [f.account(i, positions=POSITIONS) for i in range(ACCOUNTS)]
    Repository(engine).store_scan(
        ScanInfo(id=scan_id, started_at=f.T0),
        "fund",
        accounts,
        f.assessment("fund", accounts),
        factor_prices={"ETH": 3000.0},
        outbox=[{"event_id": scan_id, "channel": "slack", "payload": {}}],
    )
    os._exit(0)


def _check_all_or_nothing(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        snapshots = conn.execute(sa.select(Snapshot.id, Snapshot.scan_id)).all()
        for snapshot_id, scan_id in snapshots:
            accounts = conn.execute(
                sa.select(sa.func.count()).where(AccountSnapshot.snapshot_id == snapshot_id)
            ).scalar_one()
            positions = conn.execute(
                sa.select(sa.func.count())
                .select_from(PositionRow)
                .join(AccountSnapshot, PositionRow.account_snapshot_id == AccountSnapshot.id)
                .where(AccountSnapshot.snapshot_id == snapshot_id)
            ).scalar_one()
            assessments = conn.execute(
                sa.select(sa.func.count()).where(AssessmentRow.snapshot_id == snapshot_id)
            ).scalar_one()
            outbox = conn.execute(
                sa.select(sa.func.count()).where(OutboxRow.event_id == scan_id)
            ).scalar_one()
            assert (accounts, positions, assessments, outbox) == (ACCOUNTS, ACCOUNTS * POSITIONS, 1, 1), (
                scan_id
            )
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.event_id.not_in([s for _, s in snapshots] or ["-"]))
        ).scalar_one()
        assert orphans == 0
        return {s for _, s in snapshots}


def _kill_loop(url: str, rounds: int) -> None:
    started = time.perf_counter()
    _store(url, "calibration")
    duration = time.perf_counter() - started
    engine = create_engine(sa.make_url(url))
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
    engine.dispose()
    assert completed + killed == rounds
    assert killed > 0  # the kills did land inside stores


def test_kill9_during_store_sqlite(sqlite_url: str) -> None:
    engine = create_engine(sa.make_url(sqlite_url))
    upgrade(engine)
    engine.dispose()
    _kill_loop(sqlite_url, 50)


@pytest.mark.postgres
def test_kill9_during_store_postgres(pg_url: str) -> None:
    engine = create_engine(sa.make_url(pg_url))
    upgrade(engine)
    engine.dispose()
    _kill_loop(pg_url, 25)
