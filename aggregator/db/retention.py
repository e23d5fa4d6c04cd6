"""Retention with downsampling, a job the scheduler runs (e.g. hourly).

Policy (defaults; every value configurable through :class:`RetentionPolicy`, built from the config
file's ``[database.retention]`` by :meth:`RetentionPolicy.from_settings`):

* snapshots younger than ``keep_all`` (7 days) are all kept;
* between ``keep_all`` and ``keep_hourly`` (90 days) one snapshot per portfolio per clock hour;
* older than ``keep_hourly`` one per portfolio per UTC day; older than ``keep_daily`` (default None:
  forever) none.

The snapshot kept in a bucket is the *last* one (a real point-in-time state with its accounts and
positions, never an average); it is marked ``resolution = hourly | daily`` so later runs only look at
rows not yet downsampled. Deleting a snapshot cascades to its accounts, positions and assessment
(outbox rows keep their history, their ``snapshot_id`` becomes NULL). Factor prices are downsampled
the same way per factor. Cut-offs are aligned to whole buckets, so a bucket is downsampled once, when
all of it is old enough. Scan rows older than ``keep_all`` whose snapshots are all gone are deleted
too (a scan row is only the cycle's id, times and status). Deletes run in chunks, each in its own
short write transaction, so a running scan is never blocked for long; a crash between chunks leaves
a consistent database and the next run finishes the job. After deleting anything, PostgreSQL's
planner statistics of the touched tables are refreshed (``ANALYZE``) and SQLite runs
``PRAGMA optimize``, so the history queries keep their index plans after a large clean-up.

The scheduler calls :func:`run_retention` (``engine, policy, now``) and logs its summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.config import RetentionSettings
from aggregator.db.engine import storage_errors, write_transaction
from aggregator.db.models import FactorPrice, Resolution, Scan, Snapshot

__all__ = ["RetentionPolicy", "RetentionReport", "apply_retention", "run_retention"]

_CHUNK = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    keep_all: timedelta = timedelta(days=7)
    keep_hourly: timedelta = timedelta(days=90)
    keep_daily: timedelta | None = None  # None: daily snapshots are kept forever

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.keep_all <= self.keep_hourly:
            raise ValueError("retention needs 0 <= keep_all <= keep_hourly")
        if self.keep_daily is not None and self.keep_daily < self.keep_hourly:
            raise ValueError("retention needs keep_daily >= keep_hourly")

    @classmethod
    def from_settings(cls, settings: RetentionSettings) -> RetentionPolicy:
        """The policy of ``[database.retention]`` (``Settings.database.retention``, already validated)."""
        return cls(
            keep_all=settings.keep_all, keep_hourly=settings.keep_hourly, keep_daily=settings.keep_daily
        )


@dataclass(frozen=True, slots=True)
class RetentionReport:
    snapshots_deleted: int
    snapshots_downsampled: int
    factor_prices_deleted: int
    scans_deleted: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"retention: {self.snapshots_deleted} snapshots deleted, {self.snapshots_downsampled} kept as "
            f"hourly/daily, {self.factor_prices_deleted} factor prices deleted, {self.scans_deleted} empty "
            f"scans deleted in {self.seconds:.2f} s"
        )


def run_retention(
    engine: Engine, policy: RetentionPolicy | None = None, now: datetime | None = None
) -> RetentionReport:
    """The scheduler's job: :func:`apply_retention` at ``now`` (default: the current time), timed.

    Raises ``StorageError`` (naming the action and the redacted URL) when the database cannot be
    written; what was done before the failure stays done and consistent."""
    started = time.perf_counter()
    report = apply_retention(engine, policy, now=now)
    return replace(report, seconds=time.perf_counter() - started)


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // bucket) * bucket


@dataclass(frozen=True, slots=True)
class _Target:
    table: Any
    time: Any
    group: Any
    resolution: Any
    id: Any


_SNAPSHOTS = _Target(Snapshot, Snapshot.taken_at, Snapshot.portfolio_id, Snapshot.resolution, Snapshot.id)
_PRICES = _Target(FactorPrice, FactorPrice.time, FactorPrice.factor, FactorPrice.resolution, FactorPrice.id)


def apply_retention(
    engine: Engine,
    policy: RetentionPolicy | None = None,
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> RetentionReport:
    """Downsample and delete per ``policy`` (see the module docstring); returns what it did."""
    policy = policy or RetentionPolicy()
    moment = now or (clock or (lambda: datetime.now(UTC)))()
    hour, day = timedelta(hours=1), timedelta(days=1)
    hourly_cut = _floor(moment - policy.keep_all, hour)
    daily_cut = _floor(moment - policy.keep_hourly, day)
    totals = [0, 0, 0]
    scans = 0
    with storage_errors(engine.url, "apply retention"):
        for target, slot in ((_SNAPSHOTS, 0), (_PRICES, 2)):
            deleted, kept = _downsample(
                engine, target, hour, hourly_cut, mark=Resolution.HOURLY, sources=(Resolution.RAW,)
            )
            totals[slot] += deleted
            totals[1] += kept if slot == 0 else 0
            deleted, kept = _downsample(
                engine,
                target,
                day,
                daily_cut,
                mark=Resolution.DAILY,
                sources=(Resolution.RAW, Resolution.HOURLY),
            )
            totals[slot] += deleted
            totals[1] += kept if slot == 0 else 0
            if policy.keep_daily is not None:
                totals[slot] += _delete_before(engine, target, _floor(moment - policy.keep_daily, day))
        scans = _delete_empty_scans(engine, hourly_cut)
        if totals[0] or totals[2] or scans:
            _refresh_statistics(engine)
    return RetentionReport(
        snapshots_deleted=totals[0],
        snapshots_downsampled=totals[1],
        factor_prices_deleted=totals[2],
        scans_deleted=scans,
    )


def _downsample(
    engine: Engine, target: _Target, bucket: timedelta, cut: datetime, *, mark: str, sources: tuple[str, ...]
) -> tuple[int, int]:
    """Keep the last row per (group, bucket) among rows older than ``cut``; returns (deleted, marked)."""
    with engine.connect() as conn:
        start = conn.execute(
            sa.select(sa.func.min(target.time)).where(target.resolution.in_(sources), target.time < cut)
        ).scalar_one_or_none()
        if start is None:
            return 0, 0
        if start.tzinfo is None:  # aggregate results bypass the column type on SQLite
            start = datetime.fromisoformat(str(start)).replace(tzinfo=UTC)
        rows = conn.execute(
            sa.select(target.id, target.group, target.time, target.resolution)
            .where(
                target.resolution.in_((*sources, mark)),
                target.time >= _floor(start, bucket),
                target.time < cut,
            )
            .order_by(target.group, target.time, target.id)
        ).all()
    last: dict[tuple[Any, datetime], tuple[int, str]] = {}
    doomed: list[int] = []
    for row_id, group, at, resolution in rows:
        key = (group, _floor(at, bucket))
        previous = last.get(key)
        if previous is not None:
            doomed.append(previous[0])
        last[key] = (row_id, resolution)
    to_mark = [row_id for row_id, resolution in last.values() if resolution != mark]
    for i in range(0, max(len(doomed), len(to_mark)), _CHUNK):
        with write_transaction(engine) as conn:
            chunk = doomed[i : i + _CHUNK]
            if chunk:
                conn.execute(sa.delete(target.table).where(target.id.in_(chunk)))
            marks = to_mark[i : i + _CHUNK]
            if marks:
                conn.execute(sa.update(target.table).where(target.id.in_(marks)).values(resolution=mark))
    return len(doomed), len(to_mark)


def _delete_before(engine: Engine, target: _Target, cut: datetime) -> int:
    with write_transaction(engine) as conn:
        result = conn.execute(sa.delete(target.table).where(target.time < cut))
        return int(result.rowcount)


def _delete_empty_scans(engine: Engine, cut: datetime) -> int:
    """Scan rows started before ``cut`` with no snapshot left (deleted by retention, or a cycle that
    stored nothing), in chunks."""
    empty = (
        sa.select(Scan.id)
        .where(Scan.started_at < cut, ~sa.exists().where(Snapshot.scan_id == Scan.id))
        .order_by(Scan.started_at)
    )
    with engine.connect() as conn:
        ids = list(conn.execute(empty).scalars())
    for i in range(0, len(ids), _CHUNK):
        with write_transaction(engine) as conn:
            conn.execute(
                sa.delete(Scan).where(
                    Scan.id.in_(ids[i : i + _CHUNK]), ~sa.exists().where(Snapshot.scan_id == Scan.id)
                )
            )
    return len(ids)


def _refresh_statistics(engine: Engine) -> None:
    """Planner statistics after a large delete (PostgreSQL ``ANALYZE``; SQLite ``PRAGMA optimize``)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            tables = "scans, snapshots, account_snapshots, positions, assessments, factor_prices"
            conn.exec_driver_sql(f"ANALYZE {tables}")
        else:
            conn.exec_driver_sql("PRAGMA optimize")
        conn.commit()
