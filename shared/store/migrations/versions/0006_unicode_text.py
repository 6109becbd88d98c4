"""unicode text: every text column NVARCHAR on Azure SQL (VARCHAR there stored emoji and non-Latin names as "?")

Revision ID: 0006_unicode_text
Revises: 0005_sync_protocol
Create Date: 2026-12-02

Azure SQL cannot change the type of a column an index or a unique constraint uses, so those are dropped first and
created again after. SQLite and PostgreSQL (a UTF-8 database) already store any text in VARCHAR/TEXT: nothing to do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_unicode_text"
down_revision: str | None = "0005_sync_protocol"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, length or None for unbounded text, nullable) per table, as revision 0005 left them.
_TEXT_COLUMNS: dict[str, list[tuple[str, int | None, bool]]] = {
    "appointments": [
        ("calendar_id", 64, False),
        ("contact_id", 64, True),
        ("title", 255, False),
        ("notes", None, True),
        ("assigned_user_id", 64, True),
        ("status", 32, False),
        ("status_raw", 64, True),
        ("ghl_event_id", 64, True),
        ("rv3_appointment_id", 64, True),
        ("sync_state", 16, False),
        ("last_error", None, True),
        ("source", 8, False),
    ],
    "calendars": [
        ("ghl_calendar_id", 64, False),
        ("name", 200, False),
        ("description", None, True),
        ("timezone", 64, True),
    ],
    "conflicts": [("policy", 16, False), ("winner", 8, False)],
    "contacts": [
        ("patient_key", 200, False),
        ("ghl_contact_id", 64, True),
        ("rv3_patient_id", 64, True),
        ("full_name", 300, True),
        ("phone", 32, True),
        ("email", 254, True),
    ],
    "idempotency_keys": [
        ("scope", 64, False),
        ("key", 200, False),
        ("request_hash", 64, False),
        ("response_body", None, True),
    ],
    "locations": [
        ("ghl_location_id", 64, False),
        ("name", 200, False),
        ("timezone", 64, False),
        ("default_calendar_id", 64, True),
        ("working_hours", 16, True),
        ("validation_mode", 16, True),
    ],
    "outbox": [
        ("op_id", 36, False),
        ("operation", 16, False),
        ("status", 16, False),
        ("last_error", None, True),
        ("correlation_id", 64, True),
    ],
    "reconciliation_reports": [
        ("run_id", 36, False),
        ("location_id", 64, False),
        ("status", 16, False),
        ("error", None, True),
    ],
    "rv3_appointments": [("written_stamp", 32, True), ("writeback", 16, True), ("last_error", 200, True)],
    "rv3_cursors": [("stream", 16, False), ("mark_updated_at", 32, True), ("last_error", 200, True)],
    "rv3_patients": [
        ("rv3_patient_id", 64, False),
        ("content_hash", 64, False),
        ("pushed_hash", 64, True),
        ("written_stamp", 32, True),
        ("last_error", 200, True),
    ],
    "rv3_reviews": [("reason", 32, False), ("status", 16, False), ("rv3_patient_id", 64, True)],
    "rv3_therapists": [("rv3_therapist_id", 64, False), ("ghl_user_id", 64, False), ("ghl_calendar_id", 64, True)],
    "sync_attempts": [
        ("operation", 64, False),
        ("location_id", 64, True),
        ("error_code", 64, True),
        ("trace_id", 64, True),
    ],
    "webhook_inbox": [
        ("dedupe_key", 160, False),
        ("webhook_id", 128, True),
        ("payload_hash", 64, False),
        ("event_type", 64, False),
        ("location_id", 64, True),
        ("ghl_event_id", 64, True),
        ("outcome", 32, True),
        ("error", None, True),
    ],
}

# (kind, table, name, columns, unique, filter) of each index and unique constraint over a text column.
_DEPENDENT: list[tuple[str, str, str, list[str], bool, str | None]] = [
    ("index", "appointments", "ix_appointments_calendar_start", ["calendar_id", "start_at"], False, None),
    ("index", "appointments", "ix_appointments_sync_state", ["sync_state"], False, None),
    (
        "index",
        "appointments",
        "uq_appointments_location_ghl_event",
        ["location_id", "ghl_event_id"],
        True,
        "ghl_event_id IS NOT NULL",
    ),
    (
        "index",
        "appointments",
        "uq_appointments_location_rv3_appointment",
        ["location_id", "rv3_appointment_id"],
        True,
        "rv3_appointment_id IS NOT NULL",
    ),
    ("unique", "calendars", "uq_calendars_location_id_ghl_calendar_id", ["location_id", "ghl_calendar_id"], True, None),
    ("index", "contacts", "ix_contacts_ghl_contact_id", ["ghl_contact_id"], False, None),
    ("unique", "contacts", "uq_contacts_location_id_patient_key", ["location_id", "patient_key"], True, None),
    ("unique", "idempotency_keys", "uq_idempotency_keys_scope_key", ["scope", "key"], True, None),
    ("unique", "locations", "uq_locations_ghl_location_id", ["ghl_location_id"], True, None),
    ("index", "outbox", "ix_outbox_status_created", ["status", "created_at"], False, None),
    ("unique", "outbox", "uq_outbox_op_id", ["op_id"], True, None),
    (
        "index",
        "reconciliation_reports",
        "ix_reconciliation_reports_location_created",
        ["location_id", "created_at"],
        False,
        None,
    ),
    (
        "unique",
        "reconciliation_reports",
        "uq_reconciliation_reports_run_id_location_id",
        ["run_id", "location_id"],
        True,
        None,
    ),
    ("index", "rv3_appointments", "ix_rv3_appointments_writeback", ["writeback"], False, None),
    ("unique", "rv3_cursors", "uq_rv3_cursors_location_id_stream", ["location_id", "stream"], True, None),
    (
        "unique",
        "rv3_patients",
        "uq_rv3_patients_location_id_rv3_patient_id",
        ["location_id", "rv3_patient_id"],
        True,
        None,
    ),
    ("index", "rv3_reviews", "ix_rv3_reviews_status", ["status"], False, None),
    (
        "unique",
        "rv3_therapists",
        "uq_rv3_therapists_location_id_rv3_therapist_id",
        ["location_id", "rv3_therapist_id"],
        True,
        None,
    ),
    ("index", "sync_attempts", "ix_sync_attempts_operation_attempted", ["operation", "attempted_at"], False, None),
    ("unique", "webhook_inbox", "uq_webhook_inbox_dedupe_key", ["dedupe_key"], True, None),
]


def _types(length: int | None, unicode: bool) -> sa.types.TypeEngine[str]:
    if unicode:
        return sa.Unicode(length) if length else sa.UnicodeText()
    return sa.String(length) if length else sa.Text()


def _convert(unicode: bool) -> None:
    if op.get_context().dialect.name != "mssql":
        return
    for kind, table, name, _, _, _ in _DEPENDENT:
        if kind == "index":
            op.drop_index(name, table_name=table)
        else:
            op.drop_constraint(name, table, type_="unique")
    for table, columns in _TEXT_COLUMNS.items():
        for column, length, nullable in columns:
            op.alter_column(
                table,
                column,
                type_=_types(length, unicode),
                existing_type=_types(length, not unicode),
                existing_nullable=nullable,
            )
    for kind, table, name, names, unique, where in _DEPENDENT:
        if kind == "index":
            op.create_index(name, table, names, unique=unique, mssql_where=sa.text(where) if where else None)
        else:
            op.create_unique_constraint(name, table, names)


def upgrade() -> None:
    _convert(unicode=True)


def downgrade() -> None:
    _convert(unicode=False)
