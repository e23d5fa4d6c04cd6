"""``crossmargin db upgrade | downgrade | current``: schema migrations of the configured database.

The database is ``[database] url`` / ``CROSSMARGIN_DATABASE_URL``, else the embedded SQLite file
(``aggregator.db.engine``). The URL is printed with its password masked.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from aggregator.cli.app import ConfigOption, out_console
from aggregator.config import load_config
from aggregator.db.engine import redact
from aggregator.db.migrate import current_revision, downgrade, head_revision, open_database, upgrade

__all__ = ["db_app"]

db_app = typer.Typer(
    help="Database schema: upgrade, downgrade, show the current revision.", no_args_is_help=True
)


def _engine(config: ConfigOption) -> Engine:
    return open_database(load_config(config).settings, check_schema=False)


@db_app.command("upgrade")
def upgrade_cmd(
    config: ConfigOption = None,
    revision: Annotated[str, typer.Argument(help="Target revision (default: the latest).")] = "head",
) -> None:
    """Upgrade the schema (creates the tables of a new database).

    Examples:
      crossmargin db upgrade
      CROSSMARGIN_DATABASE_URL=postgresql://crossmargin@db/crossmargin crossmargin db upgrade
    """
    engine = _engine(config)
    upgrade(engine, revision)
    out_console.print(f"{redact(engine.url)}: at revision {current_revision(engine)}")


@db_app.command("downgrade")
def downgrade_cmd(
    revision: Annotated[
        str, typer.Argument(help="Target revision: an id, '-1', or 'base' (drops every table).")
    ],
    config: ConfigOption = None,
) -> None:
    """Downgrade the schema to REVISION (data in dropped tables is lost).

    Examples:
      crossmargin db downgrade -- -1
      crossmargin db downgrade base
    """
    engine = _engine(config)
    downgrade(engine, revision)
    out_console.print(f"{redact(engine.url)}: at revision {current_revision(engine) or 'base (empty)'}")


@db_app.command("current")
def current_cmd(config: ConfigOption = None) -> None:
    """Show the database, its schema revision and the latest revision this crossmargin knows.

    Examples:
      crossmargin db current
      CROSSMARGIN_DATABASE_URL=postgresql://crossmargin@db/crossmargin crossmargin db current
    """
    engine = _engine(config)
    current = current_revision(engine)
    head = head_revision()
    state = "up to date" if current == head else "needs `crossmargin db upgrade`"
    out_console.print(f"{redact(engine.url)}: revision {current or 'none (empty)'}, latest {head} ({state})")
