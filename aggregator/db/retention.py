"""Retention with downsampling, a job the scheduler runs (e.g. hourly).

Policy (defaults; every value configurable through :class:`RetentionPolicy`):

* snapshots younger than ``keep_all`` (7 days) are all kept;
* between ``keep_all`` and ``keep_hourly`` (90 days) one snapshot per portfolio per clock hour;
* older than ``keep_hourly`` one per portfolio per UTC day; older than ``keep_daily`` (default None:
  forever) none.

The snapshot kept in a bucket is the *last* one (a real point-in-time state with its accounts and
positions, never an average); it is marked ``resolution = hourly | daily`` so later runs only look at
rows not yet downsampled. Deleting a snapshot cascades to its accounts, positions and assessment
(outbox rows keep their history, their ``snapshot_id`` becomes NULL). Factor prices are downsampled
the same way per factor. Cut-offs are aligned to whole buckets, so a bucket is downsampled once, when
all of it is old enough. Deletes run in chunks, each in its own short write transaction, so a running
scan is never blocked for long; a crash between chunks leaves a consistent database and the next run
finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db.engine import storage_errors, write_transaction
from aggregator.db.models import FactorPrice, Resolution, Snapshot

__all__ = ["RetentionPolicy", "RetentionReport", "apply_retention"]

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


@dataclass(frozen=True, slots=True)
class RetentionReport:
    snapshots_deleted: int
    snapshots_downsampled: int
    factor_prices_deleted: int


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
    return RetentionReport(
        snapshots_deleted=totals[0], snapshots_downsampled=totals[1], factor_prices_deleted=totals[2]
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
    for row_id, group, time, resolution in rows:
        key = (group, _floor(time, bucket))
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
