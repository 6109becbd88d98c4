"""The sandbox's entities in GHL's wire format (API responses and webhook bodies)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from .state import Appointment, Calendar, Contact, Location, SandboxState


def iso_local(moment: datetime, location: Location, millis: bool = False) -> str:
    """ISO-8601 with the location's offset, as GHL returns appointment times."""
    return moment.astimezone(location.tz).isoformat(timespec="milliseconds" if millis else "seconds")


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z, as GHL returns contact dates and webhook timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def calendar_dto(calendar: Calendar) -> dict[str, Any]:
    ascii_name = unicodedata.normalize("NFKD", calendar.name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or calendar.id
    dto: dict[str, Any] = {
        "id": calendar.id,
        "locationId": calendar.location_id,
        "name": calendar.name,
        "description": calendar.description,
        "isActive": calendar.is_active,
        "calendarType": "event",
        "slug": slug,
        "widgetSlug": slug,
        "widgetType": "classic",
        "eventTitle": "{{contact.name}}",
        "teamMembers": [
            {"userId": user_id, "priority": 1, "isPrimary": index == 0}
            for index, user_id in enumerate(calendar.team_member_ids)
        ],
        "slotDuration": calendar.slot_duration_minutes,
        "slotDurationUnit": "mins",
        "slotInterval": calendar.slot_duration_minutes,
        "slotIntervalUnit": "mins",
        "appoinmentPerSlot": calendar.appointments_per_slot,
        "openHours": [
            {
                "daysOfTheWeek": list(hours.days_of_week),
                "hours": [
                    {
                        "openHour": int(hours.open[:2]),
                        "openMinute": int(hours.open[3:]),
                        "closeHour": int(hours.close[:2]),
                        "closeMinute": int(hours.close[3:]),
                    }
                ],
            }
            for hours in calendar.open_hours
        ],
        "autoConfirm": True,
        "allowReschedule": True,
        "allowCancellation": True,
    }
    if calendar.group_id:
        dto["groupId"] = calendar.group_id
    return dto


def _appointment_common(state: SandboxState, appt: Appointment) -> dict[str, Any]:
    location = state.locations[appt.location_id]
    calendar = state.calendars.get(appt.calendar_id)
    return {
        "id": appt.id,
        "address": appt.address,
        "title": appt.title,
        "calendarId": appt.calendar_id,
        "contactId": appt.contact_id,
        "groupId": (calendar.group_id if calendar else None) or "",
        "appointmentStatus": appt.status,
        "assignedUserId": appt.assigned_user_id,
        "users": list(appt.users),
        "notes": appt.notes,
        "startTime": iso_local(appt.start, location),
        "endTime": iso_local(appt.end, location),
        "dateAdded": iso_local(appt.date_added, location, millis=True),
        "dateUpdated": iso_local(appt.date_updated, location, millis=True),
    }


def calendar_event_dto(state: SandboxState, appt: Appointment) -> dict[str, Any]:
    created_by: dict[str, Any] = {"source": appt.source}
    if appt.created_by_user_id:
        created_by["userId"] = appt.created_by_user_id
    return {
        **_appointment_common(state, appt),
        "locationId": appt.location_id,
        "description": appt.description,
        "isRecurring": False,
        "assignedResources": [],
        "createdBy": created_by,
    }


def appointment_response(state: SandboxState, appt: Appointment) -> dict[str, Any]:
    """AppointmentSchemaResponse: the unwrapped body of POST/PUT /calendars/events/appointments."""
    location = state.locations[appt.location_id]
    body: dict[str, Any] = {
        "id": appt.id,
        "calendarId": appt.calendar_id,
        "locationId": appt.location_id,
        "contactId": appt.contact_id,
        "startTime": iso_local(appt.start, location),
        "endTime": iso_local(appt.end, location),
        "title": appt.title,
        "appointmentStatus": appt.status,
        "assignedUserId": appt.assigned_user_id,
        "address": appt.address,
        "isRecurring": False,
    }
    if appt.meeting_location_type:
        body["meetingLocationType"] = appt.meeting_location_type
    return body


def appointment_webhook(state: SandboxState, appt: Appointment) -> dict[str, Any]:
    """The `appointment` object of AppointmentCreate/Update/Delete (docs/webhook-events)."""
    return {**_appointment_common(state, appt), "source": appt.source}


def contact_dto(contact: Contact) -> dict[str, Any]:
    fields = contact.fields
    dto: dict[str, Any] = {
        "id": contact.id,
        "locationId": contact.location_id,
        "type": "lead",
        "dnd": False,
        "tags": [],
        "customFields": [],
        **fields,
        "dateAdded": iso_utc(contact.date_added),
        "dateUpdated": iso_utc(contact.date_updated),
    }
    for key in ("email", "firstName", "lastName"):
        if isinstance(fields.get(key), str):
            dto[f"{key}LowerCase"] = fields[key].lower()
    if isinstance(fields.get("name"), str):
        dto["fullNameLowerCase"] = fields["name"].lower()
    return dto


def contact_webhook(contact: Contact) -> dict[str, Any]:
    """The flat body fields of ContactCreate/Update/Delete (docs/webhook-events)."""
    keys = (
        "address1", "city", "companyName", "country", "source", "dateOfBirth", "dnd", "email", "name",
        "firstName", "lastName", "phone", "postalCode", "state", "tags", "website", "assignedTo",
        "customFields",
    )  # fmt: skip
    body: dict[str, Any] = {"id": contact.id, "dateAdded": iso_utc(contact.date_added), "attachments": []}
    body.update({k: contact.fields[k] for k in keys if k in contact.fields})
    return body


def location_dto(location: Location) -> dict[str, Any]:
    return {
        "id": location.id,
        "companyId": location.company_id,
        "name": location.name,
        "address": location.address,
        "city": location.city,
        "country": location.country,
        "timezone": location.timezone,
        "email": location.email,
        "phone": location.phone,
        "business": {
            "name": location.name,
            "address": location.address,
            "city": location.city,
            "country": location.country,
            "timezone": location.timezone,
        },
        "settings": {
            "allowDuplicateContact": location.allow_duplicate_contact,
            "allowDuplicateOpportunity": False,
            "allowFacebookNameMerge": False,
            "disableContactTimezone": False,
        },
    }
