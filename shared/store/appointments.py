"""Appointments as stored by the sync: reads, filtered listing, versioned updates and overlap queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.schema import appointments, calendars, contacts, locations
from sync_core.models import Appointment, AppointmentStatus, Source, SyncState
from sync_core.protocol import SyncFacts, SyncRecord

CANCELLED = "cancelled"


@dataclass(frozen=True)
class AppointmentRecord:
    id: int
    location_id: int
    ghl_location_id: str
    timezone: str
    calendar_id: str
    contact_id: str | None
    patient_contact_id: int | None
    title: str
    notes: str | None
    assigned_user_id: str | None
    start_at: datetime
    end_at: datetime
    status: str
    status_raw: str | None
    ghl_event_id: str | None
    sync_facts: dict[str, Any] | None
    sync_seq: int
    sync_lease_until: datetime | None
    rv3_appointment_id: str | None
    version: int
    sync_state: str
    last_error: str | None
    source: str
    flags: list[str]
    created_at: datetime
    updated_at: datetime


_COLUMNS = [
    *appointments.c,
    locations.c.ghl_location_id,
    locations.c.timezone,
]
_FROM = appointments.join(locations, appointments.c.location_id == locations.c.id)

# The statements of every queue message, built once: building one (and its cache key) took longer than
# running it. Bound parameters are prefixed `b_`, apart from the columns an UPDATE sets.
_GET = sa.select(*_COLUMNS).select_from(_FROM).where(appointments.c.id == sa.bindparam("b_id"))
_BY_GHL_EVENT = (
    sa.select(*_COLUMNS)
    .select_from(_FROM)
    .where(
        appointments.c.location_id == sa.bindparam("b_location"), appointments.c.ghl_event_id == sa.bindparam("b_event")
    )
)
_SAVE = appointments.update().where(
    appointments.c.id == sa.bindparam("b_id"),
    appointments.c.version == sa.bindparam("b_version"),
    appointments.c.sync_seq == sa.bindparam("b_seq"),
)
_HELD = appointments.c.sync_lease_until == sa.bindparam("b_held")
# A save that renews the worker's sync lease, or gives it back (left alone when another worker holds it now).
_SAVE_RENEWING = _SAVE.where(_HELD).values(sync_lease_until=sa.bindparam("b_until"))
_SAVE_RELEASING = _SAVE.values(sync_lease_until=sa.case((_HELD, None), else_=appointments.c.sync_lease_until))
_HOLDS = sa.select(appointments.c.id).where(appointments.c.id == sa.bindparam("b_id"), _HELD)
_SET = appointments.update().where(appointments.c.id == sa.bindparam("b_id"))
_CLAIM = (
    appointments.update()
    .where(
        appointments.c.id == sa.bindparam("b_id"),
        sa.or_(appointments.c.sync_lease_until.is_(None), appointments.c.sync_lease_until < sa.bindparam("b_now")),
    )
    .values(sync_lease_until=sa.bindparam("b_until"))
)
_RELEASE = appointments.update().where(appointments.c.id == sa.bindparam("b_id"), _HELD).values(sync_lease_until=None)


def _record(row: sa.Row[Any]) -> AppointmentRecord:
    data = dict(row._mapping)
    data["flags"] = list(data.get("flags") or [])
    return AppointmentRecord(**{k: data[k] for k in AppointmentRecord.__dataclass_fields__})


def get(conn: Connection, appointment_id: int) -> AppointmentRecord | None:
    row = conn.execute(_GET, {"b_id": appointment_id}).first()
    return _record(row) if row else None


def find_by_ghl_event(conn: Connection, location_id: int, ghl_event_id: str) -> AppointmentRecord | None:
    row = conn.execute(_BY_GHL_EVENT, {"b_location": location_id, "b_event": ghl_event_id}).first()
    return _record(row) if row else None


def of_contact(conn: Connection, location_id: int, contact_id: str, *, limit: int = 50) -> list[AppointmentRecord]:
    """The GHL contact's latest appointments in the location (where a create of ours for it may be)."""
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .select_from(_FROM)
        .where(appointments.c.location_id == location_id, appointments.c.contact_id == contact_id)
        .order_by(appointments.c.id.desc())
        .limit(limit)
    )
    return [_record(row) for row in rows]


def insert(conn: Connection, values: Mapping[str, Any]) -> int:
    return inserted_id(conn.execute(appointments.insert().values(**values)))


def update_if_version(conn: Connection, appointment_id: int, expected_version: int, values: Mapping[str, Any]) -> bool:
    """Apply `values` and bump the version only if nobody changed the appointment since `expected_version`."""
    result = conn.execute(
        appointments.update()
        .where(appointments.c.id == appointment_id, appointments.c.version == expected_version)
        .values(**values, version=appointments.c.version + 1, sync_seq=appointments.c.sync_seq + 1)
    )
    return result.rowcount == 1


def to_domain(record: AppointmentRecord) -> Appointment:
    return Appointment(
        id=str(record.id),
        location_id=record.ghl_location_id,
        calendar_id=record.calendar_id,
        contact_id=record.contact_id,
        title=record.title,
        notes=record.notes,
        assigned_user_id=record.assigned_user_id,
        start=record.start_at,
        end=record.end_at,
        status=AppointmentStatus(record.status),
        ghl_event_id=record.ghl_event_id,
        version=record.version,
        sync_state=SyncState(record.sync_state),
        last_error=record.last_error,
        source=Source(record.source),
        flags=record.flags,
    )


def sync_record(record: AppointmentRecord) -> SyncRecord:
    """The appointment as the sync protocol sees it (`sync_core.protocol`)."""
    facts = SyncFacts.model_validate(record.sync_facts) if record.sync_facts else SyncFacts()
    return SyncRecord(appointment=to_domain(record), facts=facts)


def sync_values(record: SyncRecord) -> dict[str, Any]:
    """The columns a protocol transition changes besides the appointment's content."""
    appointment = record.appointment
    return {
        "sync_facts": record.facts.model_dump(mode="json", exclude_defaults=True),
        "sync_state": appointment.sync_state.value,
        "last_error": appointment.last_error,
        "ghl_event_id": appointment.ghl_event_id,
    }


def content_values(appointment: Appointment) -> dict[str, Any]:
    """The stored content of an appointment (what GHL's changes rewrite), never its id, version or origin."""
    return {
        "calendar_id": appointment.calendar_id,
        "contact_id": appointment.contact_id,
        "title": appointment.title[:255],
        "notes": appointment.notes,
        "assigned_user_id": appointment.assigned_user_id,
        "start_at": appointment.start,
        "end_at": appointment.end,
        "status": appointment.status.value,
        "flags": list(appointment.flags),
    }


class Contention(Exception):
    """The appointment changed since it was read (another worker's transition): read it again and redo."""


class LeaseLost(Exception):
    """The worker's sync lease expired and another worker may hold it now: nothing may be sent to GHL."""


@dataclass(frozen=True)
class LeaseChange:
    """What a save does to the worker's sync lease (known by its expiry `held`): renewed to `until`, or given
    back when `until` is None."""

    held: datetime
    until: datetime | None = None


def save_sync(
    conn: Connection,
    row: AppointmentRecord,
    record: SyncRecord,
    *,
    content: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    lease: LeaseChange | None = None,
) -> None:
    """Store a protocol transition of the appointment read as `row`, and with `content` its new content (a new
    version), renewing or giving back the worker's sync `lease` in the same statement. Raises `Contention` when
    anyone changed the appointment since `row` was read, `LeaseLost` when a lease to renew is no longer ours."""
    values: dict[str, Any] = {**sync_values(record), "sync_seq": row.sync_seq + 1}
    if content is not None:
        values.update(content, version=row.version + 1)
        if now is not None:
            values["updated_at"] = now
    values.update(b_id=row.id, b_version=row.version, b_seq=row.sync_seq)
    statement = _SAVE
    if lease is not None:
        values["b_held"] = lease.held
        if lease.until is None:
            statement = _SAVE_RELEASING
        else:
            statement, values["b_until"] = _SAVE_RENEWING, lease.until
    if conn.execute(statement, values).rowcount == 1:
        return
    if (
        statement is _SAVE_RENEWING
        and conn.execute(_HOLDS, {"b_id": row.id, "b_held": values["b_held"]}).first() is None
    ):
        raise LeaseLost(f"appointment {row.id}")
    raise Contention(f"appointment {row.id} changed since it was read")


def set_sync_result(conn: Connection, appointment_id: int, values: Mapping[str, Any]) -> None:
    """Record what the sync did (GHL ids, hashes, state); never bumps the version: it is not a user edit."""
    conn.execute(_SET, {**values, "b_id": appointment_id})


def claim_sync(conn: Connection, appointment_id: int, now: datetime, until: datetime) -> bool:
    """Take the appointment's sync lease; False while another worker holds an unexpired one."""
    result = conn.execute(_CLAIM, {"b_id": appointment_id, "b_now": now, "b_until": until})
    return result.rowcount == 1


def release_sync(conn: Connection, appointment_id: int, held_until: datetime) -> None:
    """Give our lease back; a lease that expired and was taken by another worker is left alone."""
    conn.execute(_RELEASE, {"b_id": appointment_id, "b_held": held_until})


def lock_calendar(conn: Connection, location_id: int, calendar_id: str) -> None:
    """Serialise bookings of one calendar inside this transaction, so two overlapping creates cannot both pass."""
    conn.execute(
        sa.select(calendars.c.id)
        .where(calendars.c.location_id == location_id, calendars.c.ghl_calendar_id == calendar_id)
        .with_for_update()
    ).all()


def overlapping(
    conn: Connection,
    location_id: int,
    calendar_id: str,
    start: datetime,
    end: datetime,
    *,
    exclude_id: int | None = None,
) -> list[AppointmentRecord]:
    """Non-cancelled appointments of the calendar that intersect [start, end)."""
    query = (
        sa.select(*_COLUMNS)
        .select_from(_FROM)
        .where(
            appointments.c.location_id == location_id,
            appointments.c.calendar_id == calendar_id,
            appointments.c.status != CANCELLED,
            appointments.c.start_at < end,
            appointments.c.end_at > start,
        )
        .order_by(appointments.c.start_at)
    )
    if exclude_id is not None:
        query = query.where(appointments.c.id != exclude_id)
    return [_record(row) for row in conn.execute(query)]


@dataclass(frozen=True)
class ListFilter:
    location_id: int | None = None
    statuses: Sequence[str] = ()
    sync_state: str | None = None
    start_from: datetime | None = None
    start_before: datetime | None = None


def _where(flt: ListFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if flt.location_id is not None:
        clauses.append(appointments.c.location_id == flt.location_id)
    if flt.statuses:
        clauses.append(appointments.c.status.in_(list(flt.statuses)))
    if flt.sync_state:
        clauses.append(appointments.c.sync_state == flt.sync_state)
    if flt.start_from is not None:
        clauses.append(appointments.c.start_at >= flt.start_from)
    if flt.start_before is not None:
        clauses.append(appointments.c.start_at < flt.start_before)
    return clauses


def list_page(conn: Connection, flt: ListFilter, *, offset: int, limit: int) -> tuple[list[AppointmentRecord], int]:
    """One page ordered by start time (then id, so pages are stable) and the total count."""
    where = _where(flt)
    total = conn.execute(sa.select(sa.func.count()).select_from(appointments).where(*where)).scalar_one()
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .select_from(_FROM)
        .where(*where)
        .order_by(appointments.c.start_at, appointments.c.id)
        .offset(offset)
        .limit(limit)
    )
    return [_record(row) for row in rows], int(total)


def patient_of(conn: Connection, patient_contact_id: int) -> Mapping[str, Any] | None:
    row = conn.execute(sa.select(contacts).where(contacts.c.id == patient_contact_id)).first()
    return dict(row._mapping) if row else None
