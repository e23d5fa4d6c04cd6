"""Alert delivery bookkeeping: the outbox lease holder and, per delivery attempt, its outcome, the worker
and the provider's message id (aggregator.alerts.worker).

Revision ID: 0002_alert_delivery
Revises: 0001
Create Date: 2026-11-21 20:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_alert_delivery"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("provider_message_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("provider_message_id")
        batch.drop_column("worker")
        batch.drop_column("outcome")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("leased_by")
