"""History reads, retention with downsampling, CSV export."""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from aggregator.db import Repository, RetentionPolicy, ScanInfo, apply_retention, run_retention
from aggregator.db.export import export_assessments_csv, export_positions_csv
from aggregator.db.history import account_health_history, chf_history, factor_price_history, positions_at
from aggregator.db.models import FactorPrice, PositionRow, Scan, Snapshot
from aggregator.errors import InputError
from tests.db import factories as f


def _fill(engine: sa.Engine, times: list, prices: list[float] | None = None) -> None:  # type: ignore[type-arg]
    repo = Repository(engine)
    for n, at in enumerate(times):
        accounts = [f.account(0, at=at, positions=2)]
        price = prices[n] if prices else 3000.0 + n
        repo.store_scan(
            ScanInfo(id=f"s{n}", started_at=at),
            "fund",
            accounts,
            f.assessment("fund", accounts, at=at, chf=1.0 + n / 1000),
            factor_prices={"ETH": price, "BTC": 2 * price},
        )


def test_positions_at_a_time_and_unknown_portfolio(engine: sa.Engine) -> None:
    _fill(engine, [f.T0 + timedelta(hours=h) for h in range(3)])
    at = positions_at(engine, "fund", f.T0 + timedelta(hours=1, minutes=30))
    assert at is not None and at.scan_id == "s1" and len(at.positions) == 2
    assert positions_at(engine, "fund", f.T0 - timedelta(seconds=1)) is None
    with pytest.raises(InputError, match=r"unknown portfolio 'nope'.*fund"):
        chf_history(engine, "nope")


def test_factor_price_history_is_numpy_ready(engine: sa.Engine) -> None:
    prices = [3000.0 * math.exp(0.01 * k) for k in range(6)]
    _fill(engine, [f.T0 + timedelta(minutes=30 * k) for k in range(6)], prices)
    full = factor_price_history(engine, ["ETH", "BTC"])
    assert full.prices.shape == (6, 2) and full.times.dtype == np.dtype("datetime64[us]")
    np.testing.assert_allclose(full.log_returns(), 0.01, rtol=1e-9)
    hourly = factor_price_history(engine, ["ETH"], every=timedelta(hours=1))
    assert hourly.prices[:, 0].tolist() == [prices[1], prices[3], prices[5]]  # last price of each hour


def test_retention_downsamples_and_keeps_the_last_of_each_bucket(engine: sa.Engine) -> None:
    now = f.T0 + timedelta(days=100)
    minutes = [now - timedelta(days=95) + timedelta(minutes=20 * k) for k in range(6)]  # 2 hours, daily zone
    minutes += [
        now - timedelta(days=30) + timedelta(minutes=20 * k) for k in range(6)
    ]  # 2 hours, hourly zone
    minutes += [now - timedelta(hours=2) + timedelta(minutes=20 * k) for k in range(6)]  # recent: all kept
    _fill(engine, minutes)
    report = apply_retention(engine, RetentionPolicy(), now=now)
    history = chf_history(engine, "fund")
    kept = [p.taken_at for p in history]
    old, mid, recent = minutes[:6], minutes[6:12], minutes[12:]
    day_buckets = {t.date() for t in old}
    hour_buckets = {t.replace(minute=0, second=0, microsecond=0) for t in mid}
    assert len(kept) == len(day_buckets) + len(hour_buckets) + 6
    assert kept[-6:] == recent
    for bucket in day_buckets:
        assert max(t for t in old if t.date() == bucket) in kept
    assert report.snapshots_deleted == 18 - len(kept)
    with engine.connect() as conn:
        positions = conn.execute(sa.select(sa.func.count()).select_from(PositionRow)).scalar_one()
        resolutions = sorted(conn.execute(sa.select(Snapshot.resolution)).scalars())
        prices = conn.execute(sa.select(sa.func.count()).select_from(FactorPrice)).scalar_one()
    assert positions == 2 * len(kept)  # deletes cascade to positions
    assert resolutions.count("raw") == 6
    assert prices == 2 * len(kept)
    again = apply_retention(engine, RetentionPolicy(), now=now)
    assert again.snapshots_deleted == 0 and again.snapshots_downsampled == 0


def test_history_times_are_exact_and_sql_buckets_keep_the_last_point(engine: sa.Engine) -> None:
    """Times with microseconds come back exactly (they travel as epoch microseconds computed in SQL);
    ``every`` keeps, per epoch-aligned bucket, the latest snapshot, cross-checked against bucketing the
    full history in Python."""
    rng = random.Random(7)
    times = sorted(
        {f.T0 + timedelta(seconds=rng.randrange(0, 3 * 86400), microseconds=rng.randrange(1_000_000)) for _ in range(40)}
    )
    _fill(engine, times)
    full = chf_history(engine, "fund")
    assert [p.taken_at for p in full] == times
    assert [p.chf for p in full] == [1.0 + n / 1000 for n in range(len(times))]
    healths = account_health_history(engine, "fund")
    assert [p.taken_at for p in healths[f.account(0).key]] == times
    for every in (timedelta(hours=1), timedelta(hours=5), timedelta(days=1)):
        step = int(every.total_seconds() * 1_000_000)
        last: dict[int, tuple[object, float]] = {}
        for p in full:
            micros = (p.taken_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            last[micros // step] = (p.taken_at, p.chf)
        expected = [last[k] for k in sorted(last)]
        assert [(p.taken_at, p.chf) for p in chf_history(engine, "fund", every=every)] == expected
        sampled = account_health_history(engine, "fund", every=every)[f.account(0).key]
        assert [p.taken_at for p in sampled] == [t for t, _ in expected]
    window = chf_history(engine, "fund", since=times[5], until=times[30], every=timedelta(days=1))
    assert window[-1].taken_at == max(t for t in times[5:31] if t.date() == times[30].date())
    with pytest.raises(InputError, match="positive"):
        chf_history(engine, "fund", every=timedelta(0))


def test_run_retention_deletes_emptied_scans(engine: sa.Engine) -> None:
    now = f.T0 + timedelta(days=100)
    old = [now - timedelta(days=95) + timedelta(minutes=10 * k) for k in range(3)]  # one daily bucket
    _fill(engine, [*old, now - timedelta(hours=1)])
    report = run_retention(engine, RetentionPolicy(), now)
    assert (report.snapshots_deleted, report.scans_deleted) == (2, 2)
    with engine.connect() as conn:
        left = sorted(conn.execute(sa.select(Scan.id)).scalars())
    assert left == ["s2", "s3"]  # the kept (last) snapshot's scan and the recent one
    assert run_retention(engine, RetentionPolicy(), now).scans_deleted == 0


def test_retention_keep_daily_limit(engine: sa.Engine) -> None:
    now = f.T0 + timedelta(days=400)
    _fill(engine, [f.T0, f.T0 + timedelta(days=300)])
    apply_retention(engine, RetentionPolicy(keep_daily=timedelta(days=365)), now=now)
    assert [p.taken_at for p in chf_history(engine, "fund")] == [f.T0 + timedelta(days=300)]


def test_csv_export(engine: sa.Engine) -> None:
    _fill(engine, [f.T0, f.T0 + timedelta(minutes=1)])
    out = io.StringIO()
    assert export_positions_csv(engine, "fund", out) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["quantity"] == "1.001234567890123456789" and rows[0]["kind"] == "collateral"
    out = io.StringIO()
    assert export_assessments_csv(engine, "fund", out, since=f.T0 + timedelta(seconds=30)) == 1
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["chf"] == "1.001" and row["pooled_hf"] == "inf" and row["scan_id"] == "s1"
