"""``crossmargin whatif PORTFOLIO CHANGE... [--json]``: the risk report before and after hypothetical changes.

PORTFOLIO is a portfolio file (``docs/portfolio-file.md``; any existing path or a ``.toml``/``.json``
name) or the name of a portfolio in the database, whose latest stored snapshot is rebuilt
(``aggregator.whatif_db``; ``--at`` for an earlier one). The changes (``aggregator.whatif``) are read in
the order given, straight from the command line (Typer has no repeatable multi-value options, so they
are parsed here): ``--deposit``, ``--withdraw``, ``--repay``, ``--borrow`` (AMOUNT TOKEN TARGET),
``--perp`` / ``--option`` (TARGET MARKET|INSTRUMENT SIZE), ``--close-perp`` / ``--close-option``
(TARGET MARKET|INSTRUMENT). Both books are assessed by ``risk.engine.assess`` with the same seed (common
random numbers, so the p_liq difference is the change's, not sampling noise). ``docs/whatif.md``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aggregator.cli.app import ConfigOption, out_console
from aggregator.cli.render_scan import fmt_figure, short_key
from aggregator.config import Settings, load_config
from aggregator.errors import InputError
from aggregator.portfolio_file import load_portfolio_file
from aggregator.report import dumps
from aggregator.report_composite import AssessReport, build_assess_report
from aggregator.whatif import Action, Change, WhatIfError, apply_changes, parse_change
from risk.engine import assess as run_assessment
from risk.model import MarketState, Portfolio
from risk.params import RiskParams

# account keys stay on one line (shortened by short_key); the other columns wrap first
_KEY_COLUMNS = frozenset({"account", "leg"})

__all__ = ["FLAGS", "parse_changes", "whatif"]

FLAGS: dict[str, tuple[Action, int]] = {
    "--deposit": ("deposit", 3),
    "--withdraw": ("withdraw", 3),
    "--repay": ("repay", 3),
    "--borrow": ("borrow", 3),
    "--perp": ("perp", 3),
    "--option": ("option", 3),
    "--close-perp": ("close_perp", 2),
    "--close-option": ("close_option", 2),
}


def parse_changes(args: list[str]) -> list[Change]:
    """The change flags in command-line order; anything else is a ``WhatIfError``."""
    changes: list[Change] = []
    i = 0
    while i < len(args):
        flag = args[i]
        if flag not in FLAGS:
            raise WhatIfError(f"unexpected argument {flag!r} (changes: {', '.join(FLAGS)}; see --help)")
        action, count = FLAGS[flag]
        values = args[i + 1 : i + 1 + count]
        if len(values) < count or any(v in FLAGS for v in values):
            raise WhatIfError(f"{flag} needs {count} values, got {' '.join(values) or 'none'}")
        changes.append(parse_change(action, values))
        i += 1 + count
    return changes


def _lt(values: list[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for text in values:
        token, sep, value = text.partition("=")
        try:
            lt = Decimal(value)
        except InvalidOperation:
            lt = Decimal(-1)
        if not sep or not token or not Decimal(0) < lt <= Decimal(1):
            raise WhatIfError(f"--lt {text!r}: expected TOKEN=THRESHOLD with 0 < THRESHOLD <= 1")
        out[token] = lt
    return out


def _load(
    name: str, settings: Settings, at: datetime | None
) -> tuple[Portfolio, MarketState, RiskParams, tuple[str, ...]]:
    path = Path(name)
    if path.exists() or path.suffix.lower() in (".toml", ".json"):
        loaded = load_portfolio_file(path, assets=settings.assets, settings=settings.risk)
        return loaded.portfolio, loaded.market, loaded.params, loaded.warnings
    from aggregator.db.migrate import open_database
    from aggregator.market_inputs import build_market
    from aggregator.whatif_db import load_stored_portfolio

    engine = open_database(settings)
    try:
        stored = load_stored_portfolio(engine, name, at)
        params = settings.risk.to_params()
        inputs = build_market(stored.portfolio, params, as_of=stored.taken_at, engine=engine)
    finally:
        engine.dispose()
    notes = (
        f"snapshot {stored.snapshot_id} taken at {stored.taken_at.isoformat()}",
        *stored.warnings,
        *inputs.warnings,
    )
    return stored.portfolio, inputs.estimate.state, params, notes


def _arrow(before: float | None, after: float | None, fmt: str = ".4g") -> tuple[str, str, str]:
    b, a = fmt_figure(before, fmt), fmt_figure(after, fmt)
    if before is None or after is None or not (math.isfinite(before) and math.isfinite(after)):
        return b, a, ""
    delta = after - before
    style = "green" if delta > 0 else ("red" if delta < 0 else "")
    return b, a, f"[{style}]{delta:+{fmt}}[/]" if style else "0"


def _render(changes: list[Change], before: AssessReport, after: AssessReport, notes: tuple[str, ...]) -> None:
    out_console.print(f"[bold]what-if on {escape(before.portfolio)}[/] at {before.as_of.isoformat()}")
    for change in changes:
        out_console.print(f"  • {escape(change.describe())}", highlight=False)
    b, a = before.composite, after.composite
    table = Table(title="before → after")
    for col in ("figure", "before", "after", "change"):
        table.add_column(col, no_wrap=col in _KEY_COLUMNS)
    table.add_row("CHF", *_arrow(b.chf, a.chf))
    set_by = (escape(short_key(r.chf_account or "—")) for r in (b, a))
    table.add_row("  set by", *set_by, "")
    table.add_row("stressed CHF", *_arrow(b.stressed_chf, a.stressed_chf))
    table.add_row("  scenario", b.stressed_scenario or "—", a.stressed_scenario or "—", "")
    table.add_row("p_liq (horizon)", *_arrow(b.p_liq, a.p_liq))
    table.add_row("pooled HF", *_arrow(b.pooled_hf, a.pooled_hf))
    table.add_row("netted HF", *_arrow(b.netted_hf, a.netted_hf))
    table.add_row(
        "fragmentation cost USD", *_arrow(b.fragmentation_cost_usd, a.fragmentation_cost_usd, ",.0f")
    )
    out_console.print(table)

    health = Table(title="accounts")
    for col in ("account", "health before", "health after", "p_liq before", "p_liq after"):
        health.add_column(col, no_wrap=col in _KEY_COLUMNS)
    before_risk = {f"{x.deployment}/{x.account_id}": x.risk for x in before.accounts}
    after_risk = {f"{x.deployment}/{x.account_id}": x.risk for x in after.accounts}
    for key in dict.fromkeys([*before_risk, *after_risk]):
        rb, ra = before_risk.get(key), after_risk.get(key)
        health.add_row(
            escape(short_key(key)),
            fmt_figure(rb.health if rb else None),
            fmt_figure(ra.health if ra else None),
            fmt_figure(rb.p_liq if rb else None),
            fmt_figure(ra.p_liq if ra else None),
        )
    out_console.print(health)

    for label, report in (("before", before), ("after", after)):
        c = report.composite
        if c.liquidation_ladder:
            ladder = Table(title=f"liquidation ladder ({label})")
            for col in ("factor", "move", "price", "account", "penalty USD"):
                ladder.add_column(col, no_wrap=col in _KEY_COLUMNS)
            for s in c.liquidation_ladder:
                ladder.add_row(
                    s.factor,
                    "—" if s.move is None else f"{s.move:+.2%}",
                    fmt_figure(s.price, ",.2f"),
                    escape(short_key(s.account)),
                    fmt_figure(s.penalty_usd, ",.0f"),
                )
            out_console.print(ladder)
        if c.hedge_breaks:
            breaks = Table(title=f"hedge breaks ({label})")
            for col in ("factor", "leg", "trigger", "price", "unhedged USD"):
                breaks.add_column(col, no_wrap=col in _KEY_COLUMNS)
            for h in c.hedge_breaks:
                breaks.add_row(
                    h.factor,
                    escape(short_key(h.leg_account)),
                    "—" if h.trigger_move is None else f"{h.trigger_move:+.2%}",
                    fmt_figure(h.trigger_price, ",.2f"),
                    fmt_figure(h.unhedged_exposure_usd, ",.0f"),
                )
            out_console.print(breaks)
        elif label == "after" and before.composite.hedge_breaks:
            out_console.print("[green]no hedge break after the changes[/]")
    for note in notes:
        out_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for w in a.warnings:
        out_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def whatif(
    ctx: typer.Context,
    portfolio: Annotated[str, typer.Argument(help="Portfolio file (TOML/JSON) or stored portfolio name.")],
    *,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON {changes, before, after}.")] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Monte Carlo seed (default: risk.mc_seed).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Stored portfolio: use the snapshot at or before this ISO time."),
    ] = None,
    lt: Annotated[
        list[str] | None, typer.Option("--lt", help="TOKEN=THRESHOLD for collateral new to an account.")
    ] = None,
    mmr: Annotated[
        float | None, typer.Option("--mmr", help="Maintenance fraction of a new perp market.")
    ] = None,
    iv: Annotated[float | None, typer.Option("--iv", help="Implied vol of a new option (0.6 = 60%).")] = None,
) -> None:
    """Simulate changes on a portfolio: CHF, stressed CHF, p_liq, ladder and hedge breaks before and after.

    Changes, applied in the order given; TARGET is an account key, a deployment
    (aave_v3:arbitrum) or a venue (hyperliquid):

      --deposit AMOUNT TOKEN TARGET

      --withdraw AMOUNT|all TOKEN TARGET

      --repay AMOUNT|all TOKEN TARGET

      --borrow AMOUNT TOKEN TARGET

      --perp TARGET MARKET SIZE  (signed: -2 sells 2)

      --close-perp TARGET MARKET

      --option TARGET INSTRUMENT QTY  (e.g. ETH-20261225-3000-P)

      --close-option TARGET INSTRUMENT

    Examples:
      crossmargin whatif config/examples/portfolio.toml --deposit 5000 USDC aave_v3:ethereum
      crossmargin whatif my-fund --deposit 5000 USDC aave_v3:arbitrum --perp hyperliquid ETH -2
      crossmargin whatif book.toml --repay all USDC aave_v3:ethereum --close-perp hyperliquid ETH --json
    """
    changes = parse_changes(list(ctx.args))
    if not changes:
        raise InputError(
            "no change given: add --deposit, --withdraw, --repay, --borrow, --perp, --option, ..."
        )
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise InputError(f"--at {at!r}: expected an ISO 8601 time") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    settings = load_config(config).settings
    book, market, params, notes = _load(portfolio, settings, when)
    moved = apply_changes(
        book,
        market,
        changes,
        assets=settings.assets,
        lt=_lt(lt or []),
        mmr=None if mmr is None else Decimal(repr(mmr)),
        iv=None if iv is None else Decimal(repr(iv)),
    )
    before = build_assess_report(book, run_assessment(book, market, params, rng_seed=seed))
    after = build_assess_report(moved, run_assessment(moved, market, params, rng_seed=seed))
    if as_json:
        doc: dict[str, Any] = {
            "changes": [
                {
                    "action": c.action,
                    "target": c.target,
                    "token": c.token,
                    "amount": None if c.amount is None else str(c.amount),
                }
                for c in changes
            ],
            "notes": list(notes),
            "before": before.model_dump(),
            "after": after.model_dump(),
        }
        typer.echo(dumps(doc))
        return
    _render(changes, before, after, notes)
