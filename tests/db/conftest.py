"""Database fixtures: SQLite files in tmp_path and a throwaway PostgreSQL server for the session.

``db_url`` is parametrized over both backends (the PostgreSQL case is marked ``postgres``);
``engine`` is that database migrated to head.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db import create_engine, upgrade
from tests.db.pg_server import PgServer, find_bin_dir, start_pg


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries not installed (run scripts/ensure_postgres.sh)")
    server = start_pg()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crossmargin.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(sa.make_url(db_url))
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
