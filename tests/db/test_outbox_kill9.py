"""A delivery worker killed with ``kill -9`` at random points loses no alert; each alert arrives at least
once, with at most one duplicate per kill.

The receiver is a separate process (a plain ``http.server``) that appends every ``webhook-id`` it gets
to a file before answering 200. Workers are forked children running ``DeliveryWorker.run`` with a short
lease; each cycle the parent stores a few new outbox rows, starts a worker, SIGKILLs it after a random
delay (so kills land before a claim, mid-send, between the receiver's 2xx and our commit, ...), and
goes on. After the last cycle one worker runs until the outbox is drained.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.worker import DeliveryWorker
from aggregator.db import Repository, ScanInfo, create_engine, upgrade
from aggregator.db import outbox_store as ob
from tests.support.local_server import free_port

CYCLES = 55
PER_CYCLE = 4
LEASE = timedelta(milliseconds=300)
_fork = multiprocessing.get_context("fork")
ROOT = Path(__file__).resolve().parents[2]


def receiver_main(port: int, log_path: str) -> None:
    """Run in its own process: record each webhook-id (one line, flushed) and answer 200."""
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            self.rfile.read(length)
            log.write(self.headers.get("webhook-id", "?") + "\n")
            log.flush()
            time.sleep(random.uniform(0, 0.004))  # widen the window between 2xx and the sender's commit
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _alerts(port: int) -> AlertsSettings:
    return AlertsSettings.model_validate(
        {
            "channels": {
                "hook": {
                    "type": "webhook",
                    "webhook_url": f"http://127.0.0.1:{port}/hook",
                    "allow_private": True,
                }
            },
            "delivery": {"base_delay": "0.05s", "max_delay": "0.2s", "batch_size": 3},
        }
    )


def _worker_child(url: str, port: int, name: str) -> None:
    engine = create_engine(sa.make_url(url))

    async def main() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            worker = DeliveryWorker(engine, _alerts(port), client, worker_id=name, lease=LEASE)
            await worker.run(asyncio.Event(), poll_interval=0.02)

    asyncio.run(main())
    os._exit(0)


def _pending(url: str) -> int:
    engine = create_engine(sa.make_url(url))
    try:
        return len(ob.outbox_rows(engine, statuses=["pending"], limit=100_000))
    finally:
        engine.dispose()


@pytest.fixture
def receiver(tmp_path: Path) -> tuple[int, Path]:
    port = free_port()
    log = tmp_path / "received.txt"
    log.touch()
    code = f"from tests.db.test_outbox_kill9 import receiver_main; receiver_main({port}, {str(log)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.post(f"http://127.0.0.1:{port}/hook", headers={"webhook-id": "probe"}, timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.05)
    yield port, log  # type: ignore[misc]
    proc.kill()
    proc.wait()


def test_kill9_loses_no_alert_and_duplicates_at_most_once_per_kill(
    db_url: str, receiver: tuple[int, Path]
) -> None:
    port, log = receiver
    engine = create_engine(sa.make_url(db_url))
    upgrade(engine)
    repo = Repository(engine, clock=lambda: datetime.now(UTC))
    rng = random.Random(20261121)
    expected: list[str] = []
    kills = 0
    for cycle in range(CYCLES):
        rows = [
            {"event_id": f"alr_{cycle:03d}_{k}", "channel": "hook", "payload": _payload(cycle, k)}
            for k in range(PER_CYCLE)
        ]
        expected += [r["event_id"] for r in rows]
        repo.store_scan(ScanInfo(id=f"scan-{cycle}", started_at=datetime.now(UTC)), "fund", [], outbox=rows)
        child = _fork.Process(target=_worker_child, args=(db_url, port, f"w{cycle}"))
        child.start()
        time.sleep(
            rng.uniform(0.0, 0.5)
        )  # a worker needs ~0.1 s to start: kills land before, in and after work
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        kills += 1
    delivered_under_kills = len(set(log.read_text().split()) - {"probe"})
    # one last worker drains the outbox
    child = _fork.Process(target=_worker_child, args=(db_url, port, "final"))
    child.start()
    deadline = time.monotonic() + 30
    while _pending(db_url) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()

    received = Counter(line.strip() for line in log.read_text().splitlines() if line.strip() != "probe")
    missing = sorted(set(expected) - set(received))
    assert missing == [], f"{len(missing)} alerts never arrived"
    assert set(received) == set(expected)
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= kills, (duplicates, kills)
    # the kills hit working workers: most alerts went out before the final drain
    assert delivered_under_kills >= len(expected) // 2, delivered_under_kills
    print(
        f"kills={kills} alerts={len(expected)} before-drain={delivered_under_kills} duplicates={duplicates}"
    )
    statuses = Counter(r["status"] for r in ob.outbox_rows(engine, limit=100_000))
    assert statuses == {"sent": len(expected)}
    engine.dispose()


def _payload(cycle: int, k: int) -> dict[str, object]:
    return {
        "v": 1,
        "channel_type": "webhook",
        "message": {
            "message_id": f"alr_{cycle:03d}_{k}",
            "severity": "critical",
            "title": f"CRITICAL · cycle {cycle} alert {k}",
            "body": ["kill -9 test"],
            "data": {"cycle": cycle, "k": k},
        },
    }
