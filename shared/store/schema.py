"""The RV3 ⇄ GHL wing's tables, and those both wings use (SQLAlchemy Core; every table: `shared.store.tables`)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.store.columns import Id, UtcDateTime, metadata, pk, stamps, unique_when_set

__all__ = ["Id", "UtcDateTime", "metadata"]

locations = sa.Table(
    "locations",
    metadata,
    pk(),
    sa.Column("ghl_location_id", sa.Unicode(64), nullable=False, unique=True),
    sa.Column("name", sa.Unicode(200), nullable=False),
    sa.Column("timezone", sa.Unicode(64), nullable=False),
    sa.Column("is_active", sa.Boolean(), nullable=False),
    sa.Column("default_calendar_id", sa.Unicode(64)),
    sa.Column("working_hours", sa.Unicode(16)),
    sa.Column("validation_mode", sa.Unicode(16)),
    sa.Column("default_duration_min", sa.Integer()),
    sa.Column("create_patients_from_ghl", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("send_document_id", sa.Boolean(), nullable=False, server_default=sa.false()),
    *stamps(),
)

calendars = sa.Table(
    "calendars",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ghl_calendar_id", sa.Unicode(64), nullable=False),
    sa.Column("name", sa.Unicode(200), nullable=False),
    sa.Column("description", sa.UnicodeText()),
    sa.Column("timezone", sa.Unicode(64)),
    sa.Column("is_active", sa.Boolean(), nullable=False),
    sa.Column("synced_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("location_id", "ghl_calendar_id"),
)

# RV3 patient ⇄ GHL contact, per location. Several patients may share one GHL contact (GHL matches by phone,
# and family members often share one), so the GHL id is indexed, not unique. The GHL id is resolved by the
# sync worker; `resolving_until` is a short lease so two workers never create the same contact twice.
contacts = sa.Table(
    "contacts",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("patient_key", sa.Unicode(200), nullable=False),
    sa.Column("ghl_contact_id", sa.Unicode(64), index=True),
    sa.Column("resolving_until", UtcDateTime()),
    sa.Column("rv3_patient_id", sa.Unicode(64)),
    sa.Column("full_name", sa.Unicode(300)),
    sa.Column("phone", sa.Unicode(32)),
    sa.Column("email", sa.Unicode(254)),
    sa.Column("flags", sa.JSON(), nullable=False),
    *stamps(),
    sa.UniqueConstraint("location_id", "patient_key"),
)

appointments = sa.Table(
    "appointments",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("calendar_id", sa.Unicode(64), nullable=False),
    sa.Column("contact_id", sa.Unicode(64)),
    sa.Column("patient_contact_id", Id, sa.ForeignKey("contacts.id")),
    sa.Column("title", sa.Unicode(255), nullable=False),
    sa.Column("notes", sa.UnicodeText()),
    sa.Column("assigned_user_id", sa.Unicode(64)),
    sa.Column("start_at", UtcDateTime(), nullable=False),
    sa.Column("end_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.Unicode(32), nullable=False),
    sa.Column("status_raw", sa.Unicode(64)),
    sa.Column("ghl_event_id", sa.Unicode(64)),
    # The sync protocol's facts (`sync_core.protocol.SyncFacts`): when and by which side the state was made, what
    # GHL is known to hold, and our writes to GHL not yet forgotten (a create whose outcome is unknown among them).
    sa.Column("sync_facts", sa.JSON()),
    # Bumped by every change of the facts: two workers' transitions of one appointment never overwrite each other.
    sa.Column("sync_seq", sa.Integer(), nullable=False, server_default="0"),
    # One worker at a time pushes an appointment to GHL; the lease expires if that worker dies.
    sa.Column("sync_lease_until", UtcDateTime()),
    sa.Column("rv3_appointment_id", sa.Unicode(64)),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("sync_state", sa.Unicode(16), nullable=False),
    sa.Column("last_error", sa.UnicodeText()),
    sa.Column("source", sa.Unicode(8), nullable=False),
    sa.Column("flags", sa.JSON(), nullable=False),
    *stamps(),
    sa.Index("ix_appointments_location_start", "location_id", "start_at"),
    sa.Index("ix_appointments_calendar_start", "calendar_id", "start_at"),
    sa.Index("ix_appointments_sync_state", "sync_state"),
)
unique_when_set("uq_appointments_location_ghl_event", appointments.c.location_id, appointments.c.ghl_event_id)
unique_when_set(
    "uq_appointments_location_rv3_appointment", appointments.c.location_id, appointments.c.rv3_appointment_id
)

# One row per change to push to GHL, written in the same transaction as the appointment change.
outbox = sa.Table(
    "outbox",
    metadata,
    pk(),
    sa.Column("op_id", sa.Unicode(36), nullable=False, unique=True),
    sa.Column("appointment_id", Id, sa.ForeignKey("appointments.id"), nullable=False),
    sa.Column("operation", sa.Unicode(16), nullable=False),
    sa.Column("appointment_version", sa.Integer(), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.UnicodeText()),
    sa.Column("correlation_id", sa.Unicode(64)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("dispatched_at", UtcDateTime()),
    sa.Column("done_at", UtcDateTime()),
    sa.Index("ix_outbox_status_created", "status", "created_at"),
    sa.Index("ix_outbox_appointment", "appointment_id"),
)

# Every webhook received from GHL, once: `dedupe_key` is `id:<webhookId>` or `hash:<canonical payload hash>`.
webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    pk(),
    sa.Column("dedupe_key", sa.Unicode(160), nullable=False, unique=True),
    sa.Column("webhook_id", sa.Unicode(128)),
    sa.Column("payload_hash", sa.Unicode(64), nullable=False),
    sa.Column("event_type", sa.Unicode(64), nullable=False),
    sa.Column("location_id", sa.Unicode(64)),
    sa.Column("ghl_event_id", sa.Unicode(64)),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("processed_at", UtcDateTime()),
    sa.Column("success", sa.Boolean()),
    sa.Column("outcome", sa.Unicode(32)),
    sa.Column("error", sa.UnicodeText()),
    sa.Column("duration_ms", sa.Float()),
    sa.Index("ix_webhook_inbox_received", "received_at"),
    sa.Index("ix_webhook_inbox_event", "location_id", "ghl_event_id"),  # an appointment's history
)

# One row per call to GHL (and per queue-message outcome), the source of the metrics endpoints.
sync_attempts = sa.Table(
    "sync_attempts",
    metadata,
    pk(),
    sa.Column("operation", sa.Unicode(64), nullable=False),
    sa.Column("location_id", sa.Unicode(64)),
    sa.Column("appointment_id", Id),
    sa.Column("success", sa.Boolean(), nullable=False),
    sa.Column("status_code", sa.Integer()),
    sa.Column("error_code", sa.Unicode(64)),
    sa.Column("duration_ms", sa.Float(), nullable=False),
    sa.Column("trace_id", sa.Unicode(64)),
    sa.Column("attempted_at", UtcDateTime(), nullable=False),
    sa.Index("ix_sync_attempts_attempted", "attempted_at"),
    sa.Index("ix_sync_attempts_operation_attempted", "operation", "attempted_at"),
)

# A concurrent edit on both sides, and how CONFLICT_POLICY settled it.
conflicts = sa.Table(
    "conflicts",
    metadata,
    pk(),
    sa.Column("appointment_id", Id, sa.ForeignKey("appointments.id"), nullable=False),
    sa.Column("policy", sa.Unicode(16), nullable=False),
    sa.Column("winner", sa.Unicode(8), nullable=False),
    sa.Column("rv3_values", sa.JSON(), nullable=False),
    sa.Column("ghl_values", sa.JSON(), nullable=False),
    sa.Column("detected_at", UtcDateTime(), nullable=False),
)

reconciliation_reports = sa.Table(
    "reconciliation_reports",
    metadata,
    pk(),
    sa.Column("run_id", sa.Unicode(36), nullable=False),
    sa.Column("location_id", sa.Unicode(64), nullable=False),
    sa.Column("window_start", UtcDateTime(), nullable=False),
    sa.Column("window_end", UtcDateTime(), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("heal", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("checkpoint", UtcDateTime()),
    sa.Column("drift_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("report", sa.JSON(), nullable=False),
    sa.Column("error", sa.UnicodeText()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    # One worker at a time walks a run; the lease expires if it dies and the run's message resumes it.
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("started_at", UtcDateTime()),
    # The calendars the run walks, fixed when it starts so a resumed run walks the same ones, and the one the
    # checkpoint is in (`checkpoint` is the time reached within it).
    sa.Column("calendar_ids", sa.JSON()),
    sa.Column("calendar_index", sa.Integer(), nullable=False, server_default="0"),
    sa.UniqueConstraint("run_id", "location_id"),
    sa.Index("ix_reconciliation_reports_created", "created_at"),
    sa.Index("ix_reconciliation_reports_location_created", "location_id", "created_at"),
)

# API writes by Idempotency-Key: the first result is replayed for a repeated key.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    pk(),
    sa.Column("scope", sa.Unicode(64), nullable=False),
    sa.Column("key", sa.Unicode(200), nullable=False),
    sa.Column("request_hash", sa.Unicode(64), nullable=False),
    sa.Column("status_code", sa.Integer()),
    sa.Column("response_body", sa.UnicodeText()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("scope", "key"),
)

# --- RV3's own tables (RV3_SQL_URL): what the change capture and the write-back remember -----------------------

# How far the capture has read each RV3 table: RV3's own `updated_at` (ISO text, in RV3's clock and convention,
# never compared with ours) and the id of the last row at that stamp; plus the last run, for status and health.
rv3_cursors = sa.Table(
    "rv3_cursors",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stream", sa.Unicode(16), nullable=False),
    sa.Column("mark_updated_at", sa.Unicode(32)),
    sa.Column("mark_id", sa.BigInteger()),
    sa.Column("swept_at", UtcDateTime()),
    sa.Column("last_run_at", UtcDateTime()),
    sa.Column("last_error", sa.Unicode(200)),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("location_id", "stream"),
)

# One row per appointment linked to an RV3 appointment (`appointments.rv3_appointment_id`): RV3's values as
# last seen or written (echo and conflict detection), and a GHL change still to be written to RV3.
rv3_appointments = sa.Table(
    "rv3_appointments",
    metadata,
    pk(),
    sa.Column("appointment_id", Id, sa.ForeignKey("appointments.id"), nullable=False, unique=True),
    sa.Column("snapshot", sa.JSON()),
    sa.Column("written_stamp", sa.Unicode(32)),
    sa.Column("writeback", sa.Unicode(16)),
    sa.Column("create_marker", sa.JSON()),
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Unicode(200)),
    *stamps(),
    sa.Index("ix_rv3_appointments_writeback", "writeback"),
)

# RV3 patients with synced appointments: the GHL contact content they should have and the one last sent, and
# the `updated_at` of a patient the sync itself created in RV3 (so reading it back is not mistaken for a change).
rv3_patients = sa.Table(
    "rv3_patients",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rv3_patient_id", sa.Unicode(64), nullable=False),
    sa.Column("contact_link_id", Id, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("content_hash", sa.Unicode(64), nullable=False),
    sa.Column("pushed_hash", sa.Unicode(64)),
    sa.Column("written_stamp", sa.Unicode(32)),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Unicode(200)),
    *stamps(),
    sa.UniqueConstraint("location_id", "rv3_patient_id"),
)

# RV3 therapist → GHL user (and optionally their own calendar), per location; managed through the API.
rv3_therapists = sa.Table(
    "rv3_therapists",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rv3_therapist_id", sa.Unicode(64), nullable=False),
    sa.Column("ghl_user_id", sa.Unicode(64), nullable=False),
    sa.Column("ghl_calendar_id", sa.Unicode(64)),
    *stamps(),
    sa.UniqueConstraint("location_id", "rv3_therapist_id"),
)

# What each RV3 status means to the sync, per location (RV3 seeds none: each clinic names its own); managed
# through `PUT /api/rv3/statuses`. `preferred`: the one written when several RV3 statuses mean the same.
rv3_status_map = sa.Table(
    "rv3_status_map",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rv3_status_id", sa.Unicode(64), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("preferred", sa.Boolean(), nullable=False, server_default=sa.false()),
    *stamps(),
    sa.UniqueConstraint("location_id", "rv3_status_id"),
)

# RV3 rows RV3 accepted but the sync cannot map (an appointment without `appointment_date`): reported in
# `GET /api/rv3/status` and skipped, so the rest of RV3 goes on; the row's next good read clears it.
rv3_rejected_rows = sa.Table(
    "rv3_rejected_rows",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rv3_table", sa.Unicode(32), nullable=False),
    sa.Column("rv3_id", sa.Unicode(64), nullable=False),
    sa.Column("reason", sa.Unicode(300), nullable=False),
    sa.Column("rv3_stamp", sa.Unicode(32)),
    *stamps(),
    sa.UniqueConstraint("location_id", "rv3_table", "rv3_id"),
)

# GHL bookings waiting for the front desk to say which RV3 patient they are for.
rv3_reviews = sa.Table(
    "rv3_reviews",
    metadata,
    pk(),
    sa.Column("location_id", Id, sa.ForeignKey("locations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("appointment_id", Id, sa.ForeignKey("appointments.id"), nullable=False, unique=True),
    sa.Column("reason", sa.Unicode(32), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("rv3_patient_id", sa.Unicode(64)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime()),
    sa.Index("ix_rv3_reviews_status", "status"),
)
