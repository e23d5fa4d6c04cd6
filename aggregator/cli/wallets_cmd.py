"""``crossmargin wallets add | list | remove`` and ``crossmargin portfolios list``: the stored wallets.

A portfolio groups wallets (a fund's many addresses); ``crossmargin scan NAME`` and
``crossmargin watch`` scan a portfolio's wallets together and assess them as one book. Stored in the
configured database (``[database] url``, else the embedded SQLite file) through
``aggregator.db.repository.Repository`` (``add_wallet`` / ``remove_wallet`` / ``wallets`` /
``portfolios``). An ENS name (``*.eth``) is resolved once, when added (``aggregator.targets.
resolve_ens``; it needs an Ethereum RPC or an ``ens_registry`` chain), and stored as the address with
the name as its label unless ``--label`` is given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapters.ens import looks_like_ens
from aggregator.cli.app import ConfigOption, err_console, out_console
from aggregator.config import Settings, load_config
from aggregator.db.migrate import open_database
from aggregator.db.repository import Repository
from aggregator.errors import ExitCode
from aggregator.targets import DEFAULT_PORTFOLIO, resolve_ens

__all__ = ["portfolios_app", "wallets_app"]

wallets_app = typer.Typer(help="Wallets grouped into portfolios: add, list, remove.", no_args_is_help=True)
portfolios_app = typer.Typer(help="Portfolios (groups of wallets).", no_args_is_help=True)

PortfolioOption = Annotated[
    str, typer.Option("--portfolio", "-p", help="Portfolio name (created on first use).")
]


def _open(config: ConfigOption) -> tuple[Settings, Repository]:
    settings = load_config(config).settings
    return settings, Repository(open_database(settings))


@wallets_app.command("add")
def add(
    wallet: Annotated[str, typer.Argument(help="An address (0x...) or an ENS name (*.eth).")],
    label: Annotated[str | None, typer.Option("--label", "-l", help="A name for the wallet.")] = None,
    portfolio: PortfolioOption = DEFAULT_PORTFOLIO,
    config: ConfigOption = None,
) -> None:
    """Add a wallet to a portfolio (adding it again updates the label).

    Examples:
      crossmargin wallets add 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --label hot --portfolio fund
      crossmargin wallets add treasury.eth --portfolio fund
    """
    settings, repository = _open(config)
    address = wallet
    if looks_like_ens(wallet):
        address = asyncio.run(resolve_ens(settings, [wallet]))[wallet]
        label = label or wallet.strip().lower()
    info = repository.add_wallet(portfolio, address, label)
    suffix = f" ({escape(info.label)})" if info.label else ""
    out_console.print(f"{info.address}{suffix} is in portfolio {escape(info.portfolio)}", highlight=False)


@wallets_app.command("list")
def list_wallets(
    portfolio: Annotated[
        str | None, typer.Option("--portfolio", "-p", help="Only this portfolio (default: all).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: [{portfolio, address, label}].")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List stored wallets by portfolio.

    Examples:
      crossmargin wallets list
      crossmargin wallets list --portfolio fund --json
    """
    _settings, repository = _open(config)
    rows = repository.wallets(portfolio)
    if as_json:
        doc = [{"portfolio": w.portfolio, "address": w.address, "label": w.label} for w in rows]
        typer.echo(json.dumps(doc, indent=2))
        return
    if not rows:
        out_console.print("no wallets yet: `crossmargin wallets add ADDRESS --portfolio NAME`")
        return
    table = Table(title="wallets")
    for column in ("portfolio", "address", "label"):
        table.add_column(column)
    for w in rows:
        table.add_row(escape(w.portfolio), w.address, escape(w.label or ""))
    out_console.print(table)


@wallets_app.command("remove")
def remove(
    wallet: Annotated[str, typer.Argument(help="The address to remove.")],
    portfolio: PortfolioOption = DEFAULT_PORTFOLIO,
    config: ConfigOption = None,
) -> None:
    """Remove a wallet from a portfolio (its stored snapshots are kept).

    Examples:
      crossmargin wallets remove 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --portfolio fund
    """
    _settings, repository = _open(config)
    if not repository.remove_wallet(portfolio, wallet):
        err_console.print(f"{escape(wallet)} is not in portfolio {escape(portfolio)}", highlight=False)
        raise typer.Exit(int(ExitCode.BAD_INPUT))
    out_console.print(f"removed {escape(wallet)} from portfolio {escape(portfolio)}", highlight=False)


@portfolios_app.command("list")
def list_portfolios(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: [{name, wallets}].")] = False,
    config: ConfigOption = None,
) -> None:
    """List portfolios and how many wallets each holds.

    Examples:
      crossmargin portfolios list
      crossmargin portfolios list --json
    """
    _settings, repository = _open(config)
    counts: dict[str, int] = dict.fromkeys(repository.portfolios(), 0)
    for w in repository.wallets():
        counts[w.portfolio] = counts.get(w.portfolio, 0) + 1
    if as_json:
        typer.echo(json.dumps([{"name": n, "wallets": c} for n, c in counts.items()], indent=2))
        return
    if not counts:
        out_console.print("no portfolios yet: `crossmargin wallets add ADDRESS --portfolio NAME`")
        return
    table = Table(title="portfolios")
    table.add_column("portfolio")
    table.add_column("wallets", justify="right")
    for name, count in counts.items():
        table.add_row(escape(name), str(count))
    out_console.print(table)
