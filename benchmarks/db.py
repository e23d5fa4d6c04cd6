"""Storage benchmarks: snapshots stored per second, and the history query over a downsampled year.

1. ``store_scan`` throughput: snapshots of 5 lending accounts x 4 positions (20 positions each), with an
   assessment and two factor prices, each in its own transaction, on SQLite (WAL, synchronous=FULL) and
   on a throwaway PostgreSQL server (fsync on).
2. A year of one-minute snapshots of one portfolio (one account each, with its assessment) bulk-inserted,
   downsampled by ``apply_retention`` (all for 7 days, hourly to 90 days, daily after), then the CHF and
   account-health history of the whole year queried; target < 200 ms (best of 5). Baseline, same run
   and same data: the naive ORM way (``Session`` loading ``Snapshot`` + ``AssessmentRow`` and
   ``AccountSnapshot`` + ``Snapshot`` entities, then building the same points from the objects). Also
   timed: the history bucketed to one point per day in SQL (``every=1 day``).

Usage: ``.venv/bin/python benchmarks/db.py [--days 365] [--snapshots 300] [--backend sqlite|postgres|both]``
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.db import Repository, RetentionPolicy, ScanInfo, apply_retention, create_engine, upgrade
from aggregator.db.history import account_health_history, chf_history
from aggregator.db.models import AccountSnapshot, AssessmentRow, PortfolioRow, Scan, Snapshot
from tests.db import factories as f
from tests.db.pg_server import find_bin_dir, start_pg

TARGET_MS = 200.0


def bench_store(engine: sa.Engine, count: int) -> float:
    repo = Repository(engine)
    accounts = [f.account(i, positions=4) for i in range(5)]
    assessment = f.assessment("bench", accounts)
    started = time.perf_counter()
    for n in range(count):
        repo.store_scan(ScanInfo(id=f"store-{n}", started_at=f.T0), "bench", accounts, assessment,
                        factor_prices={"ETH": 3000.0, "USD": 1.0}, taken_at=f.T0 + timedelta(seconds=n))
    return count / (time.perf_counter() - started)


def fill_year(engine: sa.Engine, days: int) -> int:
    """Bulk-insert one snapshot per minute for ``days`` days ending now (scans, snapshots, one account,
    one assessment each); returns the number of snapshots."""
    minutes = days * 24 * 60
    end = f.T0 + timedelta(days=days)
    with engine.begin() as conn:
        insert = sa.insert(PortfolioRow).values(name="year", created_at=f.T0).returning(PortfolioRow.id)
        portfolio_id = conn.execute(insert).scalar_one()
    chunk = 20_000
    for start in range(0, minutes, chunk):
        times = [end - timedelta(minutes=minutes - m) for m in range(start, min(start + chunk, minutes))]
        with engine.begin() as conn:
            scans = [{"id": f"y{start + k}", "started_at": t, "status": "ok"} for k, t in enumerate(times)]
            conn.execute(sa.insert(Scan), scans)
            ids = conn.execute(
                sa.insert(Snapshot).returning(Snapshot.id, sort_by_parameter_order=True),
                [{"scan_id": f"y{start + k}", "portfolio_id": portfolio_id, "taken_at": t, "status": "ok",
                  "resolution": "raw", "chain_blocks": {}, "api_times": {}} for k, t in enumerate(times)],
            ).scalars().all()
            conn.execute(sa.insert(AssessmentRow), [
                {"snapshot_id": i, "as_of": t, "chf": 1.2 + (k % 100) / 1000, "stressed_chf": 1.0,
                 "pooled_hf": 1.5, "netted_hf": 1.6, "details": {}}
                for k, (i, t) in enumerate(zip(ids, times, strict=True))
            ])
            conn.execute(sa.insert(AccountSnapshot), [
                {"snapshot_id": i, "venue": "aave_v3", "deployment": "aave_v3:ethereum", "account_id": "a",
                 "wallet": "w", "margin_model": "lending", "quote": "USD", "status": "ok", "health": 1.2,
                 "health_infinite": False, "as_of": t}
                for i, t in zip(ids, times, strict=True)
            ])
    return minutes


def naive_orm_history(engine: sa.Engine, portfolio: str) -> tuple[int, int]:
    """The baseline: ORM entities for every row, points built from their attributes."""
    with Session(engine) as session:
        pid = session.scalars(sa.select(PortfolioRow.id).where(PortfolioRow.name == portfolio)).one()
        pairs = session.execute(
            sa.select(Snapshot, AssessmentRow)
            .join(AssessmentRow, AssessmentRow.snapshot_id == Snapshot.id)
            .where(Snapshot.portfolio_id == pid)
            .order_by(Snapshot.taken_at)
        ).all()
        chf = [(s.taken_at, s.status, math.inf if a.chf is None else a.chf, a.pooled_hf) for s, a in pairs]
        accounts = session.execute(
            sa.select(AccountSnapshot, Snapshot)
            .join(Snapshot, AccountSnapshot.snapshot_id == Snapshot.id)
            .where(Snapshot.portfolio_id == pid)
            .order_by(Snapshot.taken_at, AccountSnapshot.id)
        ).all()
        healths: dict[str, list[tuple[object, ...]]] = {}
        for acc, snap in accounts:
            healths.setdefault(f"{acc.deployment}/{acc.account_id}", []).append(
                (snap.taken_at, acc.status, math.inf if acc.health_infinite else acc.health)
            )
    return len(chf), sum(len(v) for v in healths.values())


def best_ms(fn: Callable[[], object], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def bench_year(engine: sa.Engine, days: int) -> dict[str, float]:
    started = time.perf_counter()
    count = fill_year(engine, days)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    report = apply_retention(engine, RetentionPolicy(), now=f.T0 + timedelta(days=days))
    retained = time.perf_counter() - started
    points = len(chf_history(engine, "year"))
    healths = account_health_history(engine, "year")
    assert sum(len(v) for v in healths.values()) == points
    assert naive_orm_history(engine, "year") == (points, points)  # the baseline reads the same rows
    daily = len(chf_history(engine, "year", every=timedelta(days=1)))
    assert daily == days + 1 or daily == days, daily  # one point per UTC day touched

    ours = best_ms(lambda: (chf_history(engine, "year"), account_health_history(engine, "year")))
    naive = best_ms(lambda: naive_orm_history(engine, "year"))
    day = timedelta(days=1)
    bucketed = best_ms(
        lambda: (chf_history(engine, "year", every=day), account_health_history(engine, "year", every=day))
    )
    verdict = "OK" if ours < TARGET_MS else "SLOWER THAN TARGET"
    print(f"  year of 1-min snapshots: {count:,} inserted in {filled:.1f} s; retention deleted "
          f"{report.snapshots_deleted:,} in {retained:.1f} s, {points:,} remain")
    print(f"  CHF + account-health history of {days} days ({points:,} points each): {ours:.1f} ms "
          f"(target < {TARGET_MS:.0f} ms) {verdict}")
    print(f"  baseline, naive ORM entities, same rows: {naive:.1f} ms -> ours is {naive / ours:.1f}x faster")
    print(f"  bucketed in SQL to one point per day ({daily} points each): {bucketed:.1f} ms")
    return {"history_ms": ours, "naive_ms": naive, "daily_ms": bucketed}


def run(name: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    engine = create_engine(sa.make_url(url))
    upgrade(engine)
    print(f"{name}:")
    rate = bench_store(engine, args.snapshots)
    print(f"  store_scan: {rate:,.0f} snapshots/s (20 positions each, one transaction each)")
    figures = {"store_per_s": rate, **bench_year(engine, args.days)}
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--snapshots", type=int, default=300)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results["SQLite"] = run("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/bench.db", args)
    if args.backend in ("postgres", "both"):
        if find_bin_dir() is None:
            print("PostgreSQL: skipped (run scripts/ensure_postgres.sh)")
        else:
            server = start_pg(fsync=True)
            try:
                url = server.create_database("bench")
                results["PostgreSQL"] = run(f"PostgreSQL (throwaway server, port {server.port})", url, args)
            finally:
                server.stop()
    print("summary:")
    for backend, fig in results.items():
        verdict = "met" if fig["history_ms"] < TARGET_MS else "NOT met"
        print(f"  {backend:<11} store {fig['store_per_s']:>7,.0f}/s; "
              f"year history {fig['history_ms']:6.1f} ms "
              f"(< {TARGET_MS:.0f} ms {verdict}); naive ORM {fig['naive_ms']:6.1f} ms "
              f"({fig['naive_ms'] / fig['history_ms']:.1f}x); per-day buckets {fig['daily_ms']:6.1f} ms")


if __name__ == "__main__":
    main()
