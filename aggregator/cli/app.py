"""The Typer application, shared options and the runner that maps errors to exit codes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

import aggregator
from aggregator.errors import CrossmarginError, ExitCode, exit_code_for

__all__ = ["ConfigOption", "app", "err_console", "out_console", "run"]

app = typer.Typer(
    name="crossmargin",
    help="Cross-protocol DeFi portfolio aggregator and liquidation-risk monitor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="User config file (default: $CROSSMARGIN_CONFIG, then ~/.config/crossmargin/config.toml).",
        dir_okay=False,
    ),
]


@app.command()
def version() -> None:
    """Print the crossmargin version."""
    out_console.print(f"crossmargin {aggregator.__version__}")


def run(application: typer.Typer) -> int:
    """Run the CLI; a CrossmarginError is printed as one clear line and mapped to its exit code."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        application(standalone_mode=True)
    except CrossmarginError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return int(exit_code_for(exc))
    except SystemExit as exc:  # click's own handling: usage errors exit 2, --help exits 0
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else int(ExitCode.ERROR))
    return int(ExitCode.OK)
