"""The watch service's retention job applies the configured ``[database.retention]`` policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from adapters.addresses import parse_address
from aggregator.config import load_config
from aggregator.db.history import chf_history
from aggregator.service.runner import WatchTarget
from aggregator.service.watch import WatchService
from tests.db import factories as f
from tests.db.test_history import _fill


async def test_retention_job_uses_the_configured_policy(engine: sa.Engine, tmp_path: Path) -> None:
    now = f.T0 + timedelta(days=3)
    # six snapshots 20 minutes apart, two days old: all kept by the default (7 days of everything)
    times = [now - timedelta(days=2) + timedelta(minutes=20 * k) for k in range(6)]
    _fill(engine, times)
    config = tmp_path / "config.toml"
    config.write_text('[database.retention]\nkeep_all = "1d"\nkeep_hourly = "30d"\n')
    settings = load_config(config, environ={}).settings
    target = WatchTarget("fund", (parse_address(f.wallet(0)),), interval=3600.0)
    service = WatchService(settings, engine, [target], clock=lambda: now)
    await service._retention()
    kept = [p.taken_at for p in chf_history(engine, "fund")]
    hours = {t.replace(minute=0, second=0, microsecond=0) for t in times}
    # one snapshot (the last) per hour survives under keep_all = 1d
    assert len(kept) == len(hours) < len(times)
    for hour in hours:
        assert max(t for t in times if t.replace(minute=0, second=0, microsecond=0) == hour) in kept
