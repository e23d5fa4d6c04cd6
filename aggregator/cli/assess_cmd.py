"""``crossmargin assess --portfolio FILE [--json]``: every risk figure for a portfolio in a file.

No chain and no venue is read: the file (``docs/portfolio-file.md``) gives accounts, positions,
parameters, prices and vols; ``config/risk.toml`` (and the user's config) gives the rest. The
assessment is ``risk.engine.assess``, plus (unless ``--no-rebalance``) the rebalancing advice of
``risk.rebalance`` (``aggregator.whatif.advise_book``; figures from the advisor's exact linear
model, no second Monte Carlo) in ``composite.rebalancing``; the JSON document is
``aggregator.report_composite``
(``+inf`` health is ``null``). A bad file exits 2 with a message naming the item.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aggregator.cli.app import ConfigOption, out_console
from aggregator.cli.render_scan import fmt_figure, fmt_move, short_key
from aggregator.config import load_config
from aggregator.portfolio_file import load_portfolio_file
from aggregator.report import dumps
from aggregator.report_composite import AssessReport, build_assess_report
from aggregator.whatif import advise_book, parse_idle
from risk.engine import assess as run_assessment

# account keys stay on one line (shortened by short_key); the other columns wrap first
_KEY_COLUMNS = frozenset({"account"})  # accounts and ladder tables (the wider ones wrap)

__all__ = ["assess"]


def _render(report: AssessReport) -> None:
    c = report.composite
    head = Table(title=f"{report.portfolio} at {report.as_of.isoformat()}", show_header=False)
    head.add_column("figure")
    head.add_column("value")
    head.add_row(
        "CHF (composite health)", f"{fmt_figure(c.chf)}  set by {escape(short_key(c.chf_account or '—'))}"
    )
    head.add_row("stressed CHF", f"{fmt_figure(c.stressed_chf)}  ({c.stressed_scenario or '—'})")
    head.add_row("p_liq (horizon)", f"{fmt_figure(c.p_liq)} ± {fmt_figure(c.p_liq_stderr, '.2g')}")
    penalty = fmt_figure(c.expected_liquidation_penalty_usd, ",.2f")
    head.add_row("expected liquidation penalty", f"{penalty} USD")
    head.add_row("pooled HF / netted HF", f"{fmt_figure(c.pooled_hf)} / {fmt_figure(c.netted_hf)}")
    head.add_row("fragmentation cost", f"{fmt_figure(c.fragmentation_cost_usd, ',.0f')} USD")
    out_console.print(head)

    accounts = Table(title="accounts")
    for col in ("account", "model health", "venue health", "p_liq", "days to liq.", "liquidation prices"):
        accounts.add_column(col, no_wrap=col in _KEY_COLUMNS)
    for a in report.accounts:
        key = escape(short_key(f"{a.deployment}/{a.account_id}"))
        r = a.risk
        if r is None:
            accounts.add_row(key, a.status, "", "", "", a.status_reason or "")
            continue
        prices = ", ".join(
            f"{f} {fmt_figure(p, ',.2f')}" for f, p in r.liquidation_price.items() if p is not None
        )
        venue = "—" if a.venue_reported_health is None else f"{float(a.venue_reported_health):.4g}"
        accounts.add_row(key, fmt_figure(r.health), venue, fmt_figure(r.p_liq),
                         fmt_figure(r.time_to_liquidation_days, ",.1f"), prices or "—")
    out_console.print(accounts)

    if c.distance_to_liquidation:
        dist = Table(title="distance to liquidation")
        for col in ("factor", "down", "price", "account", "up", "price", "account"):
            dist.add_column(col)
        for d in c.distance_to_liquidation:
            dist.add_row(d.factor, fmt_move(None if d.down is None else -d.down),
                         fmt_figure(d.down_price, ",.2f"), escape(short_key(d.down_account or "—")),
                         fmt_move(d.up), fmt_figure(d.up_price, ",.2f"),
                         escape(short_key(d.up_account or "—")))
        out_console.print(dist)
    if c.liquidation_ladder:
        ladder = Table(title="liquidation ladder")
        for col in ("factor", "move", "price", "account", "penalty USD"):
            ladder.add_column(col, no_wrap=col in _KEY_COLUMNS)
        for s in c.liquidation_ladder:
            ladder.add_row(
                s.factor, fmt_move(s.move), fmt_figure(s.price, ",.2f"), escape(short_key(s.account)),
                fmt_figure(s.penalty_usd, ",.0f"),
            )
        out_console.print(ladder)
    if c.hedge_breaks:
        breaks = Table(title="hedge breaks")
        for col in ("factor", "leg", "trigger", "price", "unhedged USD", "group health"):
            breaks.add_column(col)
        for h in c.hedge_breaks:
            breaks.add_row(h.factor, escape(short_key(h.leg_account)), fmt_move(h.trigger_move),
                           fmt_figure(h.trigger_price, ",.2f"),
                           fmt_figure(h.unhedged_exposure_usd, ",.0f"), fmt_figure(h.group_health_at_trigger))
        out_console.print(breaks)
    if c.greeks is not None:
        greeks = Table(title=f"book greeks (theta {fmt_figure(c.greeks.theta, ',.2f')} USD/day)")
        for col in ("factor", "delta", "delta USD", "gamma", "vega USD/pt"):
            greeks.add_column(col)
        for f, units in c.greeks.delta.items():
            greeks.add_row(f, fmt_figure(units, ",.4f"), fmt_figure(c.greeks.delta_usd.get(f), ",.0f"),
                           fmt_figure(c.greeks.gamma.get(f)), fmt_figure(c.greeks.vega.get(f, 0.0), ",.2f"))
        out_console.print(greeks)
    if c.rebalancing:
        moves = Table(title="rebalancing advice (cumulative figures)")
        for col in ("from", "to", "amount", "USD", "action", "CHF", "stressed CHF", "transfer"):
            moves.add_column(col)
        for m in c.rebalancing:
            transfer = (
                f"bridge {m.source_location} → {m.destination_location}, ~{m.delay_minutes:g} min"
                if m.slow else "same chain"
            )
            moves.add_row(
                escape(short_key(m.source)), escape(short_key(m.destination)), f"{m.amount:,.6g} {m.token}",
                fmt_figure(m.usd, ",.0f"), m.action,
                f"{fmt_figure(m.chf_before)} → {fmt_figure(m.chf_after)}",
                f"{fmt_figure(m.stressed_chf_before)} → {fmt_figure(m.stressed_chf_after)}", transfer,
            )
        out_console.print(moves)
    for w in c.warnings:
        out_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def assess(
    portfolio: Annotated[
        Path, typer.Option("--portfolio", "-p", help="Portfolio file (TOML or JSON).", dir_okay=False)
    ],
    *,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Monte Carlo seed (default: risk.mc_seed).")
    ] = None,
    rebalance: Annotated[
        bool,
        typer.Option("--rebalance/--no-rebalance", help="Add the rebalancing advice (JSON: rebalancing)."),
    ] = True,
    idle: Annotated[
        list[str] | None,
        typer.Option("--idle", help="Idle balance the advice may use: AMOUNT:TOKEN:LOCATION (repeatable)."),
    ] = None,
    target_chf: Annotated[
        float | None,
        typer.Option("--target-chf", help="Advice: reach this stressed CHF with the least moved."),
    ] = None,
) -> None:
    """Assess a portfolio described in a file: CHF, stress, p_liq, distances, hedges, greeks, rebalancing.

    Examples:
      crossmargin assess --portfolio config/examples/portfolio.toml
      crossmargin assess -p book.json --json
      crossmargin assess -p book.toml --idle 20000:USDC:ethereum --target-chf 1.5
    """
    settings = load_config(config).settings
    loaded = load_portfolio_file(portfolio, assets=settings.assets, settings=settings.risk)
    assessment = run_assessment(loaded.portfolio, loaded.market, loaded.params, rng_seed=seed)
    notes: tuple[str, ...] = ()
    if rebalance:
        advice = advise_book(
            loaded.portfolio, loaded.market, loaded.params, settings,
            idle=[parse_idle(t) for t in idle or []], target_chf=target_chf,
        )
        assessment = replace(assessment, rebalancing=advice.moves)
        shown = advice.moves or target_chf is not None
        notes = tuple(f"rebalancing: {n}" for n in advice.notes if shown)
    report = build_assess_report(loaded.portfolio, assessment, (*loaded.warnings, *notes))
    if as_json:
        typer.echo(dumps(report.model_dump()))
        return
    _render(report)
