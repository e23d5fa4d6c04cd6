"""Storage benchmarks: snapshots stored per second, and the history query over a downsampled year.

1. ``store_scan`` throughput: snapshots of 5 lending accounts x 4 positions (20 positions each), with an
   assessment and two factor prices, each in its own transaction, on SQLite (WAL, synchronous=FULL) and
   on a throwaway PostgreSQL server (fsync on).
2. A year of one-minute snapshots of one portfolio (one account each, with its assessment) bulk-inserted,
   downsampled by ``apply_retention`` (all for 7 days, hourly to 90 days, daily after), then the CHF and
   account-health history of the whole year queried; target < 200 ms (best of 5).

Usage: ``.venv/bin/python benchmarks/db.py [--days 365] [--snapshots 300] [--backend sqlite|postgres|both]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

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


def bench_year(engine: sa.Engine, days: int) -> None:
    started = time.perf_counter()
    count = fill_year(engine, days)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    report = apply_retention(engine, RetentionPolicy(), now=f.T0 + timedelta(days=days))
    retained = time.perf_counter() - started
    best = float("inf")
    points = 0
    for _ in range(5):
        started = time.perf_counter()
        points = len(chf_history(engine, "year"))
        healths = account_health_history(engine, "year")
        best = min(best, (time.perf_counter() - started) * 1000)
    assert sum(len(v) for v in healths.values()) == points
    verdict = "OK" if best < TARGET_MS else "SLOWER THAN TARGET"
    print(f"  year of 1-min snapshots: {count:,} inserted in {filled:.1f} s; retention deleted "
          f"{report.snapshots_deleted:,} in {retained:.1f} s, {points:,} remain")
    print(f"  CHF + account-health history of {days} days: {best:.1f} ms "
          f"(target < {TARGET_MS:.0f} ms) {verdict}")


def run(name: str, url: str, args: argparse.Namespace) -> None:
    engine = create_engine(sa.make_url(url))
    upgrade(engine)
    print(f"{name}:")
    rate = bench_store(engine, args.snapshots)
    print(f"  store_scan: {rate:,.0f} snapshots/s (20 positions each, one transaction each)")
    bench_year(engine, args.days)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--snapshots", type=int, default=300)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/bench.db", args)
    if args.backend in ("postgres", "both"):
        if find_bin_dir() is None:
            print("PostgreSQL: skipped (run scripts/ensure_postgres.sh)")
            return
        server = start_pg(fsync=True)
        try:
            run(f"PostgreSQL (throwaway server, port {server.port})", server.create_database("bench"), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
