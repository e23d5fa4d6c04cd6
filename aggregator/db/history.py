"""Reads: CHF and account health over time, positions at a time, factor price history.

All functions take an engine and a portfolio name; times are timezone-aware UTC. Healths stored as NULL
(+inf, see ``aggregator.db.models``) come back as ``math.inf``; an unread account's health is ``None``.
``factor_price_history`` returns numpy arrays ready for the EWMA covariance of the risk engine.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db.engine import storage_errors
from aggregator.db.models import (
    AccountSnapshot,
    AssessmentRow,
    FactorPrice,
    PortfolioRow,
    PositionRow,
    Snapshot,
)
from aggregator.errors import InputError

__all__ = [
    "AccountHealthPoint",
    "ChfPoint",
    "FactorPriceHistory",
    "PositionsAt",
    "StoredPosition",
    "account_health_history",
    "chf_history",
    "factor_price_history",
    "portfolio_id",
    "positions_at",
]


@dataclass(frozen=True, slots=True)
class ChfPoint:
    taken_at: datetime
    snapshot_status: str
    chf: float  # math.inf: no requirement anywhere
    chf_account: str | None
    stressed_chf: float
    stressed_scenario: str | None
    p_liq: float | None
    pooled_hf: float
    netted_hf: float
    fragmentation_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class AccountHealthPoint:
    taken_at: datetime
    status: str
    status_reason: str | None
    health: float | None  # math.inf: no requirement; None: not assessed / unavailable
    venue_health: Decimal | None
    model_drift: float | None


@dataclass(frozen=True, slots=True)
class StoredPosition:
    venue: str
    deployment: str
    account_id: str
    wallet: str
    token: str
    factor: str
    basis_factor: str | None
    kind: str
    quantity: Decimal
    price: Decimal
    value: Decimal
    price_source: str
    params: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PositionsAt:
    snapshot_id: int
    scan_id: str
    taken_at: datetime
    positions: tuple[StoredPosition, ...]


@dataclass(frozen=True)
class FactorPriceHistory:
    """``prices[t, f]`` is factor ``factors[f]`` at ``times[t]`` (NaN where it was not recorded)."""

    factors: tuple[str, ...]
    times: npt.NDArray[np.datetime64]
    prices: npt.NDArray[np.float64]

    def complete(self) -> FactorPriceHistory:
        """Only the times at which every factor has a price."""
        keep = ~np.isnan(self.prices).any(axis=1)
        return FactorPriceHistory(self.factors, self.times[keep], self.prices[keep])

    def log_returns(self) -> npt.NDArray[np.float64]:
        """``log(p[t] / p[t-1])`` over the complete rows, shape ``[T-1, F]``."""
        prices = self.complete().prices
        out: npt.NDArray[np.float64] = np.diff(np.log(prices), axis=0)
        return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _inf(value: float | None) -> float:
    return math.inf if value is None else value


def portfolio_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(PortfolioRow.id).where(PortfolioRow.name == name)).scalar_one_or_none()
    if found is None:
        known = list(conn.execute(sa.select(PortfolioRow.name).order_by(PortfolioRow.name)).scalars())
        raise InputError(f"unknown portfolio {name!r} (known: {', '.join(known) or 'none yet'})")
    return int(found)


def _epoch_micros(column: Any, dialect: str) -> Any:
    """``column`` (a ``UtcDateTime``) as integer microseconds since the Unix epoch, computed in SQL.

    PostgreSQL: ``EXTRACT(EPOCH ...)`` is an exact ``numeric`` from version 14. SQLite: the column holds
    SQLAlchemy's text ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC): whole seconds from ``strftime('%s')`` plus
    the six fraction digits. An integer is far cheaper to fetch than a datetime (no per-row parsing)
    and lets the database bucket times for downsampling."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", column) * 1_000_000, sa.BigInteger)
    seconds = sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return seconds * 1_000_000 + sa.cast(sa.func.substr(column, 21, 6), sa.BigInteger)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _raw_rows(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The driver's own row tuples, skipping SQLAlchemy's per-row result processing (a history read
    returns tens of thousands of rows of plain numbers and strings; the few typed columns are
    converted by the caller: ``_decimal`` for ``ExactDecimal``, times as epoch microseconds)."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _decimal(value: Any) -> Decimal:
    """An ``ExactDecimal`` read raw: ``Decimal`` from PostgreSQL, decimal text from SQLite."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _step_micros(every: timedelta | None) -> int | None:
    if every is None:
        return None
    step = int(every.total_seconds() * 1_000_000)
    if step <= 0:
        raise InputError("the sampling interval must be positive")
    return step


def _snapshot_window(
    dialect: str, pid: int, since: datetime | None, until: datetime | None, every: timedelta | None
) -> Any:
    """A subquery ``(id, us, status)`` of the portfolio's snapshots in the window. With ``every``,
    only the last snapshot of each bucket of that length (aligned to the Unix epoch), chosen in SQL
    with ``row_number()`` over ``us / step`` (integer division on both dialects)."""
    micros = _epoch_micros(Snapshot.taken_at, dialect)
    step = _step_micros(every)
    columns = [
        Snapshot.id.label("id"),
        Snapshot.taken_at.label("taken_at"),
        micros.label("us"),
        Snapshot.status.label("status"),
    ]
    if step is not None:
        rank = sa.func.row_number().over(
            partition_by=micros // step, order_by=(Snapshot.taken_at.desc(), Snapshot.id.desc())
        )
        columns.append(rank.label("rank"))
    query = sa.select(*columns).where(Snapshot.portfolio_id == pid)
    if since is not None:
        query = query.where(Snapshot.taken_at >= since)
    if until is not None:
        query = query.where(Snapshot.taken_at <= until)
    window = query.subquery("snaps")
    if step is None:
        return window
    return (
        sa.select(window.c.id, window.c.taken_at, window.c.us, window.c.status)
        .where(window.c.rank == 1)
        .subquery("sampled")
    )


def chf_history(
    engine: Engine,
    portfolio: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    every: timedelta | None = None,
) -> list[ChfPoint]:
    """The composite figures of the stored snapshots of ``portfolio`` in the window, oldest first;
    with ``every``, the last snapshot of each bucket of that length (downsampled in SQL)."""
    with storage_errors(engine.url, "read the CHF history"), engine.connect() as conn:
        pid = portfolio_id(conn, portfolio)
        snaps = _snapshot_window(engine.dialect.name, pid, since, until, every)
        query = (
            sa.select(
                snaps.c.us,
                snaps.c.status,
                AssessmentRow.chf,
                AssessmentRow.chf_account,
                AssessmentRow.stressed_chf,
                AssessmentRow.stressed_scenario,
                AssessmentRow.p_liq,
                AssessmentRow.pooled_hf,
                AssessmentRow.netted_hf,
                AssessmentRow.fragmentation_cost_usd,
            )
            .join(AssessmentRow, AssessmentRow.snapshot_id == snaps.c.id)
            .order_by(snaps.c.taken_at, snaps.c.id)
        )
        rows = _raw_rows(conn, query)
    return [
        ChfPoint(
            taken_at=_from_micros(us),
            snapshot_status=status,
            chf=_inf(chf),
            chf_account=chf_account,
            stressed_chf=_inf(stressed),
            stressed_scenario=scenario,
            p_liq=p_liq,
            pooled_hf=_inf(pooled),
            netted_hf=_inf(netted),
            fragmentation_cost_usd=fragmentation,
        )
        for us, status, chf, chf_account, stressed, scenario, p_liq, pooled, netted, fragmentation in rows
    ]


def account_health_history(
    engine: Engine,
    portfolio: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    every: timedelta | None = None,
) -> dict[str, list[AccountHealthPoint]]:
    """Per account (``deployment/account_id``), its health at every snapshot in the window, oldest
    first; with ``every``, at the last snapshot of each bucket of that length (downsampled in SQL)."""
    with storage_errors(engine.url, "read the account health history"), engine.connect() as conn:
        pid = portfolio_id(conn, portfolio)
        snaps = _snapshot_window(engine.dialect.name, pid, since, until, every)
        query = (
            sa.select(
                AccountSnapshot.deployment,
                AccountSnapshot.account_id,
                snaps.c.us,
                AccountSnapshot.status,
                AccountSnapshot.status_reason,
                AccountSnapshot.health,
                AccountSnapshot.health_infinite,
                AccountSnapshot.venue_health,
                AccountSnapshot.model_drift,
            )
            .join(AccountSnapshot, AccountSnapshot.snapshot_id == snaps.c.id)
            .order_by(snaps.c.taken_at, AccountSnapshot.id)
        )
        rows = _raw_rows(conn, query)
    out: dict[str, list[AccountHealthPoint]] = defaultdict(list)
    times: dict[int, datetime] = {}
    for dep, acc, us, status, reason, health, infinite, venue, drift in rows:
        taken = times.get(us)
        if taken is None:
            taken = times[us] = _from_micros(us)
        out[f"{dep}/{acc}"].append(
            AccountHealthPoint(
                taken_at=taken,
                status=status,
                status_reason=reason,
                health=math.inf if infinite else health,
                venue_health=None if venue is None else _decimal(venue),
                model_drift=drift,
            )
        )
    return dict(out)


def positions_at(engine: Engine, portfolio: str, at: datetime | None = None) -> PositionsAt | None:
    """The positions of the latest snapshot taken at or before ``at`` (default: the latest), or None."""
    with storage_errors(engine.url, "read positions"), engine.connect() as conn:
        pid = portfolio_id(conn, portfolio)
        latest = sa.select(Snapshot.id, Snapshot.scan_id, Snapshot.taken_at).where(
            Snapshot.portfolio_id == pid
        )
        if at is not None:
            latest = latest.where(Snapshot.taken_at <= at)
        row = conn.execute(latest.order_by(Snapshot.taken_at.desc(), Snapshot.id.desc()).limit(1)).first()
        if row is None:
            return None
        snapshot_id, scan_id, taken_at = row
        query = (
            sa.select(
                AccountSnapshot.venue,
                AccountSnapshot.deployment,
                AccountSnapshot.account_id,
                AccountSnapshot.wallet,
                PositionRow.token,
                PositionRow.factor,
                PositionRow.basis_factor,
                PositionRow.kind,
                PositionRow.quantity,
                PositionRow.price,
                PositionRow.value,
                PositionRow.price_source,
                PositionRow.params,
            )
            .join(AccountSnapshot, PositionRow.account_snapshot_id == AccountSnapshot.id)
            .where(AccountSnapshot.snapshot_id == snapshot_id)
            .order_by(AccountSnapshot.id, PositionRow.ordinal)
        )
        positions = tuple(StoredPosition(*r) for r in conn.execute(query))
        return PositionsAt(
            snapshot_id=int(snapshot_id), scan_id=scan_id, taken_at=taken_at, positions=positions
        )


def factor_price_history(
    engine: Engine,
    factors: tuple[str, ...] | list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    every: timedelta | None = None,
) -> FactorPriceHistory:
    """Stored factor prices as a ``[T, F]`` float64 array. With ``every``, one row per bucket of that
    length (aligned to the Unix epoch) holding the last price of each factor in the bucket, which
    gives evenly spaced returns over history of mixed resolution (minutely, hourly, daily)."""
    names = tuple(dict.fromkeys(factors))
    query = sa.select(FactorPrice.time, FactorPrice.factor, FactorPrice.price).where(
        FactorPrice.factor.in_(names)
    )
    if since is not None:
        query = query.where(FactorPrice.time >= since)
    if until is not None:
        query = query.where(FactorPrice.time <= until)
    with storage_errors(engine.url, "read factor prices"), engine.connect() as conn:
        rows = conn.execute(query.order_by(FactorPrice.time)).all()
    column = {f: i for i, f in enumerate(names)}
    step = None if every is None else int(every.total_seconds() * 1_000_000)
    if step is not None and step <= 0:
        raise InputError("the sampling interval must be positive")
    index: dict[int, int] = {}
    stamps: list[int] = []
    values: list[list[float]] = []
    for time, factor, price in rows:
        micros = int(time.timestamp() * 1_000_000)
        key = micros if step is None else (micros // step) * step
        t = index.get(key)
        if t is None:
            t = index[key] = len(stamps)
            stamps.append(key)
            values.append([math.nan] * len(names))
        values[t][column[factor]] = price
    times = np.array(stamps, dtype="datetime64[us]")
    prices = np.array(values, dtype=np.float64).reshape(len(stamps), len(names))
    return FactorPriceHistory(names, times, prices)
