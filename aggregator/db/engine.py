"""Engines for SQLite (the embedded default) and PostgreSQL, and the database URL.

Where the URL comes from, first match wins: ``[database] url`` of the effective configuration (which
already holds ``CROSSMARGIN_DATABASE_URL`` when set, see ``aggregator.config``), else the environment
variable itself, else SQLite at ``$XDG_DATA_HOME/crossmargin/crossmargin.db`` (fallback
``~/.local/share/crossmargin/crossmargin.db``).

SQLite: every connection gets ``journal_mode=WAL``, ``foreign_keys=ON``, ``busy_timeout`` and
``synchronous=FULL`` (a commit survives a power loss, not only a process crash). Python 3.11's sqlite3
module is put in autocommit mode (``isolation_level=None``) and SQLAlchemy's ``begin`` event emits the
``BEGIN`` itself: ``BEGIN IMMEDIATE`` for connections from :func:`write_transaction` (the write lock is
taken up front, so a read-then-write never fails with SQLITE_BUSY_SNAPSHOT), plain ``BEGIN`` otherwise.

PostgreSQL: psycopg 3 (``postgresql+psycopg``; a bare ``postgresql://`` URL is mapped to it), a
connect timeout, and ``pool_pre_ping``. Error messages show the URL with its password replaced by
``***`` (:func:`redact`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from aggregator.config import Settings
from aggregator.errors import StorageError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DatabaseTarget",
    "create_engine",
    "default_sqlite_path",
    "redact",
    "resolve_url",
    "storage_errors",
    "write_transaction",
]

BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5
_WRITE_OPTION = "crossmargin_write"


class DatabaseTarget:
    """A resolved URL and whether it is the embedded default (created and upgraded on first use)."""

    def __init__(self, url: sa.URL, *, is_default: bool) -> None:
        self.url = url
        self.is_default = is_default

    def __repr__(self) -> str:
        return f"DatabaseTarget({redact(self.url)!r}, is_default={self.is_default})"


def default_sqlite_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME")
    root = Path(base) if base else Path(env.get("HOME", str(Path.home()))) / ".local" / "share"
    return root / "crossmargin" / "crossmargin.db"


def resolve_url(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> DatabaseTarget:
    """The database to use (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    raw: str | None = None
    if settings is not None and settings.database.url is not None:
        raw = settings.database.url.get_secret_value()
    elif env.get("CROSSMARGIN_DATABASE_URL"):
        raw = env["CROSSMARGIN_DATABASE_URL"]
    if raw is None:
        path = default_sqlite_path(env)
        return DatabaseTarget(sa.URL.create("sqlite+pysqlite", database=str(path)), is_default=True)
    return DatabaseTarget(parse_url(raw), is_default=False)


def parse_url(raw: str) -> sa.URL:
    """Parse and normalize a database URL; the error never repeats the URL (it may hold a password)."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise StorageError(
            "the database URL is not a valid URL (expected e.g. postgresql://user@host/db or sqlite:///path)"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    raise StorageError(f"unsupported database {backend!r}: use sqlite or postgresql")


def redact(url: sa.URL | str) -> str:
    """The URL with its password masked."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparseable database URL>"
    return url.render_as_string(hide_password=True)


def create_engine(url: sa.URL, **kwargs: Any) -> Engine:
    """An engine with the per-dialect settings of the module docstring. Does not connect yet."""
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            engine = sa.create_engine(url, **kwargs)
            _install_sqlite_hooks(engine)
            return engine
        if backend == "postgresql":
            connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **kwargs.pop("connect_args", {})}
            return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StorageError(f"cannot use database {redact(url)}: {exc}") from None
    raise StorageError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit in the driver: we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = FULL")
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # a read-only file keeps its mode; writes then fail later, visibly
                with suppress(Exception):
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: ``BEGIN IMMEDIATE`` on SQLite, a plain transaction on PostgreSQL.
    Commits on success, rolls back on any exception (which propagates)."""
    with engine.connect() as connection:
        connection.execution_options(**{_WRITE_OPTION: True})
        with connection.begin():
            yield connection


def _sqlite_hint(error: object) -> str:
    """What an SQLite result code means for the user (``sqlite3`` errors carry ``sqlite_errorname``):
    a full or failing disk, a read-only file or file system, a file that cannot be opened."""
    name = str(getattr(error, "sqlite_errorname", "") or "")
    if name.startswith("SQLITE_FULL") or name.startswith("SQLITE_IOERR"):
        return " (is the disk full or failing? the transaction was rolled back; earlier data is intact)"
    if name.startswith("SQLITE_READONLY"):
        return " (the database file, its directory or its file system is read-only; nothing was written)"
    if name.startswith("SQLITE_CANTOPEN"):
        return " (missing directory, no permission, or a read-only file system)"
    return ""


@contextmanager
def storage_errors(url: sa.URL, action: str) -> Iterator[None]:
    """Turn a driver error into a StorageError naming the action and the redacted URL."""
    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise StorageError(f"cannot {action} ({redact(url)}): {reason}{_sqlite_hint(exc.orig)}") from None
    except OSError as exc:
        raise StorageError(f"cannot {action} ({redact(url)}): {exc.strerror or exc}") from None
