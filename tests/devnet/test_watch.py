"""``crossmargin watch`` end to end on the devnet: real pipeline, real SQLite, real delivery worker, a
local signed-webhook receiver.

- three cycles around a price move (the first run by the real APScheduler, the next two through the
  job function) deliver exactly one firing and one resolved alert;
- block-driven mode: a price move (new blocks) rescans the portfolio without any trigger from the test;
- SIGTERM while a cycle is in flight (the Hyperliquid server hangs through the devnet fault switch):
  with a short grace the cycle is cancelled and nothing is stored; with a long grace it completes and
  its snapshot is stored whole. Either way every stored snapshot is complete.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters.addresses import parse_address
from aggregator.alerts.signing import generate_secret
from aggregator.config import Settings, load_config
from aggregator.db import open_database
from aggregator.db.models import AccountSnapshot, AssessmentRow, OutboxRow, PositionRow, Scan, Snapshot
from aggregator.devnet.demo import _only
from aggregator.devnet.network import Devnet
from aggregator.devnet.user_config import render_user_config
from aggregator.devnet.webhook_receiver import WebhookReceiver
from aggregator.service.runner import WatchTarget
from aggregator.service.watch import WatchService

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

PORTFOLIO = "hedged-book"


def _write_config(devnet: Devnet, workdir: Path, receiver: WebhookReceiver, secret: str, *,
                  warning: float, watch: str) -> tuple[Path, dict[str, str], str]:
    base = render_user_config(devnet.state)
    config = workdir / "config.toml"
    config.write_text("\n".join([
        base,
        "[database]",
        f'url = "sqlite:///{workdir / "watch.db"}"',
        "[alerts.channels.hook]",
        'type = "webhook"',
        "allow_private = true",
        "[[alerts.rules]]",
        'name = "aave-leg"',
        'metric = "account_health"',
        f'wallet = "{devnet.wallets["hedged"]}"',
        f"warning = {warning}",
        'channels = ["hook"]',
        "[watch]",
        watch,
        "",
    ]))
    secrets = workdir / "secrets.toml"
    secrets.write_text(f'[alerts.channels.hook]\nwebhook_url = "{receiver.url}"\nsigning_secret = "{secret}"\n')
    environ = {"HOME": str(workdir), "CROSSMARGIN_SECRETS_FILE": str(secrets)}
    return config, environ, _only(base)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    secret = generate_secret()
    with WebhookReceiver(secret) as running:
        yield running, secret


def _settings(config: Path, environ: dict[str, str]) -> Settings:
    return load_config(config, environ=environ).settings


# ----------------------------------------------------------------------------------------------
# three cycles around a price move


async def test_three_cycles_around_a_price_move_deliver_one_firing_and_one_resolved(
    fresh_devnet: Devnet, tmp_path: Path, receiver: tuple[WebhookReceiver, str]
) -> None:
    hook, secret = receiver
    # hedged's Aave leg: HF = 10 WETH * P * 0.825 / 15,000 USDC: 1.65 at 3,000, 1.21 at 2,200
    config, environ, only = _write_config(
        fresh_devnet, tmp_path, hook, secret, warning=1.3,
        watch='interval = "1h"\nheartbeat_interval = "1h"\nretention = false\ndelivery_poll_interval = "0.2s"',
    )
    settings = _settings(config, environ)
    engine = open_database(settings)
    hedged = parse_address(fresh_devnet.wallets["hedged"])
    target = WatchTarget(PORTFOLIO, (hedged,), interval=3600, only=only)
    done: asyncio.Queue[Any] = asyncio.Queue()
    service = WatchService(settings, engine, [target], on_cycle=lambda _t, r: done.put_nowait(r),
                           on_failure=lambda _t, e: done.put_nowait(e))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        first = await asyncio.wait_for(done.get(), 120)  # run by the scheduler at start
        assert not isinstance(first, Exception), first
        assert service.scheduler is not None and service.scheduler.get_job(f"cycle:{PORTFOLIO}") is not None
        await asyncio.to_thread(fresh_devnet.set_price, "ETH", Decimal(2200))
        await service.trigger(PORTFOLIO)
        second = await asyncio.wait_for(done.get(), 120)
        await asyncio.to_thread(hook.wait_for, 1, 20)
        await asyncio.to_thread(fresh_devnet.set_price, "ETH", Decimal(3000))
        await service.trigger(PORTFOLIO)
        third = await asyncio.wait_for(done.get(), 120)
        got = await asyncio.to_thread(hook.wait_for, 2, 20)
        await asyncio.sleep(1.0)  # nothing else may arrive
    finally:
        stop.set()
        await task
        engine.dispose()
    aave = f"aave_v3:devnet/{hedged}"
    healths = [next(a.health for a in r.assessment.accounts if a.account_key == aave)
               for r in (first, second, third)]
    expected = [10 * p * 0.825 / 15_000 for p in (3000, 2200, 3000)]
    assert healths == pytest.approx(expected, rel=1e-3)
    assert service.runners[PORTFOLIO].cycles == 3
    assert len(hook.received()) == 2 and got == hook.valid()
    severities = [r.body["severity"] for r in got]
    assert severities == ["warning", "resolved"]
    assert all(aave in r.body["title"] + json.dumps(r.body["alert"]) for r in got)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Snapshot)).scalar_one() == 3
        statuses = conn.execute(sa.select(OutboxRow.status)).scalars().all()
    assert sorted(statuses) == ["sent", "sent"]


# ----------------------------------------------------------------------------------------------
# block-driven mode


async def test_block_driven_mode_rescans_on_a_new_block_and_alerts(
    fresh_devnet: Devnet, tmp_path: Path, receiver: tuple[WebhookReceiver, str]
) -> None:
    hook, secret = receiver
    config, environ, only = _write_config(
        fresh_devnet, tmp_path, hook, secret, warning=1.3,
        watch='interval = "1h"\nblock_driven = true\nblock_debounce = "0.3s"\nheartbeat_interval = "1h"\n'
              'retention = false\ndelivery_poll_interval = "0.2s"',
    )
    settings = _settings(config, environ)
    engine = open_database(settings)
    target = WatchTarget(PORTFOLIO, (parse_address(fresh_devnet.wallets["hedged"]),), interval=3600,
                         block_driven=True,
                         only=only)
    first = asyncio.Event()
    service = WatchService(settings, engine, [target], on_cycle=lambda _t, _r: first.set())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(first.wait(), 120)
        assert service.watchers and service.watchers[0].chain == "devnet"
        await asyncio.sleep(0.5)
        assert service.watchers[0].mode == "ws"  # anvil serves WebSocket on the RPC port
        # set_price moves the chain, then the venue server: one more block sees both moved
        await asyncio.to_thread(fresh_devnet.set_price, "ETH", Decimal(2200))
        await asyncio.to_thread(fresh_devnet.txs.rpc, "evm_mine", [])
        got = await asyncio.to_thread(hook.wait_for, 1, 30)
    finally:
        stop.set()
        await task
        engine.dispose()
    assert service.runners[PORTFOLIO].cycles >= 2  # nobody but a block triggered the second
    assert [r.body["severity"] for r in got] == ["warning"]


# ----------------------------------------------------------------------------------------------
# SIGTERM mid-cycle (subprocess)


def _fault(devnet: Devnet, mode: str, **extra: Any) -> None:
    assert devnet.api_url is not None
    response = httpx.post(f"{devnet.api_url}/_devnet/fault", json={"venue": "hyperliquid", "mode": mode, **extra},
                          timeout=5)
    response.raise_for_status()


def _consistency(db: Path) -> dict[str, int]:
    """Counts, after checking every snapshot is whole: its accounts, their positions, its assessment;
    every outbox row belongs to a stored snapshot; every scan has its snapshot."""
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            snapshots = conn.execute(sa.select(Snapshot.id)).scalars().all()
            for snapshot in snapshots:
                accounts = conn.execute(
                    sa.select(AccountSnapshot.id).where(AccountSnapshot.snapshot_id == snapshot)
                ).scalars().all()
                assert accounts, f"snapshot {snapshot} has no accounts"
                positions = conn.execute(
                    sa.select(sa.func.count()).select_from(PositionRow)
                    .where(PositionRow.account_snapshot_id.in_(accounts))
                ).scalar_one()
                assert positions > 0, f"snapshot {snapshot} has no positions"
                assessed = conn.execute(
                    sa.select(sa.func.count()).select_from(AssessmentRow)
                    .where(AssessmentRow.snapshot_id == snapshot)
                ).scalar_one()
                assert assessed == 1, f"snapshot {snapshot} has no assessment"
            orphans = conn.execute(
                sa.select(sa.func.count()).select_from(OutboxRow)
                .where(OutboxRow.snapshot_id.is_not(None), OutboxRow.snapshot_id.not_in(snapshots or [-1]))
            ).scalar_one()
            assert orphans == 0
            scans = conn.execute(sa.select(sa.func.count()).select_from(Scan)).scalar_one()
            outbox = conn.execute(sa.select(sa.func.count()).select_from(OutboxRow)).scalar_one()
            return {"snapshots": len(snapshots), "scans": scans, "outbox": outbox}
    finally:
        engine.dispose()


def _run_watch_and_term(config: Path, environ: dict[str, str], wallet: str, only: str) -> tuple[int, list[dict[str, Any]]]:
    env = {**os.environ, **environ}
    env.pop("CROSSMARGIN_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "watch", wallet, "--portfolio", PORTFOLIO, "--config", str(config),
         "--only", only, "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 90
        for raw in process.stderr:
            lines.append(json.loads(raw))
            if lines[-1]["event"] == "cycle.start":
                time.sleep(1.0)  # well inside the hung Hyperliquid read
                process.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, "no cycle started"
        lines += [json.loads(raw) for raw in process.stderr]
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, lines


@pytest.mark.parametrize("grace", ["1s", "60s"])
def test_sigterm_mid_cycle_leaves_the_database_consistent(
    fresh_devnet: Devnet, tmp_path: Path, receiver: tuple[WebhookReceiver, str], grace: str
) -> None:
    hook, secret = receiver
    # warning 2.0: the Aave leg (1.65) fires in the first cycle, so a stored snapshot carries outbox rows
    config, environ, only = _write_config(
        fresh_devnet, tmp_path, hook, secret, warning=2.0,
        watch=f'interval = "1h"\nshutdown_grace = "{grace}"\nretention = false',
    )
    _fault(fresh_devnet, "timeout", hang_seconds=4)
    try:
        code, lines = _run_watch_and_term(config, environ, fresh_devnet.wallets["hedged"], only)
    finally:
        _fault(fresh_devnet, "none")
    events = [line["event"] for line in lines]
    assert code == 0, lines[-5:]
    assert "signal" in events and events[-1] == "watch.stopped"
    counts = _consistency(tmp_path / "watch.db")
    if grace == "1s":  # cancelled inside the hung read: nothing at all was stored
        assert "cycle.cancelled" in events and "cycle.done" not in events
        assert counts == {"snapshots": 0, "scans": 0, "outbox": 0}
    else:  # the hang ends within the grace: the cycle completes and is stored whole
        assert "cycle.done" in events and "cycle.cancelled" not in events
        assert counts == {"snapshots": 1, "scans": 1, "outbox": 1}
    stopped = next(line for line in lines if line["event"] == "watch.stopped")
    assert stopped["cancelled"] == (1 if grace == "1s" else 0)
