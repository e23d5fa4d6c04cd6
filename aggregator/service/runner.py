"""One portfolio's cycles: at most one in flight, block triggers debounced and coalesced, clean stop.

Two things start a cycle:

- the scheduler's interval job calls :meth:`PortfolioRunner.scheduled` (the APScheduler job function);
  when a cycle is already in flight (started by a block) the tick is skipped: the cycle in flight is
  at least as fresh as the tick;
- a new block on a chain where the portfolio held positions at its last cycle calls
  :meth:`PortfolioRunner.on_block`: the rescan starts ``debounce`` seconds later (blocks within that
  window share one rescan); a block seen while a cycle is in flight marks one follow-up rescan, started
  when the cycle ends (however many blocks arrived meanwhile).

The cycle runs in its own task, shielded from the job's cancellation (APScheduler cancels its pending
futures on shutdown); :meth:`stop` lets it finish within ``grace`` seconds, then cancels it. Its
CPU-heavy and blocking steps (market state, engine, advisor, alert decisions, store) run in worker
threads (``aggregator.pipeline.cycle_executor``), so while one portfolio computes or stores, the other
portfolios' cycles, the block watchers and the delivery worker keep running. The store is one database
transaction awaited to its end even when the task is cancelled meanwhile (the cancellation is raised
after it), so a cancelled cycle stores either everything (the transaction had begun) or nothing
(cancelled at an await before it: the venue reads or a computing step, whose result is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from adapters.addresses import ChecksumAddress
from aggregator.service.blocks import NewBlock
from aggregator.service.logs import LOGGER_NAME, log_event

__all__ = ["CycleDone", "PortfolioRunner", "WatchTarget"]

logger = logging.getLogger(f"{LOGGER_NAME}.runner")


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """One portfolio the service watches, with its effective schedule."""

    name: str
    wallets: tuple[ChecksumAddress, ...]
    interval: float
    block_driven: bool = False
    only: str | None = None


@dataclass(frozen=True, slots=True)
class CycleDone:
    """What a finished cycle tells the runner: when, and the chains the portfolio has positions on."""

    completed_at: datetime
    chains: frozenset[str]


Execute = Callable[[WatchTarget, str], Awaitable[CycleDone | None]]
"""Runs one cycle for a target with a reason (``interval``, ``block devnet:123``); None = it failed."""


@dataclass
class PortfolioRunner:
    target: WatchTarget
    execute: Execute
    debounce: float = 0.2
    started_at: datetime | None = None
    last_completed_at: datetime | None = None
    chains: frozenset[str] = frozenset()
    cycles: int = 0  # completed
    failures: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _pending: str | None = field(default=None, repr=False)
    _debounce_handle: asyncio.TimerHandle | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)
    _block_seen_at: float | None = field(default=None, repr=False)

    @property
    def in_flight(self) -> bool:
        return self._task is not None and not self._task.done()

    async def scheduled(self) -> None:
        """The interval job: run a cycle unless one is in flight, and wait for it."""
        if self._stopping:
            return
        if self.in_flight:
            log_event(logger, logging.DEBUG, "cycle.skip",
                      f"{self.target.name}: interval tick skipped, a cycle is in flight",
                      portfolio=self.target.name)
            return
        task = self._start("interval")
        await asyncio.shield(task)

    def on_block(self, block: NewBlock) -> None:
        """A new block: rescan when the portfolio has positions on that chain (see module docstring)."""
        if self._stopping or not self.target.block_driven or block.chain not in self.chains:
            return
        self.request(f"block {block.chain}:{block.number}", seen_at=block.seen_at)

    def request(self, reason: str, *, seen_at: float | None = None) -> None:
        """Ask for a rescan soon (debounced; one follow-up if a cycle is in flight)."""
        if self._stopping:
            return
        if self._block_seen_at is None and seen_at is not None:
            self._block_seen_at = seen_at
        self._pending = reason  # the newest reason wins: one rescan covers every block so far
        if self.in_flight or self._debounce_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._debounce_handle = loop.call_later(self.debounce, self._fire)

    def _fire(self) -> None:
        self._debounce_handle = None
        reason, self._pending = self._pending, None
        if reason is not None and not self._stopping and not self.in_flight:
            self._start(reason)

    def _start(self, reason: str) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(
            self._run(reason), name=f"cycle:{self.target.name}"
        )
        self._task.add_done_callback(self._after)
        return self._task

    def _after(self, _task: asyncio.Task[None]) -> None:
        if self._pending is not None and not self._stopping:
            reason, self._pending = self._pending, None
            self.request(reason)

    async def _run(self, reason: str) -> None:
        block_seen_at, self._block_seen_at = self._block_seen_at, None
        started = time.monotonic()
        try:
            done = await self.execute(self.target, reason)
        except asyncio.CancelledError:
            log_event(logger, logging.WARNING, "cycle.cancelled",
                      f"{self.target.name}: cycle cancelled at shutdown (nothing stored unless its one "
                      "store transaction had begun, which then completes)",
                      portfolio=self.target.name, reason=reason)
            raise
        if done is None:
            self.failures += 1
            return
        self.cycles += 1
        self.last_completed_at = done.completed_at
        self.chains = done.chains
        if block_seen_at is not None:
            log_event(logger, logging.DEBUG, "cycle.block_latency",
                      f"{self.target.name}: block to stored cycle {time.monotonic() - block_seen_at:.3f} s",
                      portfolio=self.target.name, seconds=round(time.monotonic() - block_seen_at, 3),
                      cycle_s=round(time.monotonic() - started, 3))

    async def stop(self, grace: float) -> bool:
        """Stop starting cycles; let the one in flight finish within ``grace`` s, else cancel it.

        Returns True when a cycle had to be cancelled."""
        self._stopping = True
        self._pending = None
        if self._debounce_handle is not None:
            self._debounce_handle.cancel()
            self._debounce_handle = None
        task = self._task
        if task is None or task.done():
            return False
        log_event(logger, logging.INFO, "cycle.draining",
                  f"{self.target.name}: waiting up to {grace:.0f} s for the cycle in flight",
                  portfolio=self.target.name)
        done, _ = await asyncio.wait({task}, timeout=grace)
        if done:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True
