"""``crossmargin watch [PORTFOLIO|WALLET...]``: the monitoring service (``aggregator.service.watch``).

Registered in ``aggregator/cli/__init__.py``. Runs until SIGTERM / SIGINT (exit 0 after a clean stop)
or, with ``--cycles N``, until every portfolio has completed N cycles and the alerts they decided were
handed to the delivery worker. Logs go to stderr: human lines, or JSON lines with ``--log-format json``.
Exit codes: 0 stopped cleanly; 1 with ``--cycles``, at least one cycle failed (logged); 2 bad input
(config, arguments, nothing to watch); 5 the database cannot be used.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

import typer

from aggregator.cli.app import ConfigOption
from aggregator.config import load_config
from aggregator.db import Repository, open_database
from aggregator.errors import ExitCode
from aggregator.service.instance_lock import single_watch
from aggregator.service.logs import config_secrets, configure_logging
from aggregator.service.settings import parse_seconds
from aggregator.service.signals import stop_on_signals
from aggregator.service.targets import resolve_watch_targets
from aggregator.service.watch import WatchService

__all__ = ["watch"]


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(parse_seconds(text))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if value <= 0:
        raise typer.BadParameter(f"{text!r} must be a positive duration")
    return value


def watch(  # noqa: PLR0917 (typer: one parameter per option)
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Stored portfolio names and/or wallet addresses (default: all stored)."),
    ] = None,
    config: ConfigOption = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", help="Scan interval, e.g. 60s, 5m (default: the watch section's)."),
    ] = None,
    block_driven: Annotated[
        bool | None,
        typer.Option("--block-driven/--no-block-driven",
                     help="Also rescan on every new block of a chain the portfolio has positions on."),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Restrict to FAMILY[:INSTANCE],... as in `scan`.")
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option("--portfolio", help="Portfolio name for the wallets given as arguments (default: "
                     "default); without arguments, watch only this stored portfolio."),
    ] = None,
    cycles: Annotated[
        int | None,
        typer.Option("--cycles", min=1, help="Stop after N cycles per portfolio; exit 1 if any failed."),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", help="human (default) or json (one JSON object per line).")
    ] = "human",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs (every block, skipped ticks).")
    ] = False,
) -> None:
    """Watch portfolios: scan each on its interval, alert, and keep history, until stopped.

    Stop it with SIGTERM or Ctrl-C: the cycle in flight completes (or, after the shutdown_grace of
    the watch config section, is cancelled before it stores anything) and the delivery worker releases
    its leases. Configuration: the watch section (docs/service.md).

    Examples:
      crossmargin watch                                  # every stored portfolio
      crossmargin watch treasury --interval 30s          # one stored portfolio
      crossmargin watch 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 --block-driven --log-format json
      crossmargin watch --cycles 1                       # one cycle of everything, then exit
    """
    if log_format not in ("human", "json"):
        raise typer.BadParameter("--log-format must be human or json")
    fmt: Literal["human", "json"] = "json" if log_format == "json" else "human"
    every = _duration(interval)
    settings = load_config(config).settings
    configure_logging(fmt, level=logging.DEBUG if verbose else logging.INFO, secrets=config_secrets(settings))
    engine = open_database(settings)
    try:
        chosen = resolve_watch_targets(
            settings, Repository(engine), targets or [], cli_portfolio=portfolio,
            interval=every, block_driven=block_driven, only=only,
        )
        service = WatchService(settings, engine, chosen, max_cycles=cycles)

        async def main() -> None:
            stop = asyncio.Event()
            with stop_on_signals(stop):
                await service.run(stop)

        with single_watch(engine):  # one service per database
            asyncio.run(main())
    finally:
        engine.dispose()
    failed = sum(r.failures for r in service.runners.values())
    if cycles is not None and failed:
        raise typer.Exit(int(ExitCode.ERROR))  # --cycles: a failed cycle is the script's business
