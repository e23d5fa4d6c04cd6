"""Schema migrations (Alembic, scripts in ``alembic/`` at the repository root) and opening a database.

:func:`open_database` is what every command uses: it resolves the URL (``aggregator.db.engine``),
connects, and checks the schema revision stored in ``alembic_version``:

* a revision this crossmargin does not know (a newer release migrated the database) -> StorageError,
  nothing is changed;
* SQLite behind head (including a new, empty file) -> upgraded to head in place ("created and upgraded
  on first use"); the upgrade holds the write lock (``BEGIN IMMEDIATE``) so two processes starting
  at once migrate once;
* PostgreSQL behind head -> StorageError asking for ``crossmargin db upgrade`` (several workers may
  share one server: migrating is an explicit step there).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine

from aggregator.config import Settings
from aggregator.db.engine import create_engine, redact, resolve_url, storage_errors
from aggregator.errors import StorageError

__all__ = [
    "ALEMBIC_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_current",
    "head_revision",
    "open_database",
    "upgrade",
]

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine`` (``alembic/env.py`` picks it up from ``attributes``)."""
    if not (ALEMBIC_DIR / "env.py").exists():
        raise StorageError(f"migration scripts not found at {ALEMBIC_DIR}")
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["engine"] = engine
    return config


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise StorageError(f"no migrations found in {ALEMBIC_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision stored in the database (None for an empty database)."""
    with storage_errors(engine.url, "read the schema revision"), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _check_known(engine: Engine) -> str | None:
    revision = current_revision(engine)
    if revision is not None:
        try:
            known = _scripts().get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            raise StorageError(
                f"the database {redact(engine.url)} is at schema revision {revision!r}, which this version "
                "of crossmargin does not know (written by a newer release?): upgrade crossmargin; "
                "nothing was changed"
            )
    return revision


def upgrade(engine: Engine, revision: str = "head") -> None:
    _check_known(engine)
    with storage_errors(engine.url, f"upgrade the schema to {revision}"):
        try:
            command.upgrade(alembic_config(engine), revision)
        except CommandError as exc:
            raise StorageError(f"cannot upgrade to {revision!r}: {exc}") from None


def downgrade(engine: Engine, revision: str) -> None:
    _check_known(engine)
    with storage_errors(engine.url, f"downgrade the schema to {revision}"):
        try:
            command.downgrade(alembic_config(engine), revision)
        except CommandError as exc:
            raise StorageError(f"cannot downgrade to {revision!r}: {exc}") from None


def ensure_current(engine: Engine, *, auto_upgrade: bool) -> None:
    """Raise unless the database is at head; upgrade it first when ``auto_upgrade``."""
    revision = _check_known(engine)
    head = head_revision()
    if revision == head:
        return
    if auto_upgrade:
        upgrade(engine, "head")
        return
    raise StorageError(
        f"the database {redact(engine.url)} is at schema revision {revision or 'none (empty)'}, "
        f"this crossmargin needs {head}: run `crossmargin db upgrade`"
    )


def open_database(
    settings: Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    check_schema: bool = True,
) -> Engine:
    """Resolve, connect and check the database (see the module docstring)."""
    target = resolve_url(settings, environ)
    if target.is_default and target.url.database:
        path = Path(target.url.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {path.parent}: {exc.strerror}") from None
    engine = create_engine(target.url)
    if check_schema:
        ensure_current(engine, auto_upgrade=engine.dialect.name == "sqlite")
    return engine
