"""miasalud odoo reports: each SQL ⇄ Odoo reconciliation and what it found

Revision ID: 0009_miasalud_odoo_reports
Revises: 0008_miasalud_odoo
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.columns

revision: str = "0009_miasalud_odoo_reports"
down_revision: str | None = "0008_miasalud_odoo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "miasalud_odoo_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.Unicode(length=16), nullable=False),
        sa.Column("status", sa.Unicode(length=16), nullable=False),
        sa.Column("started_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.Column("finished_at", shared.store.columns.UtcDateTime(), nullable=True),
        sa.Column("heal", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("counts", sa.UnicodeText(), nullable=True),
        sa.Column("differences", sa.UnicodeText(), nullable=True),
        sa.Column("healed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.UnicodeText(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_odoo_reports")),
    )
    op.create_index("ix_miasalud_odoo_reports_started_at", "miasalud_odoo_reports", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_table("miasalud_odoo_reports")
