"""Initial schema: portfolios, wallets, scans, snapshots, account snapshots, positions, factor prices,
assessments, alert rules and state, outbox, deliveries (design section 6; see aggregator.db.models).

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:30:38.687958
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The model types of aggregator.db.types, spelled with plain SQLAlchemy types so that this migration
# never changes when application code does: exact decimals are NUMERIC on PostgreSQL and text on SQLite.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EXACT = sa.String().with_variant(postgresql.NUMERIC(), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("portfolio", sa.String(length=200), nullable=True),
        sa.Column("warning", sa.Double(), nullable=True),
        sa.Column("critical", sa.Double(), nullable=True),
        sa.Column("hysteresis", sa.Double(), nullable=False),
        sa.Column("repeat_seconds", sa.Integer(), nullable=True),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("key", name=op.f("uq_alert_rules_key")),
    )
    op.create_table(
        "alert_state",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("rule_key", sa.String(length=200), nullable=False),
        sa.Column("portfolio", sa.String(length=200), nullable=False),
        sa.Column("account_key", sa.String(length=400), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("fired_at", UTC_TIME, nullable=True),
        sa.Column("last_sent_at", UTC_TIME, nullable=True),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.Column("acked_at", UTC_TIME, nullable=True),
        sa.Column("silenced_until", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_state")),
        sa.UniqueConstraint(
            "rule_key", "portfolio", "account_key", name=op.f("uq_alert_state_rule_key_portfolio_account_key")
        ),
    )
    op.create_table(
        "factor_prices",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("factor", sa.String(length=64), nullable=False),
        sa.Column("time", UTC_TIME, nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("resolution", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_factor_prices")),
        sa.UniqueConstraint("factor", "time", name=op.f("uq_factor_prices_factor_time")),
    )
    op.create_index("ix_factor_prices_resolution_time", "factor_prices", ["resolution", "time"], unique=False)
    op.create_table(
        "portfolios",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
        sa.UniqueConstraint("name", name=op.f("uq_portfolios_name")),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
    )
    op.create_index(op.f("ix_scans_started_at"), "scans", ["started_at"], unique=False)
    op.create_table(
        "snapshots",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("scan_id", sa.String(length=64), nullable=False),
        sa.Column("portfolio_id", BIG_ID, nullable=False),
        sa.Column("taken_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=8), nullable=False),
        sa.Column("chain_blocks", JSON, nullable=False),
        sa.Column("api_times", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_snapshots_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_snapshots_scan_id_scans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("scan_id", "portfolio_id", name=op.f("uq_snapshots_scan_id_portfolio_id")),
    )
    op.create_index("ix_snapshots_portfolio_time", "snapshots", ["portfolio_id", "taken_at"], unique=False)
    op.create_index("ix_snapshots_resolution_time", "snapshots", ["resolution", "taken_at"], unique=False)
    op.create_table(
        "wallets",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portfolio_id", BIG_ID, nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_wallets_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        sa.UniqueConstraint("portfolio_id", "address", name=op.f("uq_wallets_portfolio_id_address")),
    )
    op.create_index(op.f("ix_wallets_address"), "wallets", ["address"], unique=False)
    op.create_table(
        "account_snapshots",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("wallet", sa.String(length=200), nullable=False),
        sa.Column("margin_model", sa.String(length=32), nullable=False),
        sa.Column("quote", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("health", sa.Double(), nullable=True),
        sa.Column("health_infinite", sa.Boolean(), nullable=False),
        sa.Column("venue_health", EXACT, nullable=True),
        sa.Column("model_drift", sa.Double(), nullable=True),
        sa.Column("resources_usd", sa.Double(), nullable=True),
        sa.Column("requirement_usd", sa.Double(), nullable=True),
        sa.Column("p_liq", sa.Double(), nullable=True),
        sa.Column("chain", sa.String(length=64), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("as_of", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_account_snapshots_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_snapshots")),
        sa.UniqueConstraint(
            "snapshot_id",
            "deployment",
            "account_id",
            name=op.f("uq_account_snapshots_snapshot_id_deployment_account_id"),
        ),
    )
    op.create_table(
        "assessments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.Column("as_of", UTC_TIME, nullable=False),
        sa.Column("chf", sa.Double(), nullable=True),
        sa.Column("chf_account", sa.String(length=400), nullable=True),
        sa.Column("stressed_chf", sa.Double(), nullable=True),
        sa.Column("stressed_scenario", sa.String(length=200), nullable=True),
        sa.Column("p_liq", sa.Double(), nullable=True),
        sa.Column("p_liq_stderr", sa.Double(), nullable=True),
        sa.Column("expected_liquidation_penalty_usd", sa.Double(), nullable=True),
        sa.Column("pooled_hf", sa.Double(), nullable=True),
        sa.Column("netted_hf", sa.Double(), nullable=True),
        sa.Column("fragmentation_cost_usd", sa.Double(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_assessments_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("snapshot_id", name=op.f("uq_assessments_snapshot_id")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("leased_until", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("snapshot_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_outbox_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", "channel", name=op.f("uq_outbox_event_id_channel")),
    )
    op.create_index(op.f("ix_outbox_snapshot_id"), "outbox", ["snapshot_id"], unique=False)
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("outbox_id", BIG_ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_deliveries_outbox_id_outbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("outbox_id", "attempt", name=op.f("uq_deliveries_outbox_id_attempt")),
    )
    op.create_table(
        "positions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account_snapshot_id", BIG_ID, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("factor", sa.String(length=64), nullable=False),
        sa.Column("basis_factor", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", EXACT, nullable=False),
        sa.Column("price", EXACT, nullable=False),
        sa.Column("value", EXACT, nullable=False),
        sa.Column("price_source", sa.String(length=16), nullable=False),
        sa.Column("params", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_snapshot_id"],
            ["account_snapshots.id"],
            name=op.f("fk_positions_account_snapshot_id_account_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint(
            "account_snapshot_id", "ordinal", name=op.f("uq_positions_account_snapshot_id_ordinal")
        ),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("deliveries")
    op.drop_table("outbox")
    op.drop_table("assessments")
    op.drop_table("account_snapshots")
    op.drop_table("wallets")
    op.drop_table("snapshots")
    op.drop_table("scans")
    op.drop_table("portfolios")
    op.drop_table("factor_prices")
    op.drop_table("alert_state")
    op.drop_table("alert_rules")
