"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.store.schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_keys_scope_key")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ghl_location_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("default_calendar_id", sa.String(length=64), nullable=True),
        sa.Column("working_hours", sa.String(length=16), nullable=True),
        sa.Column("validation_mode", sa.String(length=16), nullable=True),
        sa.Column("default_duration_min", sa.Integer(), nullable=True),
        sa.Column("create_patients_from_ghl", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("send_document_id", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("ghl_location_id", name=op.f("uq_locations_ghl_location_id")),
    )
    op.create_table(
        "reconciliation_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("window_end", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("heal", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("checkpoint", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("drift_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("finished_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_reports")),
        sa.UniqueConstraint("run_id", "location_id", name=op.f("uq_reconciliation_reports_run_id_location_id")),
    )
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_reports_created", ["created_at"], unique=False)

    op.create_table(
        "sync_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.Column("attempted_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_attempts")),
    )
    with op.batch_alter_table("sync_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_sync_attempts_attempted", ["attempted_at"], unique=False)
        batch_op.create_index("ix_sync_attempts_operation_attempted", ["operation", "attempted_at"], unique=False)

    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("ghl_event_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("processed_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_inbox_dedupe_key")),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_inbox_received", ["received_at"], unique=False)

    op.create_table(
        "calendars",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ghl_calendar_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("synced_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_calendars_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("location_id", "ghl_calendar_id", name=op.f("uq_calendars_location_id_ghl_calendar_id")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_key", sa.String(length=200), nullable=False),
        sa.Column("ghl_contact_id", sa.String(length=64), nullable=True),
        sa.Column("resolving_until", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("rv3_patient_id", sa.String(length=64), nullable=True),
        sa.Column("full_name", sa.String(length=300), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_contacts_location_id_locations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("location_id", "patient_key", name=op.f("uq_contacts_location_id_patient_key")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_ghl_contact_id"), ["ghl_contact_id"], unique=False)

    op.create_table(
        "appointments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("calendar_id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("patient_contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("assigned_user_id", sa.String(length=64), nullable=True),
        sa.Column("start_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("end_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_raw", sa.String(length=64), nullable=True),
        sa.Column("ghl_event_id", sa.String(length=64), nullable=True),
        sa.Column("pending_create", sa.JSON(), nullable=True),
        sa.Column("sync_lease_until", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("rv3_appointment_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("sync_state", sa.String(length=16), nullable=False),
        sa.Column("last_synced_hash", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("rv3_updated_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("ghl_updated_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"], name=op.f("fk_appointments_location_id_locations")),
        sa.ForeignKeyConstraint(
            ["patient_contact_id"], ["contacts.id"], name=op.f("fk_appointments_patient_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_calendar_start", ["calendar_id", "start_at"], unique=False)
        batch_op.create_index("ix_appointments_location_start", ["location_id", "start_at"], unique=False)
        batch_op.create_index("ix_appointments_sync_state", ["sync_state"], unique=False)
        batch_op.create_index(
            "uq_appointments_location_ghl_event",
            ["location_id", "ghl_event_id"],
            unique=True,
            mssql_where=sa.text("ghl_event_id IS NOT NULL"),
            postgresql_where=sa.text("ghl_event_id IS NOT NULL"),
            sqlite_where=sa.text("ghl_event_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_appointments_location_rv3_appointment",
            ["location_id", "rv3_appointment_id"],
            unique=True,
            mssql_where=sa.text("rv3_appointment_id IS NOT NULL"),
            postgresql_where=sa.text("rv3_appointment_id IS NOT NULL"),
            sqlite_where=sa.text("rv3_appointment_id IS NOT NULL"),
        )

    op.create_table(
        "conflicts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("winner", sa.String(length=8), nullable=False),
        sa.Column("rv3_values", sa.JSON(), nullable=False),
        sa.Column("ghl_values", sa.JSON(), nullable=False),
        sa.Column("detected_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_conflicts_appointment_id_appointments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("op_id", sa.String(length=36), nullable=False),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("appointment_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", shared.store.schema.UtcDateTime(), nullable=False),
        sa.Column("dispatched_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.Column("done_at", shared.store.schema.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_outbox_appointment_id_appointments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("op_id", name=op.f("uq_outbox_op_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_appointment", ["appointment_id"], unique=False)
        batch_op.create_index("ix_outbox_status_created", ["status", "created_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_created")
        batch_op.drop_index("ix_outbox_appointment")

    op.drop_table("outbox")
    op.drop_table("conflicts")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_appointments_location_rv3_appointment",
            mssql_where=sa.text("rv3_appointment_id IS NOT NULL"),
            postgresql_where=sa.text("rv3_appointment_id IS NOT NULL"),
            sqlite_where=sa.text("rv3_appointment_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_appointments_location_ghl_event",
            mssql_where=sa.text("ghl_event_id IS NOT NULL"),
            postgresql_where=sa.text("ghl_event_id IS NOT NULL"),
            sqlite_where=sa.text("ghl_event_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_appointments_sync_state")
        batch_op.drop_index("ix_appointments_location_start")
        batch_op.drop_index("ix_appointments_calendar_start")

    op.drop_table("appointments")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_ghl_contact_id"))

    op.drop_table("contacts")
    op.drop_table("calendars")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_received")

    op.drop_table("webhook_inbox")
    with op.batch_alter_table("sync_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_attempts_operation_attempted")
        batch_op.drop_index("ix_sync_attempts_attempted")

    op.drop_table("sync_attempts")
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_reports_created")

    op.drop_table("reconciliation_reports")
    op.drop_table("locations")
    op.drop_table("idempotency_keys")
