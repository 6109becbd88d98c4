"""rv3 status map: what each RV3 status means, per location

Revision ID: 0011_rv3_status_map
Revises: 0010_rv3_rejected_rows
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.columns

revision: str = "0011_rv3_status_map"
down_revision: str | None = "0010_rv3_rejected_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rv3_status_map",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rv3_status_id", sa.Unicode(length=64), nullable=False),
        sa.Column("status", sa.Unicode(length=16), nullable=False),
        sa.Column("preferred", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_rv3_status_map_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_status_map")),
        sa.UniqueConstraint("location_id", "rv3_status_id", name=op.f("uq_rv3_status_map_location_id_rv3_status_id")),
    )


def downgrade() -> None:
    op.drop_table("rv3_status_map")
