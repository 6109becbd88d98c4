"""The sync store's side of RV3: capture cursors, appointment links, patients' contacts, therapist map, reviews."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.schema import (
    appointments,
    contacts,
    rv3_appointments,
    rv3_cursors,
    rv3_patients,
    rv3_rejected_rows,
    rv3_reviews,
    rv3_status_map,
    rv3_therapists,
)
from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import Cursor, Rv3Snapshot, TherapistLink
from sync_core.rv3_statuses import StatusChoice

APPOINTMENTS = "appointments"
PATIENTS = "patients"

# What is still to be written to RV3 for a linked appointment.
WRITE_UPDATE = "update"  # GHL changed it: write date, hour, status
WRITE_CREATE = "create"  # booked in GHL: create it in RV3
WRITE_REVIEW = "review"  # booked in GHL for a contact no RV3 patient is known for: the front desk decides
WRITE_FAILED = "failed"  # RV3 refused it for good (see last_error)
PENDING_WRITES = (WRITE_UPDATE, WRITE_CREATE)

REVIEW_OPEN = "open"
REVIEW_RESOLVED = "resolved"
MAX_PUSH_ATTEMPTS = 10
_IN_CHUNK = 500


def stamp_text(moment: datetime | None) -> str | None:
    """RV3's own `updated_at` as stored here: ISO text, exactly as read (never converted to our clock)."""
    return moment.isoformat() if moment is not None else None


# --- cursors ---


@dataclass(frozen=True)
class CursorState:
    location_id: int
    stream: str
    mark: Cursor | None
    swept_at: datetime | None
    last_run_at: datetime | None
    last_error: str | None


def cursor_state(conn: Connection, location_id: int, stream: str) -> CursorState:
    row = conn.execute(
        sa.select(rv3_cursors).where(rv3_cursors.c.location_id == location_id, rv3_cursors.c.stream == stream)
    ).first()
    if row is None:
        return CursorState(location_id, stream, None, None, None, None)
    mark = None
    if row.mark_updated_at is not None and row.mark_id is not None:
        mark = Cursor(updated_at=datetime.fromisoformat(row.mark_updated_at), id=int(row.mark_id))
    return CursorState(location_id, stream, mark, row.swept_at, row.last_run_at, row.last_error)


def save_cursor(conn: Connection, location_id: int, stream: str, values: Mapping[str, Any], now: datetime) -> None:
    """Upsert the stream's row; `values` may hold `mark` (a Cursor), `swept_at`, `last_run_at`, `last_error`."""
    data = {k: v for k, v in values.items() if k != "mark"}
    if "mark" in values:
        mark: Cursor | None = values["mark"]
        data["mark_updated_at"] = stamp_text(mark.updated_at) if mark else None
        data["mark_id"] = mark.id if mark else None
    if "last_error" in data and data["last_error"] is not None:
        data["last_error"] = str(data["last_error"])[:200]
    where = (rv3_cursors.c.location_id == location_id, rv3_cursors.c.stream == stream)
    if not conn.execute(rv3_cursors.update().where(*where).values(**data, updated_at=now)).rowcount:
        conn.execute(rv3_cursors.insert().values(location_id=location_id, stream=stream, **data, updated_at=now))


# --- appointment links ---


@dataclass(frozen=True)
class Link:
    """An appointment's link to its RV3 row: RV3's values as last seen or written, and what is left to write."""

    appointment_id: int
    snapshot: Rv3Snapshot | None
    written_stamp: str | None
    writeback: str | None
    create_marker: dict[str, Any] | None
    lease_until: datetime | None
    attempts: int
    last_error: str | None


def _link(row: sa.Row[Any]) -> Link:
    data = row._mapping
    snapshot = Rv3Snapshot.model_validate(data["snapshot"]) if data["snapshot"] else None
    return Link(
        appointment_id=int(data["appointment_id"]),
        snapshot=snapshot,
        written_stamp=data["written_stamp"],
        writeback=data["writeback"],
        create_marker=dict(data["create_marker"]) if data["create_marker"] else None,
        lease_until=data["lease_until"],
        attempts=int(data["attempts"]),
        last_error=data["last_error"],
    )


def _link_values(values: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(values)
    if "snapshot" in data:
        snapshot: Rv3Snapshot | None = data["snapshot"]
        data["snapshot"] = snapshot.model_dump(mode="json") if snapshot else None
    if data.get("last_error") is not None:
        data["last_error"] = str(data["last_error"])[:200]
    return data


def get_link(conn: Connection, appointment_id: int) -> Link | None:
    row = conn.execute(sa.select(rv3_appointments).where(rv3_appointments.c.appointment_id == appointment_id)).first()
    return _link(row) if row else None


def add_link(conn: Connection, appointment_id: int, values: Mapping[str, Any], now: datetime) -> None:
    conn.execute(
        rv3_appointments.insert().values(
            appointment_id=appointment_id, **_link_values(values), created_at=now, updated_at=now
        )
    )


def update_link(conn: Connection, appointment_id: int, values: Mapping[str, Any], now: datetime) -> None:
    conn.execute(
        rv3_appointments.update()
        .where(rv3_appointments.c.appointment_id == appointment_id)
        .values(**_link_values(values), updated_at=now)
    )


def delete_link(conn: Connection, appointment_id: int) -> None:
    conn.execute(rv3_appointments.delete().where(rv3_appointments.c.appointment_id == appointment_id))


def linked_by_rv3_id(conn: Connection, location_id: int, rv3_ids: Sequence[str]) -> dict[str, tuple[int, Link | None]]:
    """{RV3 appointment id: (sync appointment id, its link)} for the ids the sync store knows."""
    found: dict[str, tuple[int, Link | None]] = {}
    for start in range(0, len(rv3_ids), _IN_CHUNK):
        chunk = list(rv3_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            sa.select(appointments.c.id.label("sync_id"), appointments.c.rv3_appointment_id, rv3_appointments)
            .select_from(
                appointments.outerjoin(rv3_appointments, rv3_appointments.c.appointment_id == appointments.c.id)
            )
            .where(appointments.c.location_id == location_id, appointments.c.rv3_appointment_id.in_(chunk))
        )
        for row in rows:
            link = _link(row) if row.appointment_id is not None else None
            found[str(row.rv3_appointment_id)] = (int(row.sync_id), link)
    return found


def links_awaiting_create(conn: Connection, location_id: int) -> list[Link]:
    """Links of GHL bookings being created in RV3 (a marker names the row to expect), oldest first."""
    rows = conn.execute(
        sa.select(rv3_appointments)
        .join(appointments, appointments.c.id == rv3_appointments.c.appointment_id)
        .where(
            appointments.c.location_id == location_id,
            appointments.c.rv3_appointment_id.is_(None),
            rv3_appointments.c.create_marker.isnot(None),
        )
        .order_by(rv3_appointments.c.id)
    )
    return [_link(row) for row in rows if row.create_marker]


def live_links(conn: Connection, location_id: int, start_from: datetime) -> list[tuple[int, str, Link]]:
    """(sync id, RV3 id, link) of linked appointments not cancelled that start at or after `start_from`."""
    rows = conn.execute(
        sa.select(appointments.c.id.label("sync_id"), appointments.c.rv3_appointment_id, rv3_appointments)
        .join(rv3_appointments, rv3_appointments.c.appointment_id == appointments.c.id)
        .where(
            appointments.c.location_id == location_id,
            appointments.c.rv3_appointment_id.isnot(None),
            appointments.c.status != "cancelled",
            appointments.c.start_at >= start_from,
        )
        .order_by(appointments.c.id)
    )
    return [(int(row.sync_id), str(row.rv3_appointment_id), _link(row)) for row in rows]


def pending_writes(conn: Connection, limit: int) -> list[int]:
    rows = conn.execute(
        sa.select(rv3_appointments.c.appointment_id)
        .where(rv3_appointments.c.writeback.in_(PENDING_WRITES))
        .order_by(rv3_appointments.c.updated_at, rv3_appointments.c.id)
        .limit(limit)
    )
    return [int(row.appointment_id) for row in rows]


def claim_link(conn: Connection, appointment_id: int, now: datetime, until: datetime) -> bool:
    """Take the link's short lease: one writer to RV3 per appointment at a time."""
    result = conn.execute(
        rv3_appointments.update()
        .where(
            rv3_appointments.c.appointment_id == appointment_id,
            sa.or_(rv3_appointments.c.lease_until.is_(None), rv3_appointments.c.lease_until < now),
        )
        .values(lease_until=until)
    )
    return result.rowcount == 1


def release_link(conn: Connection, appointment_id: int, until: datetime) -> None:
    conn.execute(
        rv3_appointments.update()
        .where(rv3_appointments.c.appointment_id == appointment_id, rv3_appointments.c.lease_until == until)
        .values(lease_until=None)
    )


# --- patients and their GHL contacts ---


@dataclass(frozen=True)
class PatientState:
    id: int
    rv3_patient_id: str
    contact_link_id: int
    content_hash: str
    pushed_hash: str | None
    written_stamp: str | None
    attempts: int


def _patient_state(row: sa.Row[Any]) -> PatientState:
    return PatientState(**{k: row._mapping[k] for k in PatientState.__dataclass_fields__})


def patient_hashes(conn: Connection, location_id: int) -> dict[str, str]:
    """{RV3 patient id: the contact content last taken from RV3} of every patient the sync linked."""
    rows = conn.execute(
        sa.select(rv3_patients.c.rv3_patient_id, rv3_patients.c.content_hash).where(
            rv3_patients.c.location_id == location_id
        )
    )
    return {row.rv3_patient_id: row.content_hash for row in rows}


def patient_states(conn: Connection, location_id: int, rv3_patient_ids: Sequence[str]) -> dict[str, PatientState]:
    found: dict[str, PatientState] = {}
    for start in range(0, len(rv3_patient_ids), _IN_CHUNK):
        chunk = list(rv3_patient_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            sa.select(rv3_patients).where(
                rv3_patients.c.location_id == location_id, rv3_patients.c.rv3_patient_id.in_(chunk)
            )
        )
        found.update((row.rv3_patient_id, _patient_state(row)) for row in rows)
    return found


def save_patient_state(
    conn: Connection, location_id: int, rv3_patient_id: str, values: Mapping[str, Any], now: datetime
) -> None:
    where = (rv3_patients.c.location_id == location_id, rv3_patients.c.rv3_patient_id == rv3_patient_id)
    if not conn.execute(rv3_patients.update().where(*where).values(**values, updated_at=now)).rowcount:
        conn.execute(
            rv3_patients.insert().values(
                location_id=location_id, rv3_patient_id=rv3_patient_id, **values, created_at=now, updated_at=now
            )
        )


def resolution_running(conn: Connection, contact_link_id: int, now: datetime) -> bool:
    """Whether a worker is creating this patient's GHL contact right now (it may have read older data)."""
    row = conn.execute(sa.select(contacts.c.resolving_until).where(contacts.c.id == contact_link_id)).first()
    return row is not None and row.resolving_until is not None and row.resolving_until > now


def pending_pushes(conn: Connection, location_id: int, limit: int) -> list[tuple[PatientState, str]]:
    """Patients whose GHL contact lacks their current data: (state, GHL contact id)."""
    rows = conn.execute(
        sa.select(rv3_patients, contacts.c.ghl_contact_id)
        .join(contacts, contacts.c.id == rv3_patients.c.contact_link_id)
        .where(
            rv3_patients.c.location_id == location_id,
            contacts.c.ghl_contact_id.isnot(None),
            sa.or_(rv3_patients.c.pushed_hash.is_(None), rv3_patients.c.pushed_hash != rv3_patients.c.content_hash),
            rv3_patients.c.attempts < MAX_PUSH_ATTEMPTS,
        )
        .order_by(rv3_patients.c.updated_at, rv3_patients.c.id)
        .limit(limit)
    )
    return [(_patient_state(row), str(row.ghl_contact_id)) for row in rows]


def record_push(conn: Connection, state_id: int, *, pushed_hash: str | None, error: str | None, now: datetime) -> None:
    values: dict[str, Any] = {"updated_at": now}
    if error is None:
        values.update(pushed_hash=pushed_hash, attempts=0, last_error=None)
    else:
        values.update(attempts=rv3_patients.c.attempts + 1, last_error=error[:200])
    conn.execute(rv3_patients.update().where(rv3_patients.c.id == state_id).values(**values))


# --- therapists ---


def therapist_links(conn: Connection, location_id: int) -> dict[int, TherapistLink]:
    rows = conn.execute(sa.select(rv3_therapists).where(rv3_therapists.c.location_id == location_id))
    return {
        int(row.rv3_therapist_id): TherapistLink(ghl_user_id=row.ghl_user_id, ghl_calendar_id=row.ghl_calendar_id)
        for row in rows
    }


def put_therapist(conn: Connection, location_id: int, therapist_id: int, link: TherapistLink, now: datetime) -> None:
    values = {"ghl_user_id": link.ghl_user_id, "ghl_calendar_id": link.ghl_calendar_id, "updated_at": now}
    where = (rv3_therapists.c.location_id == location_id, rv3_therapists.c.rv3_therapist_id == str(therapist_id))
    if not conn.execute(rv3_therapists.update().where(*where).values(**values)).rowcount:
        conn.execute(
            rv3_therapists.insert().values(
                location_id=location_id, rv3_therapist_id=str(therapist_id), **values, created_at=now
            )
        )


def delete_therapist(conn: Connection, location_id: int, therapist_id: int) -> bool:
    result = conn.execute(
        rv3_therapists.delete().where(
            rv3_therapists.c.location_id == location_id, rv3_therapists.c.rv3_therapist_id == str(therapist_id)
        )
    )
    return result.rowcount == 1


# --- statuses ---


def status_choices(conn: Connection, location_id: int) -> list[StatusChoice]:
    """The location's mapping of RV3 statuses (ids RV3 may since have deleted are ignored by the map)."""
    rows = conn.execute(
        sa.select(rv3_status_map).where(rv3_status_map.c.location_id == location_id).order_by(rv3_status_map.c.id)
    )
    return [
        StatusChoice(rv3_status_id=int(row.rv3_status_id), status=AppointmentStatus(row.status), write=row.preferred)
        for row in rows
        if row.rv3_status_id.isdigit() and row.status in AppointmentStatus.__members__
    ]


def put_status_choices(conn: Connection, location_id: int, choices: Sequence[StatusChoice], now: datetime) -> None:
    """Replace the location's mapping."""
    conn.execute(rv3_status_map.delete().where(rv3_status_map.c.location_id == location_id))
    if choices:
        conn.execute(
            rv3_status_map.insert(),
            [
                {
                    "location_id": location_id,
                    "rv3_status_id": str(choice.rv3_status_id),
                    "status": choice.status.value,
                    "preferred": choice.write,
                    "created_at": now,
                    "updated_at": now,
                }
                for choice in choices
            ],
        )


# --- reviews ---


@dataclass(frozen=True)
class Review:
    id: int
    location_id: int
    appointment_id: int
    reason: str
    status: str
    rv3_patient_id: str | None
    created_at: datetime
    resolved_at: datetime | None


def _review(row: sa.Row[Any]) -> Review:
    return Review(**{k: row._mapping[k] for k in Review.__dataclass_fields__})


def open_review(conn: Connection, location_id: int, appointment_id: int, reason: str, now: datetime) -> None:
    """List a GHL booking for the front desk (again, if it had been resolved and came back)."""
    where = rv3_reviews.c.appointment_id == appointment_id
    values = {"reason": reason, "status": REVIEW_OPEN, "rv3_patient_id": None, "resolved_at": None}
    if not conn.execute(rv3_reviews.update().where(where).values(**values)).rowcount:
        conn.execute(
            rv3_reviews.insert().values(
                location_id=location_id, appointment_id=appointment_id, **values, created_at=now
            )
        )


def reviews(conn: Connection, location_id: int, status: str) -> list[Review]:
    """Reviews in `status` whose booking is still live in GHL, oldest first."""
    rows = conn.execute(
        sa.select(rv3_reviews)
        .join(appointments, appointments.c.id == rv3_reviews.c.appointment_id)
        .where(
            rv3_reviews.c.location_id == location_id,
            rv3_reviews.c.status == status,
            appointments.c.status != "cancelled",
        )
        .order_by(rv3_reviews.c.created_at, rv3_reviews.c.id)
    )
    return [_review(row) for row in rows]


def get_review(conn: Connection, review_id: int) -> Review | None:
    row = conn.execute(sa.select(rv3_reviews).where(rv3_reviews.c.id == review_id)).first()
    return _review(row) if row else None


def resolve_review(conn: Connection, appointment_id: int, rv3_patient_id: str, now: datetime) -> None:
    conn.execute(
        rv3_reviews.update()
        .where(rv3_reviews.c.appointment_id == appointment_id)
        .values(status=REVIEW_RESOLVED, rv3_patient_id=rv3_patient_id, resolved_at=now)
    )


# --- status ---


def backlog(conn: Connection, location_id: int) -> dict[str, int]:
    """What is still waiting: writes to RV3, contact updates to GHL, bookings for the front desk, failures."""

    def count(table: sa.FromClause, *where: sa.ColumnElement[bool]) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

    linked = rv3_appointments.join(appointments, appointments.c.id == rv3_appointments.c.appointment_id)
    here = appointments.c.location_id == location_id
    return {
        "pending_writebacks": count(linked, here, rv3_appointments.c.writeback.in_(PENDING_WRITES)),
        "failed_writebacks": count(linked, here, rv3_appointments.c.writeback == WRITE_FAILED),
        "pending_contact_updates": count(
            rv3_patients.join(contacts, contacts.c.id == rv3_patients.c.contact_link_id),
            rv3_patients.c.location_id == location_id,
            contacts.c.ghl_contact_id.isnot(None),
            sa.or_(rv3_patients.c.pushed_hash.is_(None), rv3_patients.c.pushed_hash != rv3_patients.c.content_hash),
        ),
        "open_reviews": count(
            rv3_reviews, rv3_reviews.c.location_id == location_id, rv3_reviews.c.status == REVIEW_OPEN
        ),
    }


@dataclass(frozen=True)
class FailedWrite:
    appointment_id: int
    rv3_appointment_id: str | None
    create: bool
    last_error: str | None
    failed_at: datetime


MAX_FAILED_LISTED = 1000


def failed_writes(conn: Connection, location_id: int, limit: int = 100) -> list[FailedWrite]:
    """Write-backs RV3 refused for good (newest first): what the front desk has to look at."""
    query = (
        sa.select(
            appointments.c.id,
            appointments.c.rv3_appointment_id,
            rv3_appointments.c.last_error,
            rv3_appointments.c.updated_at,
        )
        .select_from(rv3_appointments.join(appointments, appointments.c.id == rv3_appointments.c.appointment_id))
        .where(appointments.c.location_id == location_id, rv3_appointments.c.writeback == WRITE_FAILED)
        .order_by(rv3_appointments.c.updated_at.desc(), rv3_appointments.c.id)
        .limit(limit)
    )
    return [
        FailedWrite(int(r.id), r.rv3_appointment_id, r.rv3_appointment_id is None, r.last_error, r.updated_at)
        for r in conn.execute(query)
    ]


# --- rows the sync cannot map ---


@dataclass(frozen=True)
class RejectedRow:
    rv3_table: str
    rv3_id: str
    reason: str
    rv3_stamp: str | None
    seen_at: datetime


def reject_rows(
    conn: Connection, location_id: int, rv3_table: str, rows: Sequence[tuple[str, str, str | None]], now: datetime
) -> None:
    """Record (rv3_id, reason, RV3 stamp) rows as not synced; a row already recorded gets the new reason."""
    for rv3_id, reason, stamp in rows:
        where = (
            rv3_rejected_rows.c.location_id == location_id,
            rv3_rejected_rows.c.rv3_table == rv3_table,
            rv3_rejected_rows.c.rv3_id == rv3_id,
        )
        values = {"reason": reason[:300], "rv3_stamp": stamp, "updated_at": now}
        if not conn.execute(rv3_rejected_rows.update().where(*where).values(**values)).rowcount:
            conn.execute(
                rv3_rejected_rows.insert().values(
                    location_id=location_id, rv3_table=rv3_table, rv3_id=rv3_id, created_at=now, **values
                )
            )


def clear_rejected(conn: Connection, location_id: int, rv3_table: str, rv3_ids: Sequence[str]) -> None:
    """These rows were read fine again: they are no longer reported."""
    if rv3_ids:
        conn.execute(
            rv3_rejected_rows.delete().where(
                rv3_rejected_rows.c.location_id == location_id,
                rv3_rejected_rows.c.rv3_table == rv3_table,
                rv3_rejected_rows.c.rv3_id.in_(list(rv3_ids)),
            )
        )


def rejected_rows(conn: Connection, location_id: int, limit: int = 100) -> list[RejectedRow]:
    query = (
        sa.select(rv3_rejected_rows)
        .where(rv3_rejected_rows.c.location_id == location_id)
        .order_by(rv3_rejected_rows.c.updated_at.desc(), rv3_rejected_rows.c.id)
        .limit(limit)
    )
    return [RejectedRow(r.rv3_table, r.rv3_id, r.reason, r.rv3_stamp, r.updated_at) for r in conn.execute(query)]
