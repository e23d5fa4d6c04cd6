"""``crossmargin scan WALLET... [--config FILE] [--only FAMILY[:INSTANCE],...] [--json]``.

Reads every selected deployment for the wallets once (``aggregator.scan.run_scan``) and prints a Rich
table, or with ``--json`` the versioned document of ``aggregator.report`` (``docs/scan-json.md``).
Registered in ``aggregator/cli/__init__.py`` as ``app.command("scan")(scan)``.
Exit codes: 0 every read succeeded; 2 bad input (a wallet that is not an address, an unknown
``--only`` family or instance, a config error); 3 at least one read was unavailable (the rest is
still reported).
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapters.addresses import ChecksumAddress, InvalidAddress, parse_address
from aggregator.cli.app import ConfigOption, err_console, out_console
from aggregator.config import load_config
from aggregator.errors import ExitCode, InputError
from aggregator.report import AccountOut, ScanReport, report_from_scan
from aggregator.scan import run_scan

__all__ = ["scan"]


def _wallets(texts: list[str]) -> list[ChecksumAddress]:
    out = []
    for text in texts:
        try:
            out.append(parse_address(text))
        except InvalidAddress as exc:
            raise InputError(f"wallet {text!r}: {exc}") from None
    return out


def _number(value: Decimal | None, places: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:,.{places}f}"


def _health(account: AccountOut) -> str:
    if account.status == "unavailable":
        return "?"
    if account.health is None:
        return "∞" if account.health_source is not None else "-"
    style = "red" if account.health < 1 else ("yellow" if account.health < Decimal("1.1") else "green")
    return f"[{style}]{account.health:.4f}[/]"


def _positions(account: AccountOut) -> str:
    parts = [f"{p.kind} {_number(p.quantity, 4)} {escape(p.token)}" for p in account.positions]
    return "\n".join(parts) if parts else "-"


def _print_table(report: ScanReport) -> None:
    table = Table(title=f"crossmargin scan of {len(report.wallets)} wallet(s)", show_lines=True)
    columns = ("deployment", "wallet", "account", "status", "health", "venue health", "positions", "block")
    for column in columns:
        table.add_column(column, overflow="fold")
    for a in report.accounts:
        reason = escape(a.status_reason or "")
        status = "[green]ok[/]" if a.status == "ok" else f"[red]{a.status}[/]\n{reason}"
        account_id = a.account_id if a.account_id != a.wallet else "(wallet)"
        when = a.as_of.timestamp.isoformat(timespec="seconds")
        block = str(a.as_of.block) if a.as_of.block is not None else when
        table.add_row(
            a.deployment, a.wallet[:10] + "…", escape(account_id), status, _health(a),
            _number(a.venue_reported_health), _positions(a), block,
        )
    if report.accounts:
        out_console.print(table)
    empty = [r for r in report.reads if r.status == "ok" and r.accounts == 0]
    if empty:
        out_console.print(f"no positions: {', '.join(f'{r.deployment} {r.wallet[:10]}…' for r in empty)}")
    if not report.reads:
        out_console.print("nothing to scan: no deployment selected (see --only and your configuration)")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def scan(
    wallets: Annotated[list[str], typer.Argument(help="Wallet addresses (0x + 40 hex digits).")],
    config: ConfigOption = None,
    only: Annotated[
        str | None,
        typer.Option("--only", help="Restrict to FAMILY[:INSTANCE],... e.g. aave_v3:arbitrum,hyperliquid."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versioned JSON document.")] = False,
) -> None:
    """Read every configured venue for the wallets once and print their margin accounts.

    Examples:
      crossmargin scan 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
      crossmargin scan 0xabc... 0xdef... --only aave_v3:arbitrum,morpho_blue --json
    """
    parsed = _wallets(wallets)
    settings = load_config(config).settings
    result = asyncio.run(run_scan(settings, parsed, only=only))
    report = report_from_scan(result)
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
        sys.stdout.flush()
    else:
        _print_table(report)
    if result.any_unavailable:
        raise typer.Exit(int(ExitCode.VENUE_UNAVAILABLE))
