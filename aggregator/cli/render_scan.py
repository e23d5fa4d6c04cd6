"""Rich rendering of one ``scan`` document (``aggregator.report.ScanReport``) for humans.

Sections, in order: a header (portfolio, wallets, snapshot); the accounts table (venue, chain,
account, status, model health, venue-reported health, drift, liquidation price per factor, distance
from the reference price); the composite panel (CHF and the account that sets it, stressed CHF and its
scenario, p_liq over the horizon, expected liquidation penalty, pooled and netted HF, fragmentation
cost, the exit-4 threshold); hedge breaks; the liquidation ladder; rebalancing moves; alerts decided;
idle wallet balances (one line); warnings (unavailable, stale, drift, price spreads). Every figure
comes from the document: what is printed is what ``--json`` says.
"""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from aggregator.report import ScanAccountOut, ScanReport

__all__ = ["fmt_health", "fmt_move", "render_scan"]


def fmt_health(value: float | None, *, infinite: bool = True) -> str:
    """``1.2345``; ``∞`` for no requirement (``None`` where the figure is known to be infinite)."""
    if value is None:
        return "∞" if infinite else "—"
    if not math.isfinite(value):
        return "∞"
    return f"{value:.4f}"


def fmt_move(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.2%}"


def _money(value: float | None, places: int = 0) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{places}f}"


def _styled_health(value: float | None, critical: float) -> str:
    text = fmt_health(value)
    if value is None or not math.isfinite(value):
        return f"[green]{text}[/]"
    style = (
        "bold red" if value < 1 else ("red" if value < critical else ("yellow" if value < 1.25 else "green"))
    )
    return f"[{style}]{text}[/]"


def _account_label(a: ScanAccountOut) -> str:
    account = "" if a.account_id == a.wallet else f" {a.account_id}"
    return f"{a.deployment}\n{a.wallet[:10]}…{escape(account[:24])}"


def _positions(a: ScanAccountOut) -> str:
    lines = [f"{p.kind} {p.quantity:,.4f} {escape(p.token)}" for p in a.positions]
    return "\n".join(lines) or "—"


def _accounts_table(report: ScanReport) -> Table:
    critical = report.critical_chf or 1.0
    prices = report.market.prices if report.market is not None else {}
    table = Table(title="margin accounts", show_lines=True)
    for column in (
        "venue",
        "chain",
        "account",
        "status",
        "health",
        "venue health",
        "drift",
        "liquidation price",
        "distance",
        "positions",
        "as of",
    ):
        table.add_column(column, overflow="fold")
    for a in report.accounts:
        status = (
            "[green]ok[/]" if a.status == "ok" else f"[red]{a.status}[/]\n{escape(a.status_reason or '')}"
        )
        risk = a.risk
        if risk is None:
            health = "?" if a.status == "unavailable" else "—"
            venue = "—" if a.venue_reported_health is None else f"{float(a.venue_reported_health):.4f}"
            liq = dist = drift = "—"
        else:
            health = _styled_health(risk.health, critical)
            venue = "—" if a.venue_reported_health is None else f"{float(a.venue_reported_health):.4f}"
            drift = "—" if risk.model_drift is None else f"{risk.model_drift:+.2g}"
            liq_lines, dist_lines = [], []
            for factor, price in sorted(risk.liquidation_price.items()):
                if price is None:
                    continue
                liq_lines.append(f"{factor} {_money(price, 2)}")
                ref = prices.get(factor)
                dist_lines.append(fmt_move(price / ref - 1.0) if ref else "—")
            liq = "\n".join(liq_lines) or "none in range"
            dist = "\n".join(dist_lines) or "—"
        when = (
            str(a.as_of.block)
            if a.as_of.block is not None
            else a.as_of.timestamp.isoformat(timespec="seconds")
        )
        table.add_row(
            a.venue,
            a.chain or "off-chain",
            _account_label(a),
            status,
            health,
            venue,
            drift,
            liq,
            dist,
            _positions(a),
            when,
        )
    return table


def _composite_panel(report: ScanReport, horizon_hours: float) -> Panel | None:
    c = report.composite
    if c is None:
        return None
    critical = report.critical_chf or 1.0
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "CHF (composite health)", f"{_styled_health(c.chf, critical)}  set by {escape(c.chf_account or '—')}"
    )
    grid.add_row(
        "stressed CHF", f"{_styled_health(c.stressed_chf, critical)}  ({escape(c.stressed_scenario or '—')})"
    )
    p_liq = "—" if c.p_liq is None else f"{c.p_liq:.2%}"
    stderr = "" if c.p_liq_stderr is None else f" ± {c.p_liq_stderr:.2%}"
    grid.add_row(f"p_liq ({horizon_hours:g} h)", f"{p_liq}{stderr}")
    grid.add_row("expected liquidation penalty", f"{_money(c.expected_liquidation_penalty_usd, 2)} USD")
    grid.add_row("pooled HF / netted HF", f"{fmt_health(c.pooled_hf)} / {fmt_health(c.netted_hf)}")
    grid.add_row("fragmentation cost", f"{_money(c.fragmentation_cost_usd)} USD")
    grid.add_row("critical CHF (exit 4 below)", f"{critical:g}")
    return Panel(grid, title=f"portfolio {escape(report.portfolio or '')}", expand=False)


def _hedge_breaks(report: ScanReport) -> Table | None:
    c = report.composite
    if c is None or not c.hedge_breaks:
        return None
    table = Table(title="hedge breaks (one leg liquidates while the group stays solvent)")
    for column in ("factor", "leg that liquidates", "move", "price", "unhedged USD", "group health"):
        table.add_column(column)
    for h in c.hedge_breaks:
        table.add_row(
            h.factor,
            escape(h.leg_account),
            fmt_move(h.trigger_move),
            _money(h.trigger_price, 2),
            _money(h.unhedged_exposure_usd),
            fmt_health(h.group_health_at_trigger),
        )
    return table


def _ladder(report: ScanReport) -> Table | None:
    c = report.composite
    if c is None or not c.liquidation_ladder:
        return None
    table = Table(title="liquidation ladder")
    for column in ("factor", "move", "price", "account", "penalty USD", "exposure left USD"):
        table.add_column(column)
    for s in c.liquidation_ladder:
        left = ", ".join(f"{f} {_money(v)}" for f, v in sorted(s.exposure_left_usd.items()) if v)
        table.add_row(
            s.factor,
            fmt_move(s.move),
            _money(s.price, 2),
            escape(s.account),
            _money(s.penalty_usd),
            left or "—",
        )
    return table


def _rebalancing(report: ScanReport) -> Table | None:
    c = report.composite
    if c is None or not c.rebalancing:
        return None
    table = Table(title="rebalancing moves (figures cumulative down the list)")
    for column in ("move", "CHF", "stressed CHF", "delay"):
        table.add_column(column)
    for m in c.rebalancing:
        chf = f"{fmt_health(m.chf_before)} → {fmt_health(m.chf_after)}"
        stressed = f"{fmt_health(m.stressed_chf_before)} → {fmt_health(m.stressed_chf_after)}"
        delay = f"{m.delay_minutes:g} min (bridge)" if m.slow else "now"
        table.add_row(escape(m.text), chf, stressed, delay)
    return table


def _idle_line(report: ScanReport) -> str | None:
    """``idle wallet balances: devnet 0xf39Fd6e5…: 2,000 USDC ($2,000); ...`` (one line)."""
    if not report.idle_balances:
        return None
    items = []
    for b in report.idle_balances:
        usd = f" (${_money(b.value_usd)})" if b.value_usd is not None else ""
        items.append(f"{b.chain} {b.wallet[:10]}…: {b.amount:,.6g} {b.token}{usd}")
    return "idle wallet balances: " + "; ".join(items)


def _alerts(report: ScanReport) -> Table | None:
    if not report.alerts:
        return None
    table = Table(title="alerts decided this cycle")
    for column in ("rule", "account", "decision", "tier", "value", "title"):
        table.add_column(column)
    for d in report.alerts:
        value = "—" if d.value is None else f"{d.value:.4g}"
        style = "red" if d.tier == "critical" else ("yellow" if d.tier == "warning" else "green")
        table.add_row(
            escape(d.rule),
            escape(d.account or "(portfolio)"),
            d.kind,
            f"[{style}]{d.tier}[/]",
            value,
            escape(d.title),
        )
    return table


def render_scan(report: ScanReport, console: Console, *, horizon_hours: float = 24.0) -> None:
    """Print every section of the document (see the module docstring)."""
    stored = f"snapshot {report.snapshot_id}" if report.snapshot_id is not None else "not stored"
    console.print(
        f"[bold]crossmargin scan[/] of portfolio [bold]{escape(report.portfolio or '—')}[/] "
        f"({len(report.wallets)} wallet(s), {report.generated_at.isoformat(timespec='seconds')}, {stored})",
        highlight=False,
    )
    if report.accounts:
        console.print(_accounts_table(report))
    empty = [r for r in report.reads if r.status == "ok" and r.accounts == 0]
    if empty:
        listed = ", ".join(f"{r.deployment} {r.wallet[:10]}…" for r in empty)
        console.print(f"no positions: {listed}", highlight=False)
    if not report.reads:
        console.print("nothing to scan: no deployment selected (see --only and your configuration)")
    parts = [
        _composite_panel(report, horizon_hours),
        _hedge_breaks(report),
        _ladder(report),
        _rebalancing(report),
        _alerts(report),
    ]
    shown = [p for p in parts if p is not None]
    if shown:
        console.print(Group(*shown))
    idle = _idle_line(report)
    if idle is not None:
        console.print(escape(idle), highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
