"""CSV export of stored positions and assessments (one row per position / per snapshot).

Exact values are written as the stored decimal text; +inf healths as ``inf``; missing values empty;
times ISO 8601 UTC. Reads the same tables as ``aggregator.db.history``.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db.engine import storage_errors
from aggregator.db.history import portfolio_id
from aggregator.db.models import AccountSnapshot, AssessmentRow, PositionRow, Snapshot

__all__ = ["ASSESSMENT_COLUMNS", "POSITION_COLUMNS", "export_assessments_csv", "export_positions_csv"]

POSITION_COLUMNS = (
    "taken_at",
    "scan_id",
    "venue",
    "deployment",
    "account_id",
    "wallet",
    "account_status",
    "token",
    "factor",
    "kind",
    "quantity",
    "price",
    "value",
    "price_source",
)
ASSESSMENT_COLUMNS = (
    "taken_at",
    "scan_id",
    "chf",
    "chf_account",
    "stressed_chf",
    "stressed_scenario",
    "p_liq",
    "pooled_hf",
    "netted_hf",
    "fragmentation_cost_usd",
)
_INF_COLUMNS = frozenset({"chf", "stressed_chf", "pooled_hf", "netted_hf"})


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "inf" if column in _INF_COLUMNS else ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _where(query: Any, pid: int, since: datetime | None, until: datetime | None) -> Any:
    query = query.where(Snapshot.portfolio_id == pid)
    if since is not None:
        query = query.where(Snapshot.taken_at >= since)
    if until is not None:
        query = query.where(Snapshot.taken_at <= until)
    return query


def export_positions_csv(
    engine: Engine,
    portfolio: str,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write every stored position of ``portfolio`` in the window; returns the number of rows."""
    query = (
        sa.select(
            Snapshot.taken_at,
            Snapshot.scan_id,
            AccountSnapshot.venue,
            AccountSnapshot.deployment,
            AccountSnapshot.account_id,
            AccountSnapshot.wallet,
            AccountSnapshot.status,
            PositionRow.token,
            PositionRow.factor,
            PositionRow.kind,
            PositionRow.quantity,
            PositionRow.price,
            PositionRow.value,
            PositionRow.price_source,
        )
        .join(AccountSnapshot, AccountSnapshot.snapshot_id == Snapshot.id)
        .join(PositionRow, PositionRow.account_snapshot_id == AccountSnapshot.id)
        .order_by(Snapshot.taken_at, AccountSnapshot.id, PositionRow.ordinal)
    )
    return _write(
        engine, portfolio, out, query, POSITION_COLUMNS, since=since, until=until, action="export positions"
    )


def export_assessments_csv(
    engine: Engine,
    portfolio: str,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the composite figures of every stored snapshot of ``portfolio``; returns the number of rows."""
    query = (
        sa.select(
            Snapshot.taken_at,
            Snapshot.scan_id,
            AssessmentRow.chf,
            AssessmentRow.chf_account,
            AssessmentRow.stressed_chf,
            AssessmentRow.stressed_scenario,
            AssessmentRow.p_liq,
            AssessmentRow.pooled_hf,
            AssessmentRow.netted_hf,
            AssessmentRow.fragmentation_cost_usd,
        )
        .join(AssessmentRow, AssessmentRow.snapshot_id == Snapshot.id)
        .order_by(Snapshot.taken_at)
    )
    return _write(
        engine,
        portfolio,
        out,
        query,
        ASSESSMENT_COLUMNS,
        since=since,
        until=until,
        action="export assessments",
    )


def _write(
    engine: Engine,
    portfolio: str,
    out: TextIO,
    query: Any,
    columns: tuple[str, ...],
    *,
    since: datetime | None,
    until: datetime | None,
    action: str,
) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    with storage_errors(engine.url, action), engine.connect() as conn:
        pid = portfolio_id(conn, portfolio)
        for row in conn.execute(_where(query, pid, since, until)):
            writer.writerow([_cell(c, v) for c, v in zip(columns, row, strict=True)])
            count += 1
    return count
