"""``crossmargin demo``: the offline end-to-end demo (``aggregator.devnet.demo``), what ``make demo`` runs.

Registered in ``aggregator/cli/__init__.py``. Exit codes: 0 the demo ran to the end and every alert
the worker sent arrived with a valid signature; 1 it did not (a delivery was rejected); 130 Ctrl-C
(everything it started is stopped first).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from aggregator.cli.app import out_console
from aggregator.devnet.demo import run_demo
from aggregator.errors import ExitCode
from aggregator.service.logs import configure_logging

__all__ = ["demo"]


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", file_okay=False,
                     help="Keep the demo's database, config and logs here (default: a temporary "
                          "directory, removed at the end)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the service's logs.")] = False,
) -> None:
    """Run the whole product offline: devnet, portfolio, scans, price moves, signed alerts.

    Starts a local devnet (anvil with Aave V3, Morpho Blue, a Comet stand-in, local venue APIs) and a
    local webhook receiver, stores the demo wallets as a portfolio, prints the first report, moves
    ETH down until the Aave leg of the hedged book is at risk and up until its Hyperliquid leg is,
    and shows the alerts as the receiver got them (signatures verified). Nothing touches the
    network beyond 127.0.0.1; everything started is stopped at the end, also on Ctrl-C.

    Examples:
      crossmargin demo
      crossmargin demo --workdir ./demo-run      # keep the SQLite database to explore afterwards
      crossmargin history demo-book              # with CROSSMARGIN_DATABASE_URL=sqlite:///demo-run/crossmargin.db
    """
    configure_logging("human", level=logging.INFO if verbose else logging.WARNING)
    try:
        outcome = run_demo(out_console, workdir=workdir)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if outcome.rejected:
        raise typer.Exit(int(ExitCode.ERROR))
