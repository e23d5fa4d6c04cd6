"""Alembic environment for crossmargin.

The engine comes from ``config.attributes["engine"]`` (set by ``aggregator.db.migrate``), else from
``-x url=...``, else from the effective crossmargin configuration (``aggregator.db.engine.resolve_url``).
SQLite runs in batch mode (``render_as_batch``) with foreign keys switched off for the duration of the
migration (a table rebuild must not cascade), checked with ``PRAGMA foreign_key_check`` afterwards.
The whole migration runs in one write transaction (``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, Engine

from aggregator.db.engine import create_engine, parse_url, resolve_url
from aggregator.db.models import Base

config = context.config
if config.config_file_name is not None and "engine" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return create_engine(parse_url(url))
    from aggregator.config import load_config

    return create_engine(resolve_url(load_config().settings).url)


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    connection.execution_options(crossmargin_write=True)
    with connection.begin():  # one transaction for the whole upgrade; Alembic joins it
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration would leave rows violating foreign keys: {problems[:5]}")


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url")
    context.configure(
        url=url or resolve_url().url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            _run(connection)
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
