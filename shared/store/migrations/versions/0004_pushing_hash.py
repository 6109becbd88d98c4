"""appointments.pushing_hash: the state a worker is writing to GHL, so its echo is known as ours

Revision ID: 0004_pushing_hash
Revises: 0003_reconciliation
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_pushing_hash"
down_revision: str | None = "0003_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushing_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_column("pushing_hash")
