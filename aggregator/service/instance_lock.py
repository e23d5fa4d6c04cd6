"""One ``crossmargin watch`` per database.

Two services on one database would scan the same portfolios twice, store two snapshots per cycle
and race on the alert state. :func:`single_watch` holds, for the service's lifetime:

- PostgreSQL: the session advisory lock ``pg_try_advisory_lock(WATCH_LOCK_KEY)`` on a connection of
  its own (released when that connection ends, also when the process is killed);
- SQLite: ``flock`` on ``<database file>.watch.lock`` holding the owner's pid (released by the kernel
  when the process ends). An in-memory database needs no lock.

A second service gets a :class:`StorageError` naming the holder instead of starting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.errors import StorageError

__all__ = ["WATCH_LOCK_KEY", "single_watch"]

WATCH_LOCK_KEY = 0x63726F73736D6172  # "crossmar" as a bigint: the advisory lock id of the service


@contextlib.contextmanager
def single_watch(engine: Engine) -> Iterator[None]:
    """Hold the database's watch lock until the block exits (see the module docstring)."""
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine):
            yield
    elif engine.dialect.name == "sqlite":
        with _sqlite_lock(engine):
            yield
    else:  # pragma: no cover - only the two supported databases reach here
        yield


@contextlib.contextmanager
def _postgres_lock(engine: Engine) -> Iterator[None]:
    connection = engine.connect()
    try:
        try_lock = sa.text("SELECT pg_try_advisory_lock(:key)")
        held = connection.execute(try_lock, {"key": WATCH_LOCK_KEY}).scalar()
        connection.commit()
        if not held:
            holder = connection.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": WATCH_LOCK_KEY},
            ).scalar()
            connection.rollback()
            raise StorageError(
                "another crossmargin watch is running on this database"
                + (f" (PostgreSQL backend pid {holder})" if holder is not None else "")
                + "; stop it first, or point this one at another database"
            )
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": WATCH_LOCK_KEY})
            connection.commit()
    finally:
        connection.close()


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
        return
    path = Path(database + ".watch.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise StorageError(
                f"another crossmargin watch is running on {database}"
                + (f" (pid {holder})" if holder else "")
                + "; stop it first, or point this one at another database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
