"""reconciliation runs: lease, planned calendars and checkpoint position

Revision ID: 0003_reconciliation
Revises: 0002_rv3
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.schema

revision: str = "0003_reconciliation"
down_revision: str | None = "0002_rv3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", shared.store.schema.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("started_at", shared.store.schema.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("calendar_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("calendar_index", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_reconciliation_reports_location_created", ["location_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_reports_location_created")
        batch_op.drop_column("calendar_index")
        batch_op.drop_column("calendar_ids")
        batch_op.drop_column("started_at")
        batch_op.drop_column("lease_until")
