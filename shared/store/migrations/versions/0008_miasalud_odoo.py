"""miasalud odoo push: who pushes a row (lease), which version Odoo took, advisors' Odoo users, the stage map

Revision ID: 0008_miasalud_odoo
Revises: 0007_miasalud_leads
Create Date: 2026-12-02

The stage map starts with the defaults below (a copy, as they were when this revision was written: staff change
them through the API).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shared.store.columns
from sync_core.text import fold

revision: str = "0008_miasalud_odoo"
down_revision: str | None = "0007_miasalud_leads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT_STAGES = {
    "Nuevo Lead": "Nuevo",
    "Nuevo": "Nuevo",
    "Asignado a campaña": "Calificado",
    "Asignado a médico": "Calificado",
    "Cita agendada": "Propuesta",
    "Cliente": "Ganado",
}


def upgrade() -> None:
    op.create_table(
        "miasalud_odoo_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("auth_failed_at", shared.store.columns.UtcDateTime(), nullable=True),
        sa.Column("auth_error", sa.UnicodeText(), nullable=True),
        sa.Column("last_success_at", shared.store.columns.UtcDateTime(), nullable=True),
        sa.Column("updated_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_odoo_state")),
    )
    op.create_table(
        "miasalud_stage_map",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("state", sa.Unicode(length=100), nullable=False),
        sa.Column("state_key", sa.Unicode(length=100), nullable=False),
        sa.Column("stage_name", sa.Unicode(length=100), nullable=False),
        sa.Column("created_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.columns.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miasalud_stage_map")),
        sa.UniqueConstraint("state_key", name=op.f("uq_miasalud_stage_map_state_key")),
    )
    op.add_column("miasalud_advisors", sa.Column("odoo_user_id", sa.BigInteger(), nullable=True))
    op.add_column("miasalud_campaign_contacts", sa.Column("odoo_pushed_version", sa.Integer(), nullable=True))
    op.add_column(
        "miasalud_campaign_contacts", sa.Column("odoo_lease_until", shared.store.columns.UtcDateTime(), nullable=True)
    )
    op.add_column("miasalud_contacts", sa.Column("odoo_pushed_version", sa.Integer(), nullable=True))
    op.add_column("miasalud_contacts", sa.Column("odoo_lease_until", shared.store.columns.UtcDateTime(), nullable=True))
    now = datetime.now(UTC).replace(tzinfo=None)
    stage_map = sa.table(
        "miasalud_stage_map",
        sa.column("state", sa.Unicode()),
        sa.column("state_key", sa.Unicode()),
        sa.column("stage_name", sa.Unicode()),
        sa.column("created_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    op.bulk_insert(
        stage_map,
        [
            {"state": state, "state_key": fold(state), "stage_name": stage, "created_at": now, "updated_at": now}
            for state, stage in _DEFAULT_STAGES.items()
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("miasalud_contacts") as batch_op:
        batch_op.drop_column("odoo_lease_until")
        batch_op.drop_column("odoo_pushed_version")
    with op.batch_alter_table("miasalud_campaign_contacts") as batch_op:
        batch_op.drop_column("odoo_lease_until")
        batch_op.drop_column("odoo_pushed_version")
    with op.batch_alter_table("miasalud_advisors") as batch_op:
        batch_op.drop_column("odoo_user_id")
    op.drop_table("miasalud_stage_map")
    op.drop_table("miasalud_odoo_state")
