"""``crossmargin alerts test | list | ack | silence | unsilence | retry``.

Channels and rules come from ``[alerts]`` of the effective configuration (secrets from the secrets file
or the environment); firing alerts, the outbox, dead letters and delivery attempts from the configured
database (``aggregator.db.alerts_store`` / ``aggregator.db.outbox_store``). Nothing here prints a
secret: results and errors go through ``aggregator.redaction.redact`` with the channel's secrets.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aggregator.alerts.channels import SendResult, secret_fragments, send
from aggregator.alerts.message import AlertMessage
from aggregator.alerts.pinned import pinned_client
from aggregator.alerts.rules import AlertChannel, AlertsSettings, parse_duration
from aggregator.cli.app import ConfigOption, out_console
from aggregator.cli.render_scan import short_key
from aggregator.config import Settings, load_config
from aggregator.db import alerts_store, outbox_store
from aggregator.db.migrate import open_database
from aggregator.errors import CrossmarginError, InputError
from aggregator.redaction import redact

# account keys (shortened by short_key) fold rather than lose their tail to an ellipsis
_KEY_COLUMNS = frozenset({"account"})

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    help="Alert channels, firing alerts, the delivery outbox, acknowledgements and silences.",
    no_args_is_help=True,
)


class DeliveryFailed(CrossmarginError):
    """A test message could not be delivered."""


def _settings(config: ConfigOption) -> Settings:
    return load_config(config).settings


def _channel(alerts: AlertsSettings, name: str) -> AlertChannel:
    channel = alerts.channels.get(name)
    if channel is None:
        close = difflib.get_close_matches(name, list(alerts.channels), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(alerts.channels)) or "none configured"
        raise InputError(f"unknown alert channel {name!r}{hint}; known: {known}")
    return channel


def _rule(alerts: AlertsSettings, name: str) -> None:
    names = [r.name for r in alerts.rules]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown alert rule {name!r}{hint}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@alerts_app.command("test")
def send_test_cmd(
    channel: Annotated[str, typer.Argument(help="Channel name (a key of alerts.channels in the config).")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send a test message to CHANNEL now and print the result (never the secret).

    Examples:
      crossmargin alerts test ops-telegram
      crossmargin alerts test hook --json
      CROSSMARGIN__ALERTS__CHANNELS__HOOK__WEBHOOK_URL=https://example.com/h \
        crossmargin alerts test hook
    """
    alerts = _settings(config).alerts
    target = _channel(alerts, channel)
    now = datetime.now(UTC)
    message = AlertMessage(
        message_id=f"test_{now.strftime('%Y%m%dT%H%M%S%f')}",
        severity="info",
        title=f"TEST · crossmargin alert channel {channel}",
        body=(f"A test message sent at {now.isoformat(timespec='seconds')}.", "No action needed."),
        data={"test": True, "channel": channel},
    )
    secrets = secret_fragments(target)

    async def deliver() -> SendResult:
        timeout = parse_duration(alerts.delivery.timeout).total_seconds()
        async with pinned_client(alerts, timeout=timeout) as client:
            return await send(client, target, message)

    result = asyncio.run(deliver())
    detail = redact(result.detail, secrets)
    if as_json:
        doc = {
            "channel": channel,
            "type": target.type,
            "outcome": result.outcome,
            "status_code": result.status_code,
            "retry_after_seconds": result.retry_after_seconds,
            "detail": detail,
            "provider_message_id": result.provider_message_id,
            "message_id": message.message_id,
        }
        out_console.print_json(json.dumps(doc))
    else:
        status = f"HTTP {result.status_code}" if result.status_code else "no HTTP response"
        line = f"{channel} ({target.type}): {result.outcome} ({status})"
        if detail:
            line += f": {detail}"
        out_console.print(escape(line), highlight=False)
    if result.outcome != "sent":
        raise DeliveryFailed(f"test message to {channel!r} not delivered: {result.outcome}")


@alerts_app.command("list")
def list_cmd(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(help="Rows per section.", min=1, max=10_000)] = 20,
) -> None:
    """Show firing alerts and silences, pending outbox rows, dead letters and recent delivery attempts.

    Examples:
      crossmargin alerts list
      crossmargin alerts list --json --limit 100
    """
    engine = open_database(_settings(config))
    try:
        firing = alerts_store.firing_alerts(engine)
        pending = outbox_store.outbox_rows(engine, statuses=["pending"], limit=limit)
        dead = outbox_store.outbox_rows(engine, statuses=list(outbox_store.DEAD_STATUSES), limit=limit)
        attempts = outbox_store.deliveries(engine, limit=limit)
    finally:
        engine.dispose()
    alerts = [a for a in firing if a.account != "*"]
    silences = [a for a in firing if a.account == "*"]
    if as_json:
        doc: dict[str, Any] = {
            "firing": [
                {
                    "id": a.id,
                    "rule": a.rule,
                    "portfolio": a.portfolio,
                    "account": a.account or None,
                    "tier": a.tier,
                    "episode": a.episode,
                    "value": a.value,
                    "fired_at": _iso(a.fired_at),
                    "last_sent_at": _iso(a.last_sent_at),
                    "acked_at": _iso(a.acked_at),
                }
                for a in alerts
            ],
            "silences": [
                {"rule": s.rule, "portfolio": s.portfolio, "until": _iso(s.silenced_until)} for s in silences
            ],
            "pending": [_jsonable(r) for r in pending],
            "dead_letters": [_jsonable(r) for r in dead],
            "deliveries": [_jsonable(r) for r in attempts],
        }
        out_console.print_json(json.dumps(doc))
        return
    _print_tables(alerts, silences, pending, dead, attempts)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _print_tables(
    alerts: list[alerts_store.FiringAlert],
    silences: list[alerts_store.FiringAlert],
    pending: list[dict[str, Any]],
    dead: list[dict[str, Any]],
    attempts: list[dict[str, Any]],
) -> None:
    def show(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        if not rows:
            out_console.print(f"{title}: none")
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold" if column in _KEY_COLUMNS else "ellipsis")
        for row in rows:
            table.add_row(*(escape(c) for c in row))
        out_console.print(table)

    def when(value: datetime | None) -> str:
        return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")

    show(
        "Firing alerts",
        ("id", "rule", "portfolio", "account", "tier", "value", "since", "acked"),
        [
            (
                str(a.id),
                a.rule,
                a.portfolio,
                short_key(a.account or "(portfolio)"),
                a.tier.upper(),
                "-" if a.value is None else f"{a.value:.4g}",
                when(a.fired_at),
                "yes" if a.acked_at else "no",
            )
            for a in alerts
        ],
    )
    show(
        "Silences",
        ("rule", "portfolio", "until"),
        [(s.rule, "all" if s.portfolio == "*" else s.portfolio, when(s.silenced_until)) for s in silences],
    )
    show(
        "Outbox (pending)",
        ("id", "channel", "attempts", "next attempt", "title", "last error"),
        [
            (str(r["id"]), r["channel"], str(r["attempts"]), when(r["next_attempt_at"]), r["title"] or "-",
             r["last_error"] or "-")
            for r in pending
        ],
    )  # fmt: skip
    show(
        "Dead letters",
        ("id", "channel", "status", "attempts", "created", "title", "last error"),
        [
            (str(r["id"]), r["channel"], r["status"], str(r["attempts"]), when(r["created_at"]),
             r["title"] or "-", r["last_error"] or "-")
            for r in dead
        ],
    )  # fmt: skip
    show(
        "Recent deliveries",
        ("outbox", "channel", "attempt", "started", "outcome", "HTTP", "ms", "error"),
        [
            (str(d["outbox_id"]), d["channel"], str(d["attempt"]), when(d["started_at"]), d["outcome"] or "-",
             str(d["status_code"] or "-"), "-" if d["latency_ms"] is None else f"{d['latency_ms']:.0f}",
             d["error"] or "-")
            for d in attempts
        ],
    )  # fmt: skip


@alerts_app.command("ack")
def ack_cmd(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id from `crossmargin alerts list`.")],
    config: ConfigOption = None,
) -> None:
    """Acknowledge a firing alert: no more repeats until it resolves (a new episode notifies again).

    Examples:
      crossmargin alerts list
      crossmargin alerts ack 12
    """
    engine = open_database(_settings(config))
    try:
        acked = alerts_store.acknowledge(engine, alert_id, datetime.now(UTC))
    finally:
        engine.dispose()
    if acked is None:
        raise InputError(f"no alert with id {alert_id} (see `crossmargin alerts list`)")
    where = acked.portfolio + (f" / {acked.account}" if acked.account else "")
    out_console.print(escape(f"acknowledged {acked.rule} ({acked.tier}) on {where}"), highlight=False)


@alerts_app.command("silence")
def silence_cmd(
    rule: Annotated[str, typer.Argument(help="Rule name (alerts.rules in the config).")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    portfolio: Annotated[str | None, typer.Option(help="Only this portfolio (default: all).")] = None,
    config: ConfigOption = None,
) -> None:
    """Silence RULE for a while: its state keeps changing, nothing is sent (a resolve still is).

    Examples:
      crossmargin alerts silence composite-health --for 2h
      crossmargin alerts silence venue-down --for 30m --portfolio fund
    """
    settings = _settings(config)
    _rule(settings.alerts, rule)
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise InputError(f"--for: {exc}") from None
    now = datetime.now(UTC)
    engine = open_database(settings)
    try:
        alerts_store.silence(engine, rule, now + length, now, portfolio)
    finally:
        engine.dispose()
    scope = f"portfolio {portfolio}" if portfolio else "every portfolio"
    until = (now + length).isoformat(timespec="seconds")
    out_console.print(escape(f"silenced {rule} on {scope} until {until}"), highlight=False)


@alerts_app.command("unsilence")
def unsilence_cmd(
    rule: Annotated[str, typer.Argument(help="Rule name.")],
    portfolio: Annotated[str | None, typer.Option(help="Only this portfolio's silence.")] = None,
    config: ConfigOption = None,
) -> None:
    """Lift the silences of RULE now.

    Examples:
      crossmargin alerts unsilence composite-health
    """
    engine = open_database(_settings(config))
    try:
        count = alerts_store.unsilence(engine, rule, datetime.now(UTC), portfolio)
    finally:
        engine.dispose()
    out_console.print(escape(f"lifted {count} silence(s) of {rule}"), highlight=False)


@alerts_app.command("retry")
def retry_cmd(
    outbox_id: Annotated[int, typer.Argument(metavar="ID", help="Dead letter id from `alerts list`.")],
    config: ConfigOption = None,
) -> None:
    """Put a dead letter back in the delivery queue (due now, a fresh retry budget).

    Examples:
      crossmargin alerts retry 31
    """
    engine = open_database(_settings(config))
    try:
        requeued = outbox_store.requeue(engine, outbox_id, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if not requeued:
        raise InputError(f"outbox row {outbox_id} is not a dead letter (see `crossmargin alerts list`)")
    out_console.print(f"outbox row {outbox_id} queued again")
