"""``crossmargin history PORTFOLIO``: stored CHF and account health over time; CSV export.

Reads ``aggregator.db.history`` / ``aggregator.db.export`` from the configured database. JSON output
writes +inf healths as ``null`` (the convention of ``risk.assessment``); CSV writes ``inf``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aggregator.alerts.rules import parse_duration
from aggregator.cli.app import ConfigOption, out_console
from aggregator.cli.render_scan import short_key
from aggregator.config import load_config
from aggregator.db.export import export_assessments_csv, export_positions_csv
from aggregator.db.history import account_health_history, chf_history
from aggregator.db.migrate import open_database
from aggregator.errors import InputError

# account keys stay on one line (shortened by short_key); the other columns wrap first
_KEY_COLUMNS = frozenset({"set by"})

__all__ = ["history", "parse_since"]


def parse_since(text: str, now: datetime | None = None) -> datetime | None:
    """``all``, a relative age (``aggregator.alerts.rules.parse_duration``: ``30m``, ``24h``, ``7d``,
    ``2w``) or an ISO 8601 time (naive = UTC)."""
    value = text.strip().lower()
    if value == "all":
        return None
    with contextlib.suppress(ValueError):
        return (now or datetime.now(UTC)) - parse_duration(value)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r}: expected 'all', an age like 24h / 7d, or an ISO time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def history(
    portfolio: Annotated[str, typer.Argument(help="Portfolio name.")],
    *,
    since: Annotated[str, typer.Option(help="'all', an age (24h, 7d) or an ISO time.")] = "7d",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (assessments, or positions).")] = False,
    positions: Annotated[
        bool, typer.Option("--positions", help="With --csv: every stored position.")
    ] = False,
) -> None:
    """Show the stored CHF (and account healths) of PORTFOLIO over time.

    Examples:
      crossmargin history fund
      crossmargin history fund --since 30d --json
      crossmargin history fund --since all --csv --positions > positions.csv
    """
    if as_json and as_csv:
        raise InputError("choose one of --json and --csv")
    if positions and not as_csv:
        raise InputError("--positions needs --csv")
    start = parse_since(since)
    engine = open_database(load_config(config).settings)
    try:
        if as_csv:
            export = export_positions_csv if positions else export_assessments_csv
            export(engine, portfolio, sys.stdout, since=start)
            return
        points = chf_history(engine, portfolio, since=start)
        accounts = account_health_history(engine, portfolio, since=start)
    finally:
        engine.dispose()
    if as_json:
        doc: dict[str, Any] = {
            "portfolio": portfolio,
            "since": None if start is None else start.isoformat(),
            "points": [
                {
                    "taken_at": p.taken_at.isoformat(),
                    "status": p.snapshot_status,
                    "chf": _num(p.chf),
                    "chf_account": p.chf_account,
                    "stressed_chf": _num(p.stressed_chf),
                    "stressed_scenario": p.stressed_scenario,
                    "p_liq": p.p_liq,
                    "pooled_hf": _num(p.pooled_hf),
                    "netted_hf": _num(p.netted_hf),
                    "fragmentation_cost_usd": p.fragmentation_cost_usd,
                }
                for p in points
            ],
            "accounts": {
                key: [
                    {
                        "taken_at": a.taken_at.isoformat(),
                        "status": a.status,
                        "reason": a.status_reason,
                        "health": _num(a.health),
                        "venue_health": None if a.venue_health is None else str(a.venue_health),
                        "model_drift": a.model_drift,
                    }
                    for a in series
                ]
                for key, series in accounts.items()
            },
        }
        out_console.print_json(json.dumps(doc))
        return
    table = Table(title=f"{portfolio}: composite health since {since}")
    for column in ("time (UTC)", "CHF", "set by", "stressed CHF", "p_liq", "pooled HF", "netted HF"):
        table.add_column(column, no_wrap=column in _KEY_COLUMNS)
    for p in points:
        table.add_row(
            p.taken_at.strftime("%Y-%m-%d %H:%M"),
            _fmt(p.chf),
            escape(short_key(p.chf_account or "-")),
            _fmt(p.stressed_chf),
            _fmt(p.p_liq, 4),
            _fmt(p.pooled_hf),
            _fmt(p.netted_hf),
        )
    out_console.print(table)
    if not points:
        out_console.print("no snapshots in this window")
