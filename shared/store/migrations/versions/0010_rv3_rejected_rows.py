"""rv3 rejected rows: RV3 rows the sync cannot map, reported and skipped

Revision ID: 0010_rv3_rejected_rows
Revises: 0009_miasalud_odoo_reports
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.columns

revision: str = "0010_rv3_rejected_rows"
down_revision: str | None = "0009_miasalud_odoo_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rv3_rejected_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rv3_table", sa.Unicode(length=32), nullable=False),
        sa.Column("rv3_id", sa.Unicode(length=64), nullable=False),
        sa.Column("reason", sa.Unicode(length=300), nullable=False),
        sa.Column("rv3_stamp", sa.Unicode(length=32), nullable=True),
        sa.Column("created_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_rv3_rejected_rows_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_rejected_rows")),
        sa.UniqueConstraint(
            "location_id", "rv3_table", "rv3_id", name=op.f("uq_rv3_rejected_rows_location_id_rv3_table_rv3_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("rv3_rejected_rows")
