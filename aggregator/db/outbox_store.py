"""The outbox relay's queries: claim due rows under a lease, record each attempt, finish or reschedule.

Statuses of ``outbox.status``: ``pending`` (due at ``next_attempt_at``; leased while ``leased_until`` is in
the future), ``sent``, ``failed`` (the channel refused it permanently) and ``dead`` (still failing once
older than the channel's retry age). ``failed`` and ``dead`` are the dead letters.

Claim: one write transaction (``BEGIN IMMEDIATE`` on SQLite, so two relays never claim the same row;
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent relays skip each other's rows instead of
waiting) sets ``leased_until = now + lease``, ``leased_by = worker`` and ``attempts = attempts + 1`` on
up to ``limit`` due rows whose lease is free or expired (a relay killed mid-send leaves an expired lease,
and the row is claimed again), and inserts one ``deliveries`` row per claim with outcome ``in_flight``:
every attempt is recorded, including one a crash interrupted.

The claimed ``attempts`` value is a fencing token: :func:`finish` changes the outbox row only while the
same worker still holds that attempt's lease, so a relay that lost its lease cannot overwrite the
result of the relay that took the row over; its delivery row is recorded either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db.engine import storage_errors, write_transaction
from aggregator.db.models import Delivery, OutboxRow

__all__ = [
    "DEAD_STATUSES",
    "AttemptRecord",
    "ClaimedRow",
    "Outcome",
    "claim_due",
    "deliveries",
    "finish",
    "finish_many",
    "hold_channel",
    "outbox_rows",
    "release",
    "requeue",
]

OUTBOX = cast(sa.Table, OutboxRow.__table__)
DELIVERIES = cast(sa.Table, Delivery.__table__)
DEAD_STATUSES = ("failed", "dead")


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    event_id: str
    channel: str
    payload: dict[str, Any]
    attempt: int  # this claim's attempt number (the fencing token)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """How one attempt went (``deliveries`` row)."""

    started_at: datetime
    outcome: str  # sent | retry | permanent | dead
    status_code: int | None
    error: str | None  # already redacted by the caller
    latency_ms: float | None
    provider_message_id: str | None = None


def claim_due(
    engine: Engine,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    skip_channels: Sequence[str] = (),
) -> list[ClaimedRow]:
    """Lease up to ``limit`` due rows (oldest due first); see the module docstring."""
    t = OUTBOX
    due = (
        sa.select(t.c.id)
        .where(
            t.c.status == "pending",
            t.c.next_attempt_at <= now,
            sa.or_(t.c.leased_until.is_(None), t.c.leased_until <= now),
        )
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip_channels:
        due = due.where(t.c.channel.not_in(list(skip_channels)))
    claim = (
        sa.update(t)
        .where(t.c.id.in_(due.scalar_subquery()))
        .values(leased_until=now + lease, leased_by=worker_id, attempts=t.c.attempts + 1)
        .returning(t.c.id, t.c.event_id, t.c.channel, t.c.payload, t.c.attempts, t.c.created_at)
    )
    with storage_errors(engine.url, "claim outbox rows"), write_transaction(engine) as conn:
        rows = [
            ClaimedRow(
                id=int(r.id),
                event_id=r.event_id,
                channel=r.channel,
                payload=dict(r.payload),
                attempt=int(r.attempts),
                created_at=r.created_at,
            )
            for r in conn.execute(claim)
        ]
        if rows:
            conn.execute(
                sa.insert(DELIVERIES),
                [
                    {
                        "outbox_id": r.id,
                        "attempt": r.attempt,
                        "started_at": now,
                        "ok": False,
                        "outcome": "in_flight",
                        "worker": worker_id,
                    }
                    for r in rows
                ],
            )
    rows.sort(key=lambda r: r.id)
    return rows


def _mine(row: ClaimedRow, worker_id: str) -> sa.ColumnElement[bool]:
    t = OUTBOX
    return sa.and_(t.c.id == row.id, t.c.leased_by == worker_id, t.c.attempts == row.attempt)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One claimed row's attempt and where the row goes next (see :func:`finish_many`)."""

    row: ClaimedRow
    record: AttemptRecord
    status: str  # pending | sent | failed | dead
    next_attempt_at: datetime | None


def finish(
    engine: Engine,
    row: ClaimedRow,
    *,
    worker_id: str,
    record: AttemptRecord,
    status: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> bool:
    """Record the attempt and move the row to ``status`` (``pending`` with ``next_attempt_at`` to retry).
    Returns False when the lease was lost (the row is left to its new holder)."""
    return finish_many(engine, [Outcome(row, record, status, next_attempt_at)], worker_id=worker_id)[0]


def finish_many(engine: Engine, outcomes: Sequence[Outcome], *, worker_id: str) -> list[bool]:
    """:func:`finish` for several rows in one transaction; per row, whether the lease was still held."""
    t = OUTBOX
    kept: list[bool] = []
    with storage_errors(engine.url, "record alert deliveries"), write_transaction(engine) as conn:
        for item in outcomes:
            row, record = item.row, item.record
            values: dict[str, Any] = {"status": item.status, "leased_until": None, "leased_by": None}
            if item.status == "sent":
                values |= {"sent_at": record.started_at, "last_error": None}
            else:
                values["last_error"] = record.error
            if item.next_attempt_at is not None:
                values["next_attempt_at"] = item.next_attempt_at
            conn.execute(
                sa.update(DELIVERIES)
                .where(DELIVERIES.c.outbox_id == row.id, DELIVERIES.c.attempt == row.attempt)
                .values(
                    started_at=record.started_at,
                    status_code=record.status_code,
                    ok=record.outcome == "sent",
                    error=record.error,
                    latency_ms=record.latency_ms,
                    outcome=record.outcome,
                    provider_message_id=record.provider_message_id,
                )
            )
            changed = conn.execute(sa.update(t).where(_mine(row, worker_id)).values(**values)).rowcount
            kept.append(bool(changed))
    return kept


def release(engine: Engine, rows: Sequence[ClaimedRow], *, worker_id: str, until: datetime) -> None:
    """Give back claimed rows that were not attempted (their channel is on hold until ``until``): the
    claim's attempt number and delivery row are undone."""
    if not rows:
        return
    t = OUTBOX
    with storage_errors(engine.url, "release outbox rows"), write_transaction(engine) as conn:
        for row in rows:
            changed = conn.execute(
                sa.update(t)
                .where(_mine(row, worker_id))
                .values(leased_until=None, leased_by=None, attempts=row.attempt - 1, next_attempt_at=until)
            ).rowcount
            if changed:
                conn.execute(
                    sa.delete(DELIVERIES).where(
                        DELIVERIES.c.outbox_id == row.id,
                        DELIVERIES.c.attempt == row.attempt,
                        DELIVERIES.c.outcome == "in_flight",
                    )
                )


def hold_channel(engine: Engine, channel: str, *, until: datetime, now: datetime) -> int:
    """Push every unleased pending row of ``channel`` due before ``until`` to ``until`` (a 429 on that
    route means no request to it before then). Returns the rows moved."""
    t = OUTBOX
    query = (
        sa.update(t)
        .where(
            t.c.channel == channel,
            t.c.status == "pending",
            t.c.next_attempt_at < until,
            sa.or_(t.c.leased_until.is_(None), t.c.leased_until <= now),
        )
        .values(next_attempt_at=until)
    )
    with storage_errors(engine.url, "hold an alert channel"), write_transaction(engine) as conn:
        return int(conn.execute(query).rowcount)


def requeue(engine: Engine, outbox_id: int, *, now: datetime) -> bool:
    """Put a dead letter back in the queue (due now, attempts kept)."""
    t = OUTBOX
    query = (
        sa.update(t)
        .where(t.c.id == outbox_id, t.c.status.in_(DEAD_STATUSES))
        .values(status="pending", next_attempt_at=now, leased_until=None, leased_by=None, created_at=now)
    )
    with storage_errors(engine.url, "requeue an outbox row"), write_transaction(engine) as conn:
        return bool(conn.execute(query).rowcount)


def outbox_rows(
    engine: Engine, *, statuses: Sequence[str] | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Outbox rows, newest first, without payload bodies (title only)."""
    t = OUTBOX
    query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if statuses:
        query = query.where(t.c.status.in_(list(statuses)))
    with storage_errors(engine.url, "list the outbox"), engine.connect() as conn:
        out = []
        for r in conn.execute(query):
            message = (r.payload or {}).get("message") or {}
            out.append(
                {
                    "id": int(r.id),
                    "event_id": r.event_id,
                    "channel": r.channel,
                    "status": r.status,
                    "attempts": int(r.attempts),
                    "title": message.get("title"),
                    "created_at": r.created_at,
                    "next_attempt_at": r.next_attempt_at,
                    "leased_until": r.leased_until,
                    "sent_at": r.sent_at,
                    "last_error": r.last_error,
                }
            )
        return out


def deliveries(engine: Engine, *, limit: int = 100, outbox_id: int | None = None) -> list[dict[str, Any]]:
    """Delivery attempts, newest first."""
    d, t = DELIVERIES, OUTBOX
    query = (
        sa.select(d, t.c.event_id, t.c.channel)
        .join(t, t.c.id == d.c.outbox_id)
        .order_by(d.c.id.desc())
        .limit(limit)
    )
    if outbox_id is not None:
        query = query.where(d.c.outbox_id == outbox_id)
    with storage_errors(engine.url, "list deliveries"), engine.connect() as conn:
        return [
            {
                "id": int(r.id),
                "outbox_id": int(r.outbox_id),
                "event_id": r.event_id,
                "channel": r.channel,
                "attempt": int(r.attempt),
                "started_at": r.started_at,
                "outcome": r.outcome,
                "ok": bool(r.ok),
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "error": r.error,
                "worker": r.worker,
            }
            for r in conn.execute(query)
        ]
