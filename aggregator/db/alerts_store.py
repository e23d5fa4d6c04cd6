"""Alert state in the ``alert_state`` table: load, upsert (inside the snapshot's transaction), silences and
acknowledgements.

Mapping between ``aggregator.alerts.state.AlertState`` and a row: ``tier``, ``episode``, ``value`` =
``last_value``, ``last_sent_at`` = ``last_notified_at``, ``acked_at`` set = ``acknowledged``,
``silenced_until``, ``fired_at``, ``resolved_at``; ``notified_in_episode`` is derived (a firing key
with a ``last_sent_at`` was notified in its episode: ``step`` clears ``last_notified_at`` when an
episode starts and sets it with every notification).

Concurrency with the CLI: an upsert from a cycle never drops an acknowledgement made in the same episode
(``acked_at`` is kept while the episode number is unchanged) and never touches ``silenced_until``
(only :func:`silence` / :func:`unsilence` write it). Rule-wide silences are pseudo-rows with
``account_key = '*'`` (and ``portfolio = '*'`` for every portfolio), see ``aggregator.alerts.decide``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from aggregator.alerts.decide import SILENCE_KEY, DedupKey
from aggregator.alerts.state import AlertState, Tier
from aggregator.db.convert import finite_or_none
from aggregator.db.engine import storage_errors, write_transaction
from aggregator.db.models import AlertState as AlertStateRow
from aggregator.errors import InputError

__all__ = [
    "FiringAlert",
    "acknowledge",
    "firing_alerts",
    "load_alert_states",
    "row_to_state",
    "silence",
    "unsilence",
    "write_alert_states",
]

_TIERS = ("ok", "warning", "critical")
_TABLE = cast(sa.Table, AlertStateRow.__table__)


@dataclass(frozen=True, slots=True)
class FiringAlert:
    id: int
    rule: str
    portfolio: str
    account: str
    tier: str
    episode: int
    value: float | None
    fired_at: datetime | None
    last_sent_at: datetime | None
    acked_at: datetime | None
    silenced_until: datetime | None


def row_to_state(row: Any) -> AlertState:
    tier = cast(Tier, row.tier if row.tier in _TIERS else "ok")
    return AlertState(
        tier=tier,
        episode=int(row.episode),
        last_notified_at=row.last_sent_at,
        acknowledged=row.acked_at is not None,
        silenced_until=row.silenced_until,
        last_value=row.value,
        notified_in_episode=tier != "ok" and row.last_sent_at is not None,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
    )


def load_alert_states(engine: Engine, portfolio: str) -> dict[DedupKey, AlertState]:
    """Every stored key of ``portfolio`` plus the silences that apply to it (pseudo-keys with '*')."""
    table = _TABLE
    query = sa.select(table).where(table.c.portfolio.in_((portfolio, SILENCE_KEY)))
    with storage_errors(engine.url, f"load alert states of {portfolio!r}"), engine.connect() as conn:
        return {(r.rule_key, r.portfolio, r.account_key): row_to_state(r) for r in conn.execute(query)}


def _insert(conn: Connection) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(_TABLE)


def write_alert_states(conn: Connection, states: Mapping[DedupKey, AlertState], now: datetime) -> None:
    """Upsert ``states`` on the open transaction ``conn`` (see the module docstring for acks/silences)."""
    rows = []
    for (rule, portfolio, account), state in sorted(states.items(), key=lambda kv: kv[0]):
        if SILENCE_KEY in (portfolio, account):
            continue  # silences are written only by silence()/unsilence()
        if state.tier not in _TIERS:
            raise InputError(f"alert state {rule}/{portfolio}/{account}: unknown tier {state.tier!r}")
        rows.append(
            {
                "rule_key": rule,
                "portfolio": portfolio,
                "account_key": account,
                "tier": state.tier,
                "episode": state.episode,
                "value": None if state.last_value is None else finite_or_none(state.last_value),
                "fired_at": state.fired_at,
                "last_sent_at": state.last_notified_at,
                "resolved_at": state.resolved_at,
                "acked_at": now if state.acknowledged else None,
                "silenced_until": None,
                "updated_at": now,
            }
        )
    if not rows:
        return
    table = _TABLE
    stmt = _insert(conn)
    excluded = stmt.excluded
    keep_ack = sa.and_(table.c.episode == excluded.episode, table.c.acked_at.is_not(None))
    stmt = stmt.on_conflict_do_update(
        index_elements=["rule_key", "portfolio", "account_key"],
        set_={
            "tier": excluded.tier,
            "episode": excluded.episode,
            "value": excluded.value,
            "fired_at": excluded.fired_at,
            "last_sent_at": excluded.last_sent_at,
            "resolved_at": excluded.resolved_at,
            "acked_at": sa.case((keep_ack, table.c.acked_at), else_=excluded.acked_at),
            "updated_at": excluded.updated_at,
        },
    )
    conn.execute(stmt, rows)


def silence(engine: Engine, rule: str, until: datetime, now: datetime, portfolio: str | None = None) -> None:
    """Silence every key of ``rule`` (in ``portfolio``, or all portfolios) until ``until``."""
    owner = portfolio or SILENCE_KEY
    with storage_errors(engine.url, f"silence rule {rule!r}"), write_transaction(engine) as conn:
        stmt = _insert(conn).values(
            rule_key=rule,
            portfolio=owner,
            account_key=SILENCE_KEY,
            tier="ok",
            episode=0,
            silenced_until=until,
            updated_at=now,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["rule_key", "portfolio", "account_key"],
                set_={"silenced_until": until, "updated_at": now},
            )
        )


def unsilence(engine: Engine, rule: str, now: datetime, portfolio: str | None = None) -> int:
    """Lift the silences of ``rule`` (rule-wide and per key); returns how many rows changed."""
    table = _TABLE
    query = sa.update(table).where(table.c.rule_key == rule, table.c.silenced_until.is_not(None))
    if portfolio is not None:
        query = query.where(table.c.portfolio == portfolio)
    with storage_errors(engine.url, f"unsilence rule {rule!r}"), write_transaction(engine) as conn:
        return int(conn.execute(query.values(silenced_until=None, updated_at=now)).rowcount)


def acknowledge(engine: Engine, state_id: int, now: datetime) -> FiringAlert | None:
    """Acknowledge the firing alert with row id ``state_id`` (stops repeats for this episode)."""
    table = _TABLE
    with storage_errors(engine.url, f"acknowledge alert {state_id}"), write_transaction(engine) as conn:
        row = conn.execute(sa.select(table).where(table.c.id == state_id)).first()
        if row is None or row.account_key == SILENCE_KEY:
            return None
        if row.tier == "ok":
            raise InputError(f"alert {state_id} ({row.rule_key}) is not firing; nothing to acknowledge")
        conn.execute(
            sa.update(table)
            .where(table.c.id == state_id, table.c.acked_at.is_(None))
            .values(acked_at=now, updated_at=now)
        )
        row = conn.execute(sa.select(table).where(table.c.id == state_id)).one()
        return _firing(row)


def _firing(row: Any) -> FiringAlert:
    return FiringAlert(
        id=int(row.id),
        rule=row.rule_key,
        portfolio=row.portfolio,
        account=row.account_key,
        tier=row.tier,
        episode=int(row.episode),
        value=row.value,
        fired_at=row.fired_at,
        last_sent_at=row.last_sent_at,
        acked_at=row.acked_at,
        silenced_until=row.silenced_until,
    )


def firing_alerts(engine: Engine, *, include_silences: bool = True) -> list[FiringAlert]:
    """Keys that are warning or critical, and (optionally) the rule-wide silence rows."""
    table = _TABLE
    condition = table.c.tier != "ok"
    if include_silences:
        condition = sa.or_(condition, table.c.account_key == SILENCE_KEY)
    query = (
        sa.select(table).where(condition).order_by(table.c.portfolio, table.c.rule_key, table.c.account_key)
    )
    with storage_errors(engine.url, "list firing alerts"), engine.connect() as conn:
        return [_firing(r) for r in conn.execute(query)]
