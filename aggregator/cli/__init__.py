"""The ``crossmargin`` command: Typer app, global options, and error -> exit-code mapping.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

from aggregator.cli.alerts_cmd import alerts_app
from aggregator.cli.app import app
from aggregator.cli.assess_cmd import assess
from aggregator.cli.config_cmd import config_app
from aggregator.cli.db_cmd import db_app
from aggregator.cli.demo_cmd import demo
from aggregator.cli.devnet_cmd import devnet_app
from aggregator.cli.history_cmd import history
from aggregator.cli.scan_cmd import scan
from aggregator.cli.schema_cmd import schema
from aggregator.cli.wallets_cmd import portfolios_app, wallets_app
from aggregator.cli.watch_cmd import watch
from aggregator.cli.whatif_cmd import whatif

__all__ = ["app", "main"]

app.add_typer(config_app, name="config")
app.add_typer(devnet_app, name="devnet")
app.command("scan")(scan)
app.command("assess")(assess)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")
app.command("history")(history)
app.command("watch")(watch)
app.command("demo")(demo)
app.add_typer(wallets_app, name="wallets")
app.add_typer(portfolios_app, name="portfolios")
app.command("schema")(schema)
app.command("whatif", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(whatif)


def main() -> None:
    """Console-script entry point."""
    from aggregator.cli.app import run

    sys.exit(run(app))
