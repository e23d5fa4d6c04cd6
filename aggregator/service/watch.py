"""The watch service: every portfolio scanned on its interval by an APScheduler 3 ``AsyncIOScheduler``,
optionally rescanned on new blocks, alerts delivered by the outbox worker, the monitor's heartbeat
checked, retention applied, and a clean stop.

Jobs (memory job store; ids are stable):

- ``cycle:<portfolio>``: ``IntervalTrigger(interval)``, first run at start (staggered by 0.25 s per
  portfolio), ``coalesce=True``, ``max_instances=1``, ``misfire_grace_time`` from ``[watch]``; the job
  function is :meth:`PortfolioRunner.scheduled`, which runs ``aggregator.pipeline.run_cycle`` (scan ->
  assess -> alert decisions -> one store transaction; the computing and database steps in worker
  threads of ``aggregator.pipeline.cycle_executor``, so the loop keeps serving the block watchers, the
  worker and the other portfolios meanwhile) and wakes the delivery worker when the cycle stored
  outbox rows;
- ``heartbeat``: every ``heartbeat_interval``: ``decide_heartbeat`` per portfolio with the time of its
  last completed cycle (the service's start time until the first one completes), stored through
  ``Repository.store_alert_outcome`` (it fires when the monitor's last completed cycle is too old per
  the ``heartbeat`` rules of ``[alerts]``);
- ``retention``: every ``retention_interval``: ``aggregator.db.retention.run_retention`` with the
  ``[database.retention]`` policy, in a worker thread.

Block-driven mode (``block_driven`` globally or per portfolio): one :class:`BlockWatcher` per chain
the selected deployments use; a new head is passed to every runner (each decides whether it has
positions on that chain, see ``runner``).

The delivery worker (``aggregator.alerts.worker.DeliveryWorker``) runs alongside when ``[alerts]`` has
channels. :meth:`WatchService.run` returns when ``stop`` is set (SIGTERM/SIGINT, see ``signals``) or,
with ``max_cycles``, when every portfolio has run that many cycles, completed or failed (then the
outbox is drained: every due row attempted once more, bounded): it pauses the scheduler,
lets cycles in flight finish within ``shutdown_grace`` (else cancels them, see ``runner``), stops the
block watchers, stops the worker (which releases its leases) and closes the HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from adapters.addresses import ChecksumAddress
from aggregator.config import Settings
from aggregator.db.repository import Repository
from aggregator.db.retention import RetentionPolicy, run_retention
from aggregator.errors import CrossmarginError
from aggregator.scan import select_targets
from aggregator.service.blocks import BlockWatcher, NewBlock
from aggregator.service.logs import LOGGER_NAME, log_event
from aggregator.service.runner import CycleDone, PortfolioRunner, WatchTarget

if TYPE_CHECKING:
    from aggregator.alerts.worker import DeliveryWorker
    from aggregator.pipeline import CycleResult

__all__ = ["CycleFn", "WatchService", "build_http_client", "watched_chains"]

logger = logging.getLogger(f"{LOGGER_NAME}.watch")

_STAGGER_S = 0.25
_WORKER_STOP_TIMEOUT_S = 15.0
_DRAIN_ROUNDS = 10


class CycleFn(Protocol):
    """``aggregator.pipeline.run_cycle``'s signature (the part the service uses)."""

    def __call__(
        self,
        settings: Settings,
        *,
        portfolio: str,
        wallets: Sequence[ChecksumAddress],
        only: str | None = None,
        repository: Repository | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> Awaitable[CycleResult]: ...


def build_http_client() -> httpx.AsyncClient:
    """The one client for scans, block polling and deliveries: explicit timeouts, no redirects."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        limits=httpx.Limits(max_connections=128, max_keepalive_connections=32),
        follow_redirects=False,
        headers={"user-agent": "crossmargin"},
    )


def watched_chains(settings: Settings, targets: Sequence[WatchTarget]) -> list[str]:
    """Chains of the EVM deployments the block-driven targets read (sorted)."""
    chains: set[str] = set()
    for target in targets:
        if not target.block_driven:
            continue
        selected, _ = select_targets(settings, target.only)
        chains |= {t.chain for t in selected if t.chain is not None}
    return sorted(c for c in chains if c in settings.chains)


def _chains_with_positions(result: CycleResult) -> frozenset[str]:
    return frozenset(
        a.as_of.chain for a in result.scan.accounts if a.as_of.chain is not None and a.positions
    )


class WatchService:
    """See the module docstring. ``cycle_fn`` and ``worker_factory`` exist for tests and benchmarks."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        targets: Sequence[WatchTarget],
        *,
        cycle_fn: CycleFn | None = None,
        worker_factory: Callable[[Engine, httpx.AsyncClient], DeliveryWorker | None] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_cycles: int | None = None,  # stop after this many cycles per portfolio (ok or failed)
        on_cycle: Callable[[WatchTarget, CycleResult], None] | None = None,
        on_failure: Callable[[WatchTarget, Exception], None] | None = None,
    ) -> None:
        if not targets:
            raise CrossmarginError("nothing to watch: no portfolio and no wallet given")
        self.settings = settings
        self.engine = engine
        self.repository = Repository(engine)
        self.targets = list(targets)
        self._cycle_fn = cycle_fn
        self._worker_factory = worker_factory
        self._clock = clock or (lambda: datetime.now(UTC))
        self.max_cycles = max_cycles
        self.on_cycle = on_cycle
        self.on_failure = on_failure
        watch = settings.watch
        self.runners: dict[str, PortfolioRunner] = {
            t.name: PortfolioRunner(t, self._execute, debounce=watch.block_debounce) for t in self.targets
        }
        self.latest: dict[str, CycleResult] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.worker: DeliveryWorker | None = None
        self.http: httpx.AsyncClient | None = None
        self.watchers: list[BlockWatcher] = []
        self._stop: asyncio.Event | None = None
        self.started_at: datetime | None = None
        self._drain = False

    # ------------------------------------------------------------------------------------------
    # the jobs

    async def trigger(self, portfolio: str) -> None:
        """Run one cycle of ``portfolio`` now, as the scheduler's job does (skipped if one is in flight)."""
        await self.runners[portfolio].scheduled()

    async def _execute(self, target: WatchTarget, reason: str) -> CycleDone | None:
        assert self.http is not None
        started = time.monotonic()
        log_event(logger, logging.INFO, "cycle.start", f"{target.name}: cycle started ({reason})",
                  portfolio=target.name, reason=reason, wallets=len(target.wallets))
        cycle = self._cycle_fn
        if cycle is None:
            from aggregator.pipeline import run_cycle

            cycle = run_cycle
        try:
            result = await cycle(
                self.settings, portfolio=target.name, wallets=target.wallets, only=target.only,
                repository=self.repository, http=self.http,
            )
        except asyncio.CancelledError:
            raise
        except CrossmarginError as exc:
            log_event(logger, logging.ERROR, "cycle.failed", f"{target.name}: cycle failed: {exc}",
                      portfolio=target.name, reason=reason, error=type(exc).__name__)
            if self.on_failure is not None:
                self.on_failure(target, exc)
            self._check_done(target.name)
            return None
        except Exception as exc:  # a bug in one cycle must not stop the service
            logger.exception("%s: cycle failed unexpectedly", target.name,
                             extra={"event": "cycle.error", "fields": {"portfolio": target.name,
                                                                        "error": type(exc).__name__}})
            if self.on_failure is not None:
                self.on_failure(target, exc)
            self._check_done(target.name)
            return None
        completed = self._clock()
        self.latest[target.name] = result
        outbox = len(result.alerts.outbox) if result.alerts is not None else 0
        if outbox and self.worker is not None:
            self.worker.wake()
        assessment = result.assessment
        log_event(
            logger, logging.INFO, "cycle.done", f"{target.name}: cycle stored",
            portfolio=target.name, reason=reason, snapshot_id=result.snapshot_id,
            accounts=len(result.scan.accounts),
            unavailable=sum(1 for r in result.scan.reads if r.status == "unavailable"),
            chf=None if assessment is None else _finite(assessment.chf),
            chf_account=None if assessment is None else assessment.chf_account,
            decisions=0 if result.alerts is None else len(result.alerts.decisions),
            outbox=outbox, duration_s=round(time.monotonic() - started, 3),
        )
        if self.on_cycle is not None:
            self.on_cycle(target, result)
        done = CycleDone(completed_at=completed, chains=_chains_with_positions(result))
        self._check_done(target.name)
        return done

    def _check_done(self, just_finished: str) -> None:
        if self.max_cycles is None or self._stop is None:
            return
        counts = [r.cycles + r.failures + (1 if name == just_finished else 0)
                  for name, r in self.runners.items()]
        if all(c >= self.max_cycles for c in counts):
            self._drain = True  # --cycles: deliver what the cycles decided before exiting
            self._stop.set()

    async def _heartbeat(self) -> None:
        from aggregator.alerts.decide import decide_heartbeat

        now = self._clock()
        for name, runner in self.runners.items():
            last = runner.last_completed_at or self.started_at
            try:
                previous = await asyncio.to_thread(self.repository.load_alert_states, name)
                outcome = decide_heartbeat(self.settings.alerts, portfolio=name, last_completed_at=last,
                                           previous=previous, now=now)
                if outcome.states or outcome.outbox:
                    await asyncio.to_thread(self.repository.store_alert_outcome, name, outcome)
            except CrossmarginError as exc:
                log_event(logger, logging.ERROR, "heartbeat.failed", f"{name}: heartbeat failed: {exc}",
                          portfolio=name)
                continue
            age = None if last is None else round((now - last).total_seconds(), 1)
            log_event(logger, logging.DEBUG, "heartbeat", f"{name}: last completed cycle {age} s ago",
                      portfolio=name, age_s=age, outbox=len(outcome.outbox))
            if outcome.outbox and self.worker is not None:
                self.worker.wake()

    async def _retention(self) -> None:
        """``[database.retention]`` applied by :func:`aggregator.db.retention.run_retention` in a thread."""
        policy = RetentionPolicy.from_settings(self.settings.database.retention)
        try:
            report = await asyncio.to_thread(run_retention, self.engine, policy, self._clock())
        except CrossmarginError as exc:
            log_event(logger, logging.ERROR, "retention.failed", f"retention failed: {exc}")
            return
        log_event(logger, logging.INFO, "retention.done", "retention applied", report=report.summary())

    def _on_block(self, block: NewBlock) -> None:
        log_event(logger, logging.DEBUG, "block", f"{block.chain}: block {block.number}",
                  chain=block.chain, number=block.number, source=block.source)
        for runner in self.runners.values():
            runner.on_block(block)

    # ------------------------------------------------------------------------------------------
    # lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or ``max_cycles`` is reached), then shut down cleanly."""
        self._stop = stop
        watch = self.settings.watch
        self.started_at = self._clock()
        self.http = build_http_client()
        worker_stop = asyncio.Event()
        worker_task: asyncio.Task[None] | None = None
        watcher_tasks: list[asyncio.Task[None]] = []
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, round(watch.misfire_grace))},
        )
        self.scheduler = scheduler
        try:
            self.worker = self._make_worker(self.http)
            if self.worker is not None:
                worker_task = asyncio.create_task(
                    self.worker.run(worker_stop, poll_interval=watch.delivery_poll_interval),
                    name="delivery-worker",
                )
            now = self._clock()
            for index, target in enumerate(self.targets):
                scheduler.add_job(
                    self.runners[target.name].scheduled,
                    IntervalTrigger(seconds=target.interval, timezone=UTC),
                    id=f"cycle:{target.name}", name=f"cycle {target.name}", replace_existing=True,
                    next_run_time=now + timedelta(seconds=index * _STAGGER_S),
                )
            scheduler.add_job(self._heartbeat,
                              IntervalTrigger(seconds=watch.heartbeat_interval, timezone=UTC),
                              id="heartbeat", name="heartbeat", replace_existing=True)
            if watch.retention:
                scheduler.add_job(self._retention,
                                  IntervalTrigger(seconds=watch.retention_interval, timezone=UTC),
                                  id="retention", name="retention", replace_existing=True)
            for chain in watched_chains(self.settings, self.targets):
                watcher = BlockWatcher(chain, self.settings.chains[chain], watch, self.http, self._on_block)
                self.watchers.append(watcher)
                watcher_tasks.append(asyncio.create_task(watcher.run(), name=f"blocks:{chain}"))
            scheduler.start()
            log_event(
                logger, logging.INFO, "watch.start",
                f"watching {len(self.targets)} portfolio(s)",
                portfolios=[t.name for t in self.targets],
                intervals={t.name: t.interval for t in self.targets},
                block_driven=[t.name for t in self.targets if t.block_driven],
                chains=[w.chain for w in self.watchers], delivery=self.worker is not None,
            )
            await stop.wait()
        finally:
            await self._shutdown(scheduler, watcher_tasks, worker_stop, worker_task)

    async def _drain_outbox(self, worker: DeliveryWorker) -> None:
        """Attempt every due outbox row once more (bounded): ``--cycles`` exits with its alerts sent
        unless a channel asks to retry later (those rows wait for the next run)."""
        for _ in range(_DRAIN_ROUNDS):
            try:
                if await worker.run_once() == 0:
                    return
            except Exception:
                logger.exception("delivering the last alerts failed", extra={"event": "worker.error"})
                return

    def _make_worker(self, http: httpx.AsyncClient) -> DeliveryWorker | None:
        if self._worker_factory is not None:
            return self._worker_factory(self.engine, http)
        if not self.settings.alerts.channels:
            return None
        from aggregator.alerts.worker import DeliveryWorker

        return DeliveryWorker(self.engine, self.settings.alerts, http)

    async def _shutdown(
        self,
        scheduler: AsyncIOScheduler,
        watcher_tasks: list[asyncio.Task[None]],
        worker_stop: asyncio.Event,
        worker_task: asyncio.Task[None] | None,
    ) -> None:
        log_event(logger, logging.INFO, "watch.stopping", "stopping: no new cycles")
        if scheduler.running:
            scheduler.pause()
        for task in watcher_tasks:
            task.cancel()
        for task in watcher_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        grace = self.settings.watch.shutdown_grace
        cancelled = await asyncio.gather(*(r.stop(grace) for r in self.runners.values()))
        if worker_task is not None:
            worker_stop.set()  # the worker finishes the batch in hand, recording every attempt
            try:
                await asyncio.wait_for(worker_task, _WORKER_STOP_TIMEOUT_S)
            except TimeoutError:
                log_event(logger, logging.WARNING, "worker.timeout",
                          "the delivery worker did not stop in time; its leases expire on their own")
            except Exception:
                logger.exception("the delivery worker failed", extra={"event": "worker.error"})
        if self.worker is not None:
            if self._drain:
                await self._drain_outbox(self.worker)
            await self.worker.aclose()
        if scheduler.running:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler.shutdown runs via call_soon_threadsafe
        if self.http is not None:
            await self.http.aclose()
        log_event(logger, logging.INFO, "watch.stopped", "stopped",
                  cycles={n: r.cycles for n, r in self.runners.items()},
                  cancelled=sum(1 for c in cancelled if c))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
