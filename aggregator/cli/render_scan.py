"""Rich rendering of one ``scan`` document (``aggregator.report.ScanReport``) for humans.

Sections, in order: a header (portfolio, wallets, snapshot); the accounts table (account: deployment,
wallet and sub-account; model health, or the status and its reason when the read failed;
venue-reported health, drift, liquidation price per factor with its distance from the reference
price, positions, chain and block or read time); the composite panel (CHF and the account that sets
it, stressed CHF and its scenario, p_liq over the horizon, expected liquidation penalty, pooled and
netted HF, fragmentation cost, the exit-4 threshold); hedge breaks; the liquidation ladder; rebalancing
moves (action, amount, from, to); alerts decided (rule, account, decision, tier, value); idle wallet
balances (one line); warnings (unavailable, stale, drift, price spreads). Every figure
comes from the document: what is printed is what ``--json`` says. Long hex and bech32 runs in
account keys (wallets, Morpho market ids, GMX position keys, ``dydx1…`` addresses) are shortened to
their head and tail (:func:`short_key`) so that keys stay distinct and readable at 120 columns;
``--json`` and ``--csv`` carry them in full.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from aggregator.report import ScanAccountOut, ScanReport

__all__ = ["fmt_figure", "fmt_health", "fmt_move", "fmt_quantity", "render_scan", "short_key"]

# 0x-hex of 16+ digits (addresses, market ids, position keys) or a bech32 address (dydx1...).
_LONG_ID = re.compile(r"\b(?:0x[0-9a-fA-F]{16,}|[a-z]{2,10}1[02-9ac-hj-np-z]{30,})\b")


def fmt_health(value: float | None, *, infinite: bool = True) -> str:
    """``1.2345``; ``∞`` for no requirement (``None`` where the figure is known to be infinite)."""
    if value is None:
        return "∞" if infinite else "—"
    if not math.isfinite(value):
        return "∞"
    return f"{value:.4f}"


def short_key(key: str) -> str:
    """``key`` with every long id cut to its first 8 and last 4 characters, so that two keys that differ
    only in a trailing market id stay distinct: ``morpho_blue:devnet/0x90F79b…b906/0xf907ad…740b``."""
    return _LONG_ID.sub(lambda m: f"{m.group()[:8]}…{m.group()[-4:]}", key)


def fmt_quantity(value: Decimal | float) -> str:
    """``60,000.00`` at or above 1,000; ``2.5000`` from 1; six significant digits below 1."""
    q = float(value)
    if abs(q) >= 1000:
        return f"{q:,.2f}"
    if abs(q) >= 1:
        return f"{q:,.4f}"
    return f"{q:.6g}"


def fmt_figure(value: float | None, fmt: str = ".4g") -> str:
    """``value`` in ``fmt``; ``∞`` when infinite, ``∞ / n.a.`` when None (a health with no
    requirement, or a figure the engine did not produce)."""
    if value is None:
        return "∞ / n.a."
    return format(value, fmt) if math.isfinite(value) else "∞"


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
    """Deployment, then the wallet, then the sub-account (the account id without the wallet)."""
    lines = [a.deployment, short_key(a.wallet)]
    rest = a.account_id.removeprefix(f"{a.wallet}/")
    if rest != a.wallet:
        lines.append(short_key(rest))
    return escape("\n".join(lines))


def _positions(a: ScanAccountOut) -> str:
    lines = [f"{p.kind} {fmt_quantity(p.quantity)} {escape(p.token)}" for p in a.positions]
    return "\n".join(lines) or "—"


def _as_of(a: ScanAccountOut, report: ScanReport) -> str:
    """``devnet`` / ``#154`` for a chain read; ``off-chain`` / ``21:24:49`` (UTC; the date too when it is
    not the scan's) for an HTTP venue."""
    if a.as_of.block is not None:
        return f"{a.chain or a.as_of.chain or '?'}\n#{a.as_of.block}"
    ts = a.as_of.timestamp
    same_day = ts.date() == report.generated_at.date()
    when = ts.strftime("%H:%M:%S") if same_day else ts.isoformat(timespec="seconds")
    return f"off-chain\n{when}"


def _accounts_table(report: ScanReport) -> Table:
    critical = report.critical_chf or 1.0
    prices = report.market.prices if report.market is not None else {}
    table = Table(title="margin accounts", show_lines=True)
    table.add_column("account", no_wrap=True)
    table.add_column("health", no_wrap=True)
    table.add_column("venue\nhealth", no_wrap=True)
    table.add_column("drift", no_wrap=True)
    table.add_column("liquidation price\n(distance)", no_wrap=True)
    table.add_column("positions", overflow="fold")
    table.add_column("as of", no_wrap=True)
    for a in report.accounts:
        risk = a.risk
        venue = "—" if a.venue_reported_health is None else f"{float(a.venue_reported_health):.4f}"
        if a.status != "ok":
            # the reason goes in the widest wrapping column: it is what the user needs to read
            health = f"[red]{escape(a.status)}[/]"
            reason = escape(a.status_reason or "")
            table.add_row(_account_label(a), health, venue, "—", "—", reason, _as_of(a, report))
            continue
        if risk is None:
            health, liq, drift = "—", "—", "—"
        else:
            health = _styled_health(risk.health, critical)
            drift = "—" if risk.model_drift is None else f"{risk.model_drift:+.2g}"
            liq_lines = []
            for factor, price in sorted(risk.liquidation_price.items()):
                if price is None:
                    continue
                ref = prices.get(factor)
                move = fmt_move(price / ref - 1.0) if ref else "—"
                liq_lines.append(f"{escape(factor)} {_money(price, 2)} ({move})")
            liq = "\n".join(liq_lines) or "none in range"
        table.add_row(_account_label(a), health, venue, drift, liq, _positions(a), _as_of(a, report))
    return table


def _not_configured(account: ScanAccountOut) -> bool:
    """A venue without credentials (Aevo, Deribit): listed, but not an outage."""
    return (account.status_reason or "").startswith("not configured")


def _composite_panel(report: ScanReport, horizon_hours: float) -> Panel | None:
    c = report.composite
    if c is None:
        return None
    critical = report.critical_chf or 1.0
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "CHF (composite health)",
        f"{_styled_health(c.chf, critical)}  set by {escape(short_key(c.chf_account or '—'))}",
    )
    missing = [a for a in report.accounts if a.status == "unavailable" and not _not_configured(a)]
    if missing:  # the figures cover only what was read: an unread account may be the weakest one
        grid.add_row(
            "[red]not read[/]",
            f"[red]{len(missing)} unavailable account(s) left out of every figure: the CHF may be lower[/]",
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
            escape(short_key(h.leg_account)),
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
            escape(short_key(s.account)),
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
        usd = "" if m.usd is None else f" (${_money(m.usd)})"
        move = (
            f"{m.action} {fmt_quantity(m.amount)} {m.token}{usd}\n"
            f"from {short_key(m.source)}\nto {short_key(m.destination)}"
        )
        table.add_row(escape(move), chf, stressed, delay)
    return table


def _idle_line(report: ScanReport) -> str | None:
    """``idle wallet balances: devnet 0xf39Fd6…2266: 2,000.00 USDC ($2,000); ...`` (one line)."""
    if not report.idle_balances:
        return None
    items = []
    for b in report.idle_balances:
        usd = f" (${_money(b.value_usd)})" if b.value_usd is not None else ""
        items.append(f"{b.chain} {short_key(b.wallet)}: {fmt_quantity(b.amount)} {b.token}{usd}")
    return "idle wallet balances: " + "; ".join(items)


def _alerts(report: ScanReport) -> Table | None:
    if not report.alerts:
        return None
    title = "alerts decided this cycle"
    if report.snapshot_id is None:
        title += " (not stored: nothing is sent)"
    table = Table(title=title)
    for column in ("rule", "account", "decision", "tier", "value"):  # the title repeats them (--json has it)
        table.add_column(column, no_wrap=True)
    for d in report.alerts:
        value = "—" if d.value is None else f"{d.value:.4g}"
        style = "red" if d.tier == "critical" else ("yellow" if d.tier == "warning" else "green")
        table.add_row(
            escape(d.rule),
            escape(short_key(d.account or "(portfolio)")),
            d.kind,
            f"[{style}]{d.tier}[/]",
            value,
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
