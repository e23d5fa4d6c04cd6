"""Migrations: round trip on both databases, models equal migrations, unknown revisions refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aggregator.db import create_engine, current_revision, downgrade, head_revision, upgrade
from aggregator.db.migrate import alembic_config
from aggregator.db.models import Base
from aggregator.errors import StorageError

TABLES = {
    "portfolios",
    "wallets",
    "scans",
    "snapshots",
    "account_snapshots",
    "positions",
    "factor_prices",
    "assessments",
    "alert_rules",
    "alert_state",
    "outbox",
    "deliveries",
}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_round_trip(db_url: str) -> None:
    engine = create_engine(sa.make_url(db_url))
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _tables(engine) == TABLES
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _tables(engine) == set()
    upgrade(engine)
    assert _tables(engine) == TABLES
    engine.dispose()


def test_models_equal_migrations(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    command.check(alembic_config(engine))  # the `alembic check` command itself


def test_a_drifted_model_is_detected(engine: sa.Engine) -> None:
    """The check above can fail: a column the migrations do not create shows up as a difference."""
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    sa.Table("scans", metadata, sa.Column("extra", sa.Integer), extend_existing=True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert [d[0] for d in diff] == ["add_column"]


def test_newer_revision_is_refused_and_nothing_changes(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    actions: tuple[Callable[[], None], ...] = (lambda: upgrade(engine), lambda: downgrade(engine, "base"))
    for action in actions:
        with pytest.raises(StorageError, match=r"ffff_from_the_future.*does not know"):
            action()
    assert current_revision(engine) == "ffff_from_the_future"
    assert _tables(engine) == TABLES
