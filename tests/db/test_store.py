"""store_scan: complete, exact, idempotent, atomic; bad input refused before anything is written."""

from __future__ import annotations

import dataclasses
import math
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from aggregator.db import Repository, ScanInfo
from aggregator.db.history import account_health_history, chf_history, positions_at
from aggregator.db.models import (
    AccountSnapshot,
    AssessmentRow,
    FactorPrice,
    OutboxRow,
    PositionRow,
    Scan,
    Snapshot,
)
from aggregator.errors import StorageError
from tests.db import factories as f

COUNTED = (Scan, Snapshot, AccountSnapshot, PositionRow, AssessmentRow, FactorPrice, OutboxRow)


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
            for m in COUNTED
        }


def _store(repo: Repository, scan_id: str, *, n: int = 3, at=f.T0, outbox=()):  # type: ignore[no-untyped-def]
    accounts = [f.account(i, at=at) for i in range(n)] + [f.unavailable(99, at=at)]
    return repo.store_scan(
        ScanInfo(id=scan_id, started_at=at),
        "fund",
        accounts,
        f.assessment("fund", accounts, at=at),
        factor_prices={"ETH": 3012.5, "USD": 1.0},
        outbox=outbox,
    )


def test_store_round_trips_exact_values_and_inf(engine: sa.Engine) -> None:
    repo = Repository(engine)
    result = _store(
        repo, "scan-1", outbox=[{"event_id": "e1", "channel": "slack", "payload": {"chf": math.inf}}]
    )
    assert result.created
    assert counts(engine) == {
        "scans": 1,
        "snapshots": 1,
        "account_snapshots": 4,
        "positions": 12,
        "assessments": 1,
        "factor_prices": 2,
        "outbox": 1,
    }
    stored = positions_at(engine, "fund")
    assert stored is not None and stored.scan_id == "scan-1"
    expected = [p for i in range(3) for p in f.account(i).positions]
    assert [(p.quantity, p.price, p.value) for p in stored.positions] == [
        (p.quantity, p.price, p.value) for p in expected
    ]
    assert stored.positions[0].quantity == Decimal(
        "1.001234567890123456789"
    )  # more digits than a float holds
    assert stored.positions[0].params == {
        "lending": {"ltv": "0.8", "liquidation_threshold": "0.825", "liquidation_bonus": "0.05"}
    }
    [point] = chf_history(engine, "fund")
    assert point.chf == 1.5 and point.pooled_hf == math.inf and point.netted_hf == 2.0
    assert point.snapshot_status == "partial"
    healths = account_health_history(engine, "fund")
    assert healths[f.account(0).key][0].venue_health == Decimal("1.234567890123456789")
    assert healths[f.unavailable(99).key][0].health is None
    assert healths[f.unavailable(99).key][0].status_reason == "HTTP 503 after 3 retries"
    with engine.connect() as conn:
        blocks = conn.execute(sa.select(Snapshot.chain_blocks, Snapshot.api_times)).one()
    assert blocks[0] == {
        "ethereum": {
            "block_number": 20_000_000,
            "block_hash": "0x" + "ab" * 32,
            "timestamp": f.T0.isoformat(),
        }
    }
    assert blocks[1] == {"hyperliquid": f.T0.isoformat()}


def test_infinite_account_health_is_flagged(engine: sa.Engine) -> None:
    accounts = [f.account(0)]
    base = f.assessment("fund", accounts)
    assessment = dataclasses.replace(base, accounts=(dataclasses.replace(base.accounts[0], health=math.inf),))
    Repository(engine).store_scan(ScanInfo(id="s", started_at=f.T0), "fund", accounts, assessment)
    with engine.connect() as conn:
        assert conn.execute(sa.select(AccountSnapshot.health, AccountSnapshot.health_infinite)).one() == (
            None,
            True,
        )
    assert account_health_history(engine, "fund")[accounts[0].key][0].health == math.inf


def test_storing_the_same_scan_twice_changes_nothing(engine: sa.Engine) -> None:
    repo = Repository(engine)
    outbox = [{"event_id": "e1", "channel": "slack", "payload": {"x": 1}}]
    first = _store(repo, "scan-1", outbox=outbox)
    before = counts(engine)
    second = _store(repo, "scan-1", outbox=outbox)
    assert second.snapshot_id == first.snapshot_id and not second.created
    assert counts(engine) == before
    third = _store(repo, "scan-2", at=f.T0 + timedelta(minutes=1), outbox=outbox)
    assert third.created
    after = counts(engine)
    assert after["snapshots"] == 2 and after["outbox"] == 1  # the same (event, channel) is never queued twice


def test_bad_input_is_refused_before_anything_is_written(engine: sa.Engine) -> None:
    repo = Repository(engine)
    accounts = [f.account(0)]
    other = f.assessment("fund", [f.account(5)])
    with pytest.raises(StorageError, match="not in the snapshot"):
        repo.store_scan(ScanInfo(id="s", started_at=f.T0), "fund", accounts, other)
    with pytest.raises(StorageError, match="factor price ETH=nan"):
        repo.store_scan(ScanInfo(id="s", started_at=f.T0), "fund", accounts, factor_prices={"ETH": math.nan})
    with pytest.raises(StorageError, match="outbox row"):
        repo.store_scan(ScanInfo(id="s", started_at=f.T0), "fund", accounts, outbox=[{"event_id": "x"}])
    assert set(counts(engine).values()) == {0}


def test_concurrent_writers(engine: sa.Engine) -> None:
    """Two threads store different scans and race on the same scans: every scan stored exactly once."""
    repo = Repository(engine)
    scans = [uuid.uuid4().hex for _ in range(10)]
    errors: list[BaseException] = []

    def worker(order: list[str]) -> None:
        try:
            for minute, scan_id in enumerate(order):
                _store(
                    repo,
                    scan_id,
                    at=f.T0 + timedelta(minutes=scans.index(scan_id)),
                    outbox=[{"event_id": scan_id, "channel": "slack", "payload": {"m": minute}}],
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(scans,)),
        threading.Thread(target=worker, args=(scans[::-1],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    c = counts(engine)
    assert (
        c["snapshots"] == 10 and c["account_snapshots"] == 40 and c["positions"] == 120 and c["outbox"] == 10
    )
