"""``crossmargin config show``: the effective configuration, secrets redacted, each value's source."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from rich.table import Table

from aggregator.cli.app import ConfigOption, out_console
from aggregator.config import LoadedConfig, load_config, redacted

__all__ = ["config_app"]

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _flatten(getattr(value, name), f"{prefix}.{name}" if prefix else name, out)
    elif isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def _display(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return redacted(value)
    if isinstance(value, tuple):
        return [_display(v) for v in value]
    if isinstance(value, dict):
        return {k: _display(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _source_of(key: str, loaded: LoadedConfig) -> str:
    base = key.split("[", maxsplit=1)[0]
    while base:
        if base in loaded.sources:
            return loaded.sources[base]
        base = base.rpartition(".")[0]
    return "built-in default"


@config_app.command("show")
def show(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    section: Annotated[str | None, typer.Argument(help="Only keys under this prefix, e.g. 'chains'.")] = None,
) -> None:
    """Show the effective configuration, with secrets redacted and the source of every value.

    Examples:
      crossmargin config show
      crossmargin config show chains.ethereum
      crossmargin --config my.toml config show --json
    """
    loaded = load_config(config)
    flat: dict[str, Any] = {}
    _flatten(loaded.settings, "", flat)
    rows = [
        (key, _display(value), _source_of(key, loaded))
        for key, value in flat.items()
        if section is None or key == section or key.startswith(section + ".")
    ]
    if as_json:
        doc = {"files": [str(f) for f in loaded.files],
               "values": {k: {"value": v, "source": s} for k, v, s in rows}}
        out_console.print_json(json.dumps(doc))
        return
    table = Table(title="crossmargin effective configuration", show_lines=False)
    table.add_column("key", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold", style="dim")
    for key, value, source in rows:
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value, source)
    out_console.print(table)
