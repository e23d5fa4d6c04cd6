"""``crossmargin schema [scan|assess] [--write | --check]``: the JSON Schemas of the ``--json`` documents
(``aggregator.schema``; committed as ``docs/scan-schema.json`` and ``docs/assess-schema.json``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from aggregator import schema as schemas
from aggregator.cli.app import err_console, out_console
from aggregator.errors import ExitCode, InputError

__all__ = ["schema"]


def schema(
    name: Annotated[str, typer.Argument(help="Which document: scan or assess.")] = "scan",
    write: Annotated[
        bool, typer.Option("--write", help="Write docs/scan-schema.json and docs/assess-schema.json.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when a committed schema file is stale.")
    ] = False,
) -> None:
    """Print (or write, or check) the JSON Schema of `scan --json` / `assess --json`.

    Examples:
      crossmargin schema scan > scan-schema.json
      crossmargin schema --write
      crossmargin schema --check
    """
    if name not in schemas.SCHEMAS:
        raise InputError(f"unknown schema {name!r}: choose one of {', '.join(sorted(schemas.SCHEMAS))}")
    if write:
        for path in schemas.write():
            out_console.print(f"wrote {path}", highlight=False)
        return
    if check:
        problems = schemas.check()
        for line in problems:
            err_console.print(f"[red]stale:[/] {line}; run `crossmargin schema --write`", highlight=False)
        if problems:
            raise typer.Exit(int(ExitCode.ERROR))
        return
    sys.stdout.write(schemas.render(name))
