"""The ``crossmargin`` command: Typer app, global options, and error -> exit-code mapping.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

from aggregator.cli.app import app
from aggregator.cli.config_cmd import config_app

__all__ = ["app", "main"]

app.add_typer(config_app, name="config")


def main() -> None:
    """Console-script entry point."""
    from aggregator.cli.app import run

    sys.exit(run(app))
