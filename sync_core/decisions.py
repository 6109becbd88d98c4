"""Taking GHL's state locally (`AppointmentChanges`) and finding the event a lost create made."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import synced_fields_from_ghl
from sync_core.models import Appointment, AppointmentStatus, Source, UtcDatetime

DEFAULT_TITLE = "Cita"


DELETED_IN_GHL = "deleted_in_ghl"  # flag of an appointment whose GHL event was deleted


class AppointmentChanges(BaseModel):
    """The local appointment's new values after taking GHL's state. `None` text fields mean "keep"."""

    model_config = ConfigDict(frozen=True)

    ghl_event_id: str
    calendar_id: str
    contact_id: str | None
    title: str | None
    notes: str | None
    assigned_user_id: str | None
    start: UtcDatetime
    end: UtcDatetime
    status: AppointmentStatus
    flags: list[str] = Field(default_factory=list)

    def apply_to(self, current: Appointment) -> Appointment:
        """`current` with these values, its version bumped (so stale API edits get 412)."""
        return current.model_copy(
            update={
                "ghl_event_id": self.ghl_event_id,
                "calendar_id": self.calendar_id,
                "contact_id": self.contact_id or current.contact_id,
                "title": self.title if self.title is not None else current.title,
                "notes": self.notes if self.notes is not None else current.notes,
                "assigned_user_id": self.assigned_user_id,
                "start": self.start,
                "end": self.end,
                "status": self.status,
                "last_error": None,
                "version": current.version + 1,
                "flags": _merge_flags(current.flags, self.flags),
            }
        )

    def new_appointment(self, *, appointment_id: str, location_id: str) -> Appointment:
        """A local appointment for an event first seen in GHL (the caller chooses the id)."""
        return Appointment(
            id=appointment_id,
            location_id=location_id,
            calendar_id=self.calendar_id,
            contact_id=self.contact_id,
            title=self.title or DEFAULT_TITLE,
            notes=self.notes,
            assigned_user_id=self.assigned_user_id,
            start=self.start,
            end=self.end,
            status=self.status,
            ghl_event_id=self.ghl_event_id,
            source=Source.ghl,
            flags=list(self.flags),
        )


def changes_from_ghl(ghl: GhlAppointment, current: Appointment | None, *, deleted: bool = False) -> AppointmentChanges:
    """The local values that take GHL's event `ghl` (deleted: the event cancelled and flagged so).

    An unknown GHL status is kept as a flag; the appointment keeps the status it had.
    """
    fields = synced_fields_from_ghl(ghl)
    mapping = ghl.status
    flags: list[str] = [DELETED_IN_GHL] if deleted else []
    status = mapping.status
    if deleted:
        status = AppointmentStatus.cancelled
    elif status is None:
        flags.append(mapping.flag or "unknown_status")
        status = current.status if current is not None else AppointmentStatus.scheduled
    calendar_id = fields.calendar_id or (current.calendar_id if current is not None else None)
    if calendar_id is None:
        raise ValueError("GHL appointment without calendarId")
    return AppointmentChanges(
        ghl_event_id=ghl.id,
        calendar_id=calendar_id,
        contact_id=fields.contact_id,
        title=ghl.title,
        notes=ghl.description or ghl.notes,
        assigned_user_id=fields.assigned_user_id,
        start=fields.start,
        end=fields.end,
        status=status,
        flags=flags,
    )


def _merge_flags(existing: list[str], new: list[str]) -> list[str]:
    return existing + [flag for flag in new if flag not in existing]


def find_adoptable_event(
    events: Iterable[GhlAppointment], *, calendar_id: str, contact_id: str, start: datetime
) -> GhlAppointment | None:
    """After a create whose outcome is unknown: the GHL event that create produced, if it exists.

    It is the one on the same calendar, for the same contact, starting at the same second. A live
    match is preferred over a cancelled one, then the most recently added.
    """
    wanted = start.replace(microsecond=0)
    matches = [
        event
        for event in events
        if event.calendar_id == calendar_id
        and event.contact_id == contact_id
        and event.start is not None
        and event.start.replace(microsecond=0) == wanted
    ]
    if not matches:
        return None
    return max(
        matches,
        key=lambda event: (
            event.status.status != AppointmentStatus.cancelled,
            event.date_added or datetime.min.replace(tzinfo=UTC),
        ),
    )
