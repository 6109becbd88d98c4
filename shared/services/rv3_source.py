"""RV3 as the sync sees it: whether it is configured, its location, its mapping rules, its patients' contacts.

RV3 has no branch column, so all of RV3's appointments belong to ONE location: `GHL_LOCATION_ID` when set
(private-integration mode), else the only active location.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from shared.settings import Settings
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import locations as location_repo
from shared.store import rv3 as store
from sync_core.contacts import patient_key
from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import (
    MappingRules,
    Rv3Patient,
    SyncedAppointment,
    contact_digest,
    contact_for,
    contact_from_link,
)
from sync_core.rv3_statuses import Rv3Status, Rv3StatusMap
from sync_core.times import zone

HORIZON = timedelta(days=7)  # appointments further in the past are history: not brought to GHL, nor swept


def configured(settings: Settings) -> bool:
    """Whether RV3's own database is connected (RV3_SQL_URL); without it only the citas API syncs."""
    return settings.rv3_sql_url is not None


def location(settings: Settings, conn: Connection) -> location_repo.LocationRecord | None:
    """The location RV3's appointments belong to, if it is registered and active."""
    if settings.ghl_location_id:
        found = location_repo.find_location(conn, settings.ghl_location_id)
    else:
        active = location_repo.list_locations(conn, active_only=True)
        found = active[0] if len(active) == 1 else None
    return found if found is not None and found.is_active else None


def mapping_rules(
    settings: Settings,
    conn: Connection,
    where: location_repo.LocationRecord,
    now: datetime,
    *,
    statuses: Sequence[Rv3Status],
) -> MappingRules:
    """The location's rules for RV3's rows; `statuses`: RV3's `appointment_statuses`, read from RV3 by the caller."""
    return MappingRules(
        timezone=where.timezone,
        not_before=(now - HORIZON).astimezone(zone(where.timezone)).date(),
        duration_min=where.default_duration_min or settings.default_duration_min,
        default_calendar_id=where.default_calendar_id,
        therapists=store.therapist_links(conn, where.id),
        statuses=status_map(conn, where, statuses),
    )


def status_map(conn: Connection, where: location_repo.LocationRecord, statuses: Sequence[Rv3Status]) -> Rv3StatusMap:
    """RV3's statuses as the location reads them: its mapping, else their names."""
    return Rv3StatusMap.of(statuses, store.status_choices(conn, where.id))


def synced_values(record: repo.AppointmentRecord) -> SyncedAppointment:
    """The content of a stored appointment that RV3's columns decide."""
    return SyncedAppointment(
        calendar_id=record.calendar_id,
        start=record.start_at,
        end=record.end_at,
        status=AppointmentStatus(record.status),
        title=record.title,
        assigned_user_id=record.assigned_user_id,
    )


def link_patient(
    conn: Connection, where: location_repo.LocationRecord, patient: Rv3Patient, now: datetime
) -> contact_repo.ContactLink:
    """The patient's contact link (`rv3:<id>`), refreshed when RV3's data changed, and its push state.

    Once the link has a GHL contact, a change of content is pushed to it (see `rv3_capture.push_contacts`).
    Before that, the `rv3-to-ghl` worker creates the contact from the link's data; it splits the one stored
    full name by convention, so what it will send is recorded as pushed and the exact split RV3 knows
    (name / paternal / maternal) follows as an update only when the two differ.
    """
    draft = contact_for(patient, where.ghl_location_id)
    content = contact_digest(draft)
    key = patient_key(patient.patient())
    state = store.patient_states(conn, where.id, [str(patient.id)]).get(str(patient.id))
    link = contact_repo.find(conn, where.id, key)
    if state is not None and link is not None and state.content_hash == content:
        return link
    link = contact_repo.upsert_patient(
        conn,
        where.id,
        key,
        {
            "rv3_patient_id": str(patient.id),
            "full_name": draft.name[:300],
            "phone": draft.phone,
            "email": draft.email,
            "flags": draft.flags,
        },
        now,
    )
    pushed = state.pushed_hash if state is not None else None
    if link.ghl_contact_id is None:
        pushed = None
        if not store.resolution_running(conn, link.id, now):
            pushed = contact_digest(contact_from_link(link.full_name, link.phone, link.email, where.ghl_location_id))
    values = {"contact_link_id": link.id, "content_hash": content, "pushed_hash": pushed, "attempts": 0}
    store.save_patient_state(conn, where.id, str(patient.id), values, now)
    return link
