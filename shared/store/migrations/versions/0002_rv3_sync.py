"""RV3 sync tables: capture cursors, RV3 appointment links, patients, therapist mapping, review queue

Revision ID: 0002_rv3
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.schema

revision: str = "0002_rv3"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rv3_cursors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("mark_updated_at", sa.String(length=32), nullable=True),
        sa.Column("mark_id", sa.BigInteger(), nullable=True),
        sa.Column("swept_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("last_run_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_rv3_cursors_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_cursors")),
        sa.UniqueConstraint("location_id", "stream", name=op.f("uq_rv3_cursors_location_id_stream")),
    )
    op.create_table(
        "rv3_therapists",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rv3_therapist_id", sa.String(length=64), nullable=False),
        sa.Column("ghl_user_id", sa.String(length=64), nullable=False),
        sa.Column("ghl_calendar_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_rv3_therapists_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_therapists")),
        sa.UniqueConstraint(
            "location_id", "rv3_therapist_id", name=op.f("uq_rv3_therapists_location_id_rv3_therapist_id")
        ),
    )
    op.create_table(
        "rv3_patients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rv3_patient_id", sa.String(length=64), nullable=False),
        sa.Column("contact_link_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("pushed_hash", sa.String(length=64), nullable=True),
        sa.Column("written_stamp", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_link_id"], ["contacts.id"], name=op.f("fk_rv3_patients_contact_link_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_rv3_patients_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_patients")),
        sa.UniqueConstraint("location_id", "rv3_patient_id", name=op.f("uq_rv3_patients_location_id_rv3_patient_id")),
    )
    op.create_table(
        "rv3_appointments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("written_stamp", sa.String(length=32), nullable=True),
        sa.Column("writeback", sa.String(length=16), nullable=True),
        sa.Column("create_marker", sa.JSON(), nullable=True),
        sa.Column("lease_until", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_rv3_appointments_appointment_id_appointments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_appointments")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_rv3_appointments_appointment_id")),
    )
    with op.batch_alter_table("rv3_appointments", schema=None) as batch_op:
        batch_op.create_index("ix_rv3_appointments_writeback", ["writeback"], unique=False)

    op.create_table(
        "rv3_reviews",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rv3_patient_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("resolved_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_rv3_reviews_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_rv3_reviews_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rv3_reviews")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_rv3_reviews_appointment_id")),
    )
    with op.batch_alter_table("rv3_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_rv3_reviews_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rv3_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_rv3_reviews_status")

    op.drop_table("rv3_reviews")
    with op.batch_alter_table("rv3_appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_rv3_appointments_writeback")

    op.drop_table("rv3_appointments")
    op.drop_table("rv3_patients")
    op.drop_table("rv3_therapists")
    op.drop_table("rv3_cursors")
