"""Request bodies for GHL's appointment endpoints, built from the stored appointment (schema fields only)."""

from __future__ import annotations

from typing import TypedDict

from sync_core.models import Appointment, AppointmentStatus
from sync_core.status import to_ghl
from sync_core.times import to_ghl_iso


class AppointmentEditBody(TypedDict, total=False):
    """The subset of GHL's `AppointmentEditSchema` (PUT /calendars/events/appointments/{id}) we send."""

    calendarId: str
    startTime: str
    endTime: str
    title: str
    appointmentStatus: str
    assignedUserId: str
    description: str
    toNotify: bool
    ignoreFreeSlotValidation: bool


class AppointmentCreateBody(AppointmentEditBody, total=False):
    """GHL's `AppointmentCreateSchema` subset we send: the edit fields plus `locationId` and `contactId`."""

    locationId: str
    contactId: str


def create_body(appointment: Appointment, *, timezone: str, to_notify: bool = True) -> AppointmentCreateBody:
    """The create body: everything `update_body` sends plus the location and the contact.

    `ignoreFreeSlotValidation` is set because RV3 already validated the slot against its own rules
    (GHL's free-slot check would reject bookings the clinic accepts). `to_notify=False` keeps GHL's
    automations (reminders) from running, e.g. when back-filling old appointments.
    """
    if appointment.contact_id is None:
        raise ValueError("the appointment has no GHL contact yet; upsert the contact first")
    return {
        **update_body(appointment, timezone=timezone, to_notify=to_notify),
        "locationId": appointment.location_id,
        "contactId": appointment.contact_id,
    }


def update_body(appointment: Appointment, *, timezone: str, to_notify: bool = True) -> AppointmentEditBody:
    """The full-update body: no `locationId`/`contactId` (GHL's edit schema has neither).

    Absent optional values (assignee, notes) are left out rather than cleared, so a value set in GHL
    that RV3 never knew about is not wiped.
    """
    body: AppointmentEditBody = {
        "calendarId": appointment.calendar_id,
        "startTime": to_ghl_iso(appointment.start, timezone),
        "endTime": to_ghl_iso(appointment.end, timezone),
        "appointmentStatus": to_ghl(appointment.status),
        "toNotify": to_notify,
        "ignoreFreeSlotValidation": True,
    }
    if appointment.title.strip():
        body["title"] = appointment.title
    if appointment.assigned_user_id:
        body["assignedUserId"] = appointment.assigned_user_id
    if appointment.notes:
        body["description"] = appointment.notes
    return body


def cancel_body(*, to_notify: bool = True) -> AppointmentEditBody:
    """Cancel = PUT with `appointmentStatus: cancelled`, which keeps the event's history in GHL."""
    return {"appointmentStatus": to_ghl(AppointmentStatus.cancelled), "toNotify": to_notify}
