"""sync protocol facts: one JSON column replaces last_synced_hash, pending_create and the two edit stamps

Revision ID: 0005_sync_protocol
Revises: 0003_reconciliation
Create Date: 2026-12-02

Existing rows keep what they knew: a synced appointment is known to be in GHL as it is (since its last GHL
stamp), an unsynced one is sent again (a full update is harmless), and a create whose outcome was unknown is
looked for in GHL before anything else. The JSON written here is `sync_core.protocol.SyncFacts`' shape.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

import shared.store.schema

revision: str = "0005_sync_protocol"
down_revision: str | None = "0003_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("calendar_id", "contact_id", "start_at", "end_at", "status", "title", "assigned_user_id")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _fields(row: Any) -> dict[str, Any]:
    return {
        "calendar_id": row.calendar_id,
        "contact_id": row.contact_id,
        "start": _iso(row.start_at),
        "end": _iso(row.end_at),
        "status": row.status,
        "title": row.title,
        "assigned_user_id": row.assigned_user_id,
    }


def _facts(row: Any) -> dict[str, Any]:
    rv3_at, ghl_at = _iso(row.rv3_updated_at), _iso(row.ghl_updated_at)
    edited_by = "ghl" if ghl_at and (rv3_at is None or ghl_at > rv3_at) and row.source == "ghl" else "rv3"
    edited_at = max(filter(None, (rv3_at, ghl_at)), default=_iso(row.updated_at))
    facts: dict[str, Any] = {"edited_at": edited_at, "edited_by": edited_by, "writes": [], "sent": 0}
    since = ghl_at or _iso(row.updated_at)
    if row.sync_state == "synced" and row.ghl_event_id and row.last_synced_hash:
        facts["ghl"] = {"fields": _fields(row), "app": {"since": since, "until": since}, "ours": True}
        facts["landed_at"] = since
    if row.pending_create and not row.ghl_event_id:
        marker = row.pending_create
        fields = {**_fields(row), "calendar_id": marker.get("calendar_id"), "contact_id": marker.get("contact_id")}
        sent = _iso(row.updated_at)
        facts["writes"] = [{"id": 1, "kind": "create", "fields": fields, "sent_at": sent, "outcome": "unknown"}]
        facts["sent"] = 1
    return facts


def _appointments_before() -> sa.Table:
    """The appointments table as revision 0003 left it, plus this revision's two new columns: batch mode copies it
    without reflecting (so the migration also renders as an offline SQL script)."""
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    utc = shared.store.schema.UtcDateTime
    table = sa.Table(
        "appointments",
        sa.MetaData(),
        sa.Column("id", big, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("location_id", big, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("calendar_id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("patient_contact_id", big, sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("assigned_user_id", sa.String(length=64), nullable=True),
        sa.Column("start_at", utc(), nullable=False),
        sa.Column("end_at", utc(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_raw", sa.String(length=64), nullable=True),
        sa.Column("ghl_event_id", sa.String(length=64), nullable=True),
        sa.Column("pending_create", sa.JSON(), nullable=True),
        sa.Column("sync_lease_until", utc(), nullable=True),
        sa.Column("rv3_appointment_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("sync_state", sa.String(length=16), nullable=False),
        sa.Column("last_synced_hash", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("rv3_updated_at", utc(), nullable=True),
        sa.Column("ghl_updated_at", utc(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("sync_facts", sa.JSON(), nullable=True),
        sa.Column("sync_seq", sa.Integer(), server_default="0", nullable=False),
    )
    sa.Index("ix_appointments_calendar_start", table.c.calendar_id, table.c.start_at)
    sa.Index("ix_appointments_location_start", table.c.location_id, table.c.start_at)
    sa.Index("ix_appointments_sync_state", table.c.sync_state)
    for name, column in (
        ("uq_appointments_location_ghl_event", table.c.ghl_event_id),
        ("uq_appointments_location_rv3_appointment", table.c.rv3_appointment_id),
    ):
        where = column.isnot(None)
        sa.Index(name, table.c.location_id, column, unique=True, mssql_where=where, postgresql_where=where,
                 sqlite_where=where)  # fmt: skip
    return table


def upgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_facts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("sync_seq", sa.Integer(), server_default="0", nullable=False))
    table = sa.table(
        "appointments",
        sa.column("id", sa.BigInteger()),
        *(sa.column(name) for name in _FIELDS),
        sa.column("ghl_event_id"),
        sa.column("sync_state"),
        sa.column("source"),
        sa.column("last_synced_hash"),
        sa.column("pending_create", sa.JSON()),
        sa.column("rv3_updated_at"),
        sa.column("ghl_updated_at"),
        sa.column("updated_at"),
        sa.column("sync_facts", sa.JSON()),
    )
    if not context.is_offline_mode():
        # Rendered as a SQL script (offline), rows get no facts: each is then sent to GHL once more (harmless).
        conn = op.get_bind()
        for row in conn.execute(sa.select(table)).all():
            conn.execute(table.update().where(table.c.id == row.id).values(sync_facts=_facts(row)))
    with op.batch_alter_table("appointments", schema=None, copy_from=_appointments_before()) as batch_op:
        batch_op.drop_column("pending_create")
        batch_op.drop_column("last_synced_hash")
        batch_op.drop_column("rv3_updated_at")
        batch_op.drop_column("ghl_updated_at")


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ghl_updated_at", shared.store.schema.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("rv3_updated_at", shared.store.schema.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_synced_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("pending_create", sa.JSON(), nullable=True))
        batch_op.drop_column("sync_seq")
        batch_op.drop_column("sync_facts")
