"""The delivery worker (outbox relay): claim due outbox rows under a lease, send, record, retry.

Per :meth:`DeliveryWorker.run_once`: claim up to ``[alerts.delivery] batch_size`` due rows
(``aggregator.db.outbox_store.claim_due``: lease, attempt number, an ``in_flight`` delivery row), then
send them: different channels concurrently, within a channel in order, ``max_in_flight`` at a time
(default 1), each group's results stored in one transaction before the next group is sent (so a
``kill -9`` can duplicate at most ``max_in_flight`` messages per channel, each at most once). For
each result (``aggregator.alerts.channels.send`` classifies it per the channel's rules):

- ``sent``: status ``sent``;
- ``permanent`` (Telegram 400/401/403/404, Slack 400 ``invalid_payload``/403/404/410, Discord 404 unknown
  webhook and other 4xx, webhook 4xx and 410, a refused destination): status ``failed``;
- ``retry`` (429, 5xx, timeouts, network errors): rescheduled at ``now + max(retry_after,
  uniform(0, min(max_delay, base_delay * 2**(attempt-1))))`` (exponential backoff with full jitter,
  never earlier than the provider's ``retry_after`` / ``Retry-After``); a 429 also holds every other
  pending row of that channel until then (``hold_channel``) and gives back the rows of that channel still
  waiting in this batch, so no request reaches the route inside the wait. Once a row is older than the
  channel's retry age (24 h chat, 72 h webhook by default) the next failure makes it ``dead``; the last
  retry is scheduled at that deadline.

Idempotency: the message id is the outbox row's ``event_id`` and is sent as the Standard Webhooks
``webhook-id``, unchanged across retries, so a receiver recognizes the duplicate a crash between its 2xx
and our commit can cause. Every error string is redacted (``aggregator.redaction``) with the channel's
secrets before it is logged or stored.

Connections go through :class:`aggregator.alerts.pinned.PinnedTransport` (the address the SSRF guard
validated is the one connected to) unless the given client already uses it or ``pinned=False``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.engine import Engine

from aggregator.alerts.channels import SendResult, secret_fragments, send
from aggregator.alerts.pinned import PinnedTransport, pinned_client
from aggregator.alerts.render import message_from_json
from aggregator.alerts.rules import AlertChannel, AlertsSettings, parse_duration
from aggregator.db import outbox_store
from aggregator.db.outbox_store import AttemptRecord, ClaimedRow, Outcome
from aggregator.redaction import redact

__all__ = ["DeliveryWorker", "backoff_delay"]

log = logging.getLogger(__name__)


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter, at least ``retry_after``."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return max(retry_after or 0.0, rng.uniform(0.0, ceiling))


class DeliveryWorker:
    def __init__(
        self,
        engine: Engine,
        alerts: AlertsSettings,
        http: httpx.AsyncClient,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
        lease: timedelta = timedelta(seconds=60),
        pinned: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        for name in ("httpx", "httpcore"):  # they log full URLs, and the Telegram token sits in the path
            logging.getLogger(name).setLevel(logging.WARNING)
        self.engine = engine
        self.alerts = alerts
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:100]
        self.lease = lease
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._own_client: httpx.AsyncClient | None = None
        if pinned and not isinstance(getattr(http, "_transport", None), PinnedTransport):
            timeout = parse_duration(alerts.delivery.timeout).total_seconds()
            self._own_client = pinned_client(alerts, timeout=timeout)
            self._http = self._own_client
        else:
            self._http = http
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holds: dict[str, datetime] = {}
        delivery = alerts.delivery
        self._base = parse_duration(delivery.base_delay).total_seconds()
        self._cap = parse_duration(delivery.max_delay).total_seconds()

    async def aclose(self) -> None:
        """Close the pinned client the worker made for itself (the caller's client is left open)."""
        if self._own_client is not None:
            await self._own_client.aclose()

    # --------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """A cycle just stored outbox rows: poll now (safe to call from another thread)."""
        event, loop = self._wake, self._loop
        if event is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def run(self, stop: asyncio.Event, *, poll_interval: float = 1.0) -> None:
        """Deliver until ``stop`` is set: run_once, then wait for wake(), stop or ``poll_interval``."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        batch = self.alerts.delivery.batch_size
        while not stop.is_set():
            self._wake.clear()
            try:
                attempted = await self.run_once()
            except Exception as exc:  # a database hiccup must not kill the relay
                log.error("alert delivery cycle failed: %s", redact(str(exc)))
                attempted = 0
            if attempted >= batch:
                continue
            waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def run_once(self) -> int:
        """Claim due rows and attempt them; returns how many rows were attempted."""
        now = self._clock()
        self._holds = {c: t for c, t in self._holds.items() if t > now}
        rows = await asyncio.to_thread(
            outbox_store.claim_due,
            self.engine,
            worker_id=self.worker_id,
            now=now,
            lease=self.lease,
            limit=self.alerts.delivery.batch_size,
            skip_channels=tuple(self._holds),
        )
        if not rows:
            return 0
        by_channel: dict[str, list[ClaimedRow]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)
        counts = await asyncio.gather(*(self._deliver_channel(c, rs) for c, rs in by_channel.items()))
        return sum(counts)

    # --------------------------------------------------------------------------------------------

    async def _deliver_channel(self, name: str, rows: list[ClaimedRow]) -> int:
        """Send ``rows`` (one channel) ``max_in_flight`` at a time, storing each group's results in one
        transaction before the next group starts; rows behind a 429 hold are given back unattempted."""
        group = self.alerts.delivery.max_in_flight
        attempted = 0
        index = 0
        while index < len(rows):
            hold = self._holds.get(name)
            if hold is not None and hold > self._clock():
                await asyncio.to_thread(
                    outbox_store.release, self.engine, rows[index:], worker_id=self.worker_id, until=hold
                )
                break
            chunk = rows[index : index + group]
            outcomes = await asyncio.gather(*(self._attempt(row) for row in chunk))
            kept = await asyncio.to_thread(
                outbox_store.finish_many, self.engine, [o for o, _ in outcomes], worker_id=self.worker_id
            )
            for (outcome, result), held in zip(outcomes, kept, strict=True):
                self._log(outcome, result, held)
            attempted += len(chunk)
            index += len(chunk)
        return attempted

    async def _attempt(self, row: ClaimedRow) -> tuple[Outcome, SendResult]:
        channel = self.alerts.channels.get(row.channel)
        started = self._clock()
        t0 = time.perf_counter()
        if channel is None:
            result = SendResult("permanent", detail=f"channel {row.channel!r} is no longer configured")
            secrets: tuple[str, ...] = ()
        else:
            secrets = secret_fragments(channel)
            result = await self._send(channel, row, secrets)
        latency_ms = (time.perf_counter() - t0) * 1000
        now = self._clock()
        error = None if result.outcome == "sent" else redact(result.detail or result.outcome, secrets)[:1000]
        status, next_at, outcome = self._next_state(row, result, channel, now)
        if result.status_code == 429 and next_at is not None:
            self._holds[row.channel] = max(next_at, self._holds.get(row.channel, next_at))
            await asyncio.to_thread(
                outbox_store.hold_channel, self.engine, row.channel, until=next_at, now=now
            )
        record = AttemptRecord(
            started_at=started,
            outcome=outcome,
            status_code=result.status_code,
            error=error,
            latency_ms=latency_ms,
            provider_message_id=result.provider_message_id,
        )
        return Outcome(row, record, status, next_at), result

    async def _send(self, channel: AlertChannel, row: ClaimedRow, secrets: tuple[str, ...]) -> SendResult:
        try:
            message = message_from_json(row.payload["message"])
        except (KeyError, TypeError, ValueError) as exc:
            return SendResult("permanent", detail=f"malformed outbox payload: {type(exc).__name__}")
        chat_id = row.payload.get("chat_id")
        try:
            return await send(
                self._http, channel, message, chat_id=chat_id if isinstance(chat_id, str) else None
            )
        except ValueError as exc:  # e.g. a malformed signing secret (SignatureError)
            return SendResult("permanent", detail=redact(f"{type(exc).__name__}: {exc}", secrets))
        except Exception as exc:  # an unexpected failure is retried, never raised out of the relay
            return SendResult("retry", detail=redact(f"{type(exc).__name__}: {exc}", secrets))

    def _next_state(
        self, row: ClaimedRow, result: SendResult, channel: AlertChannel | None, now: datetime
    ) -> tuple[str, datetime | None, str]:
        """(outbox status, next attempt time, delivery outcome) after this attempt."""
        if result.outcome == "sent":
            return "sent", None, "sent"
        if result.outcome == "permanent" or channel is None:
            return "failed", None, "permanent"
        deadline = row.created_at + self.alerts.delivery.max_age(channel.type)
        if now >= deadline:
            return "dead", None, "dead"
        delay = backoff_delay(
            row.attempt, base=self._base, cap=self._cap, retry_after=result.retry_after_seconds, rng=self._rng
        )
        return "pending", min(now + timedelta(seconds=delay), deadline), "retry"

    def _log(self, outcome: Outcome, result: SendResult, kept: bool) -> None:
        row, status, error = outcome.row, outcome.status, outcome.record.error
        where = f"alert {row.event_id} to {row.channel} (attempt {row.attempt})"
        if not kept:
            log.warning("%s: lease lost before the result was stored; another worker owns the row", where)
        if status == "sent":
            log.info("%s: delivered (HTTP %s)", where, result.status_code)
        elif status == "pending":
            log.warning("%s: will retry (HTTP %s): %s", where, result.status_code, error)
        else:
            log.error("%s: %s, dead letter (HTTP %s): %s", where, status, result.status_code, error)
        if result.new_chat_id is not None:
            log.warning(
                "%s: the Telegram group moved to chat %s; update chat_id in the config",
                where,
                result.new_chat_id,
            )
