"""Opening a database: the embedded default, URLs from config/env, unreachable servers, old schemas,
read-only and full disks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.config import load_config
from aggregator.db import (
    Repository,
    ScanInfo,
    current_revision,
    head_revision,
    open_database,
    resolve_url,
    upgrade,
)
from aggregator.db.engine import create_engine
from aggregator.errors import StorageError
from tests.db import factories as f


def test_default_sqlite_is_created_and_upgraded_on_first_use(clean_environment: Path) -> None:
    engine = open_database()
    path = clean_environment / ".local" / "share" / "crossmargin" / "crossmargin.db"
    assert engine.url.database == str(path) and path.exists()
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2, "busy_timeout": 5000}
    engine.dispose()
    open_database().dispose()  # second use: already at head


def test_url_from_environment_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSMARGIN_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    target = resolve_url(load_config().settings)
    assert not target.is_default and target.url.database == str(tmp_path / "env.db")
    assert resolve_url(None).url.database == str(tmp_path / "env.db")
    pg = resolve_url(None, {"CROSSMARGIN_DATABASE_URL": "postgresql://u:hunter2pass@db.example/x"})
    assert pg.url.drivername == "postgresql+psycopg"
    assert "hunter2pass" not in repr(pg)


def test_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    with socket_port() as port:
        env = {"CROSSMARGIN_DATABASE_URL": f"postgresql://crossmargin:s3cretpassword@127.0.0.1:{port}/x"}
        with pytest.raises(StorageError) as info:
            open_database(environ=env)
    message = str(info.value)
    assert "s3cretpassword" not in message and "***" in message and f"127.0.0.1:{port}" in message
    assert "cannot read the schema revision" in message


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a valid URL"):
        open_database(environ={"CROSSMARGIN_DATABASE_URL": "::nonsense::"})
    with pytest.raises(StorageError, match="unsupported database 'mysql'"):
        open_database(environ={"CROSSMARGIN_DATABASE_URL": "mysql://x@y/z"})
    with pytest.raises(StorageError, match="unable to open database file"):
        open_database(environ={"CROSSMARGIN_DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.db"})


@pytest.mark.postgres
def test_postgres_behind_head_asks_for_upgrade(pg_url: str) -> None:
    with pytest.raises(StorageError, match="crossmargin db upgrade"):
        open_database(environ={"CROSSMARGIN_DATABASE_URL": pg_url})
    engine = create_engine(sa.make_url(pg_url))
    assert sa.inspect(engine).get_table_names() == []  # nothing was changed
    engine.dispose()


def _seed(url: str) -> sa.Engine:
    engine = create_engine(sa.make_url(url))
    upgrade(engine)
    accounts = [f.account(0)]
    Repository(engine).store_scan(
        ScanInfo(id="first", started_at=f.T0), "fund", accounts, f.assessment("fund", accounts)
    )
    return engine


def _snapshot_count(url: str) -> int:
    with sa.create_engine(url).connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM snapshots")).scalar_one())


def test_read_only_sqlite_fails_visibly_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    _seed(f"sqlite:///{path}").dispose()
    engine = create_engine(sa.make_url(f"sqlite:///file:{path}?mode=ro&uri=true"))
    accounts = [f.account(1)]
    with pytest.raises(StorageError, match="readonly database"):
        Repository(engine).store_scan(ScanInfo(id="second", started_at=f.T0), "fund", accounts)
    engine.dispose()
    assert _snapshot_count(f"sqlite:///{path}") == 1


def test_full_disk_fails_visibly_and_keeps_data(tmp_path: Path) -> None:
    """``max_page_count`` caps the file, which is SQLite's own "disk full" (SQLITE_FULL) path."""
    path = tmp_path / "full.db"
    engine = _seed(f"sqlite:///{path}")
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]

    @sa.event.listens_for(engine, "connect")
    def cap(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    engine.dispose()
    accounts = [f.account(i, positions=40) for i in range(200)]
    with pytest.raises(StorageError, match="full"):
        Repository(engine).store_scan(ScanInfo(id="big", started_at=f.T0), "fund", accounts)
    engine.dispose()
    assert _snapshot_count(f"sqlite:///{path}") == 1


@pytest.mark.postgres
def test_read_only_postgres_fails_visibly_and_keeps_data(pg_url: str) -> None:
    _seed(pg_url).dispose()
    engine = create_engine(
        sa.make_url(pg_url), connect_args={"options": "-c default_transaction_read_only=on"}
    )
    with pytest.raises(StorageError, match="read-only transaction"):
        Repository(engine).store_scan(ScanInfo(id="second", started_at=f.T0), "fund", [f.account(1)])
    engine.dispose()
    assert _snapshot_count(pg_url) == 1


class socket_port:  # noqa: N801 - used as a context manager
    """A port on 127.0.0.1 that is bound but not listening: connections are refused."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *_: object) -> None:
        self.sock.close()
