"""The ``crossmargin`` command: Typer app, global options, and error -> exit-code mapping.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

from aggregator.cli.app import app
from aggregator.cli.assess_cmd import assess
from aggregator.cli.config_cmd import config_app
from aggregator.cli.db_cmd import db_app
from aggregator.cli.devnet_cmd import devnet_app
from aggregator.cli.history_cmd import history
from aggregator.cli.scan_cmd import scan

__all__ = ["app", "main"]

app.add_typer(config_app, name="config")
app.add_typer(devnet_app, name="devnet")
app.command("scan")(scan)
app.command("assess")(assess)
app.add_typer(db_app, name="db")
app.command("history")(history)


def main() -> None:
    """Console-script entry point."""
    from aggregator.cli.app import run

    sys.exit(run(app))
