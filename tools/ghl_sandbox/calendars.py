"""Calendars API (Version 2021-04-15): calendars, events and appointments, per apps/calendars.json.

Calendar operations document only 400 for bad input, so validation errors here are BadRequestDTO bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .endpoints import CALENDARS_VERSION, Endpoint, json_object
from .errors import bad_request
from .render import appointment_response, calendar_dto, calendar_event_dto
from .sandbox import Sandbox, require_location, sandbox_of
from .state import Appointment, Calendar, Location, new_id

APPOINTMENT_STATUSES = ("new", "confirmed", "cancelled", "showed", "noshow", "invalid")
MEETING_LOCATION_TYPES = ("custom", "zoom", "gmeet", "phone", "address", "ms_teams", "google")
SLOT_TAKEN = "The slot you have selected is no longer available."


def _text(data: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(f"{key} should not be empty")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string")
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(data, key)
    if value is not None and value not in allowed:
        raise bad_request(f"{key} must be one of the following values: {', '.join(allowed)}")
    return value


def _moment(value: str, key: str, location: Location) -> datetime:
    """ISO-8601; a time without offset is read in the location's timezone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{key} must be a valid ISO 8601 date string") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=location.tz)


def _calendar_in(sandbox: Sandbox, calendar_id: str, location_id: str) -> Calendar:
    calendar = sandbox.state.calendars.get(calendar_id)
    if calendar is None or calendar.location_id != location_id:
        raise bad_request("Calendar not found")
    if not calendar.is_active:
        raise bad_request("Calendar is not active")
    return calendar


def _within_open_hours(calendar: Calendar, location: Location, start: datetime, end: datetime) -> bool:
    if not calendar.open_hours:
        return True
    local_start, local_end = start.astimezone(location.tz), end.astimezone(location.tz)
    if local_end.date() != local_start.date():
        return False
    weekday = local_start.isoweekday() % 7  # GHL numbers days from Sunday = 0
    return any(
        weekday in hours.days_of_week
        and time.fromisoformat(hours.open) <= local_start.time()
        and local_end.time() <= time.fromisoformat(hours.close)
        for hours in calendar.open_hours
    )


def _check_slot(sandbox: Sandbox, calendar: Calendar, start: datetime, end: datetime, skip_id: str) -> None:
    location = sandbox.state.locations[calendar.location_id]
    booked = sum(
        1
        for appt in sandbox.state.appointments.values()
        if appt.calendar_id == calendar.id
        and appt.id != skip_id
        and appt.status != "cancelled"
        and appt.overlaps(start, end)
    )
    if booked >= calendar.appointments_per_slot or not _within_open_hours(calendar, location, start, end):
        raise bad_request(SLOT_TAKEN)


def _checks_slots(sandbox: Sandbox, data: dict[str, Any]) -> bool:
    return sandbox.config.behaviour.validate_free_slots and data.get("ignoreFreeSlotValidation") is not True


def create_appointment(sandbox: Sandbox, data: dict[str, Any], source: str, check_slots: bool) -> Appointment:
    """Book an appointment as POST /calendars/events/appointments does, and queue AppointmentCreate."""
    state = sandbox.state
    location_id = _text(data, "locationId", required=True)
    calendar_id = _text(data, "calendarId", required=True)
    contact_id = _text(data, "contactId", required=True)
    start_raw = _text(data, "startTime", required=True)
    assert location_id and calendar_id and contact_id and start_raw
    location = state.locations.get(location_id)
    if location is None:
        raise bad_request("Location not found")
    calendar = _calendar_in(sandbox, calendar_id, location_id)
    contact = state.contacts.get(contact_id)
    if contact is None or contact.location_id != location_id:
        raise bad_request("Contact not found")
    status = _choice(data, "appointmentStatus", APPOINTMENT_STATUSES) or "confirmed"
    start = _moment(start_raw, "startTime", location)
    end_raw = _text(data, "endTime")
    end = (
        _moment(end_raw, "endTime", location) if end_raw else start + timedelta(minutes=calendar.slot_duration_minutes)
    )
    if end <= start:
        raise bad_request("endTime must be after startTime")
    assigned = _text(data, "assignedUserId") or next(iter(calendar.team_member_ids), "")
    if check_slots:
        _check_slot(sandbox, calendar, start, end, skip_id="")
    now = state.stamp()
    appt = Appointment(
        id=new_id(),
        location_id=location_id,
        calendar_id=calendar.id,
        contact_id=contact_id,
        title=_text(data, "title") or str(contact.fields.get("name") or "Appointment"),
        status=status,
        assigned_user_id=assigned,
        users=[],
        address=_text(data, "address") or "",
        notes=_text(data, "notes") or "",
        description=_text(data, "description") or "",
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        date_added=now,
        date_updated=now,
        source=source,
        meeting_location_type=_choice(data, "meetingLocationType", MEETING_LOCATION_TYPES),
    )
    state.appointments[appt.id] = appt
    sandbox.appointment_changed("AppointmentCreate", appt)
    return appt


def update_appointment(sandbox: Sandbox, appt: Appointment, data: dict[str, Any], check_slots: bool) -> None:
    """Apply an AppointmentEditSchema body; a real change gets a newer dateUpdated and AppointmentUpdate."""
    location = sandbox.state.locations[appt.location_id]
    calendar_id = _text(data, "calendarId")
    if calendar_id and calendar_id != appt.calendar_id:
        calendar = _calendar_in(sandbox, calendar_id, appt.location_id)
    else:
        calendar = sandbox.state.calendars[appt.calendar_id]
    start_raw, end_raw = _text(data, "startTime"), _text(data, "endTime")
    start = _moment(start_raw, "startTime", location).astimezone(UTC) if start_raw else appt.start
    duration = appt.end - appt.start
    end = _moment(end_raw, "endTime", location).astimezone(UTC) if end_raw else start + duration
    if end <= start:
        raise bad_request("endTime must be after startTime")
    changes: dict[str, Any] = {"calendar_id": calendar.id, "start": start, "end": end}
    for key, attr in (("title", "title"), ("assignedUserId", "assigned_user_id"), ("address", "address")):
        value = _text(data, key)
        if value is not None:
            changes[attr] = value
    for key, attr in (("description", "description"), ("notes", "notes")):
        if isinstance(data.get(key), str):
            changes[attr] = data[key]
    status = _choice(data, "appointmentStatus", APPOINTMENT_STATUSES)
    if status:
        changes["status"] = status
    meeting = _choice(data, "meetingLocationType", MEETING_LOCATION_TYPES)
    if meeting:
        changes["meeting_location_type"] = meeting
    moved = (calendar.id, start, end) != (appt.calendar_id, appt.start, appt.end)
    if check_slots and moved and changes.get("status", appt.status) != "cancelled":
        _check_slot(sandbox, calendar, start, end, skip_id=appt.id)
    if all(getattr(appt, attr) == value for attr, value in changes.items()):
        return
    for attr, value in changes.items():
        setattr(appt, attr, value)
    appt.date_updated = sandbox.state.stamp(appt.date_updated)
    sandbox.appointment_changed("AppointmentUpdate", appt)


def delete_appointment(sandbox: Sandbox, appt: Appointment) -> None:
    del sandbox.state.appointments[appt.id]
    sandbox.state.deleted_appointments[appt.id] = appt
    sandbox.appointment_changed("AppointmentDelete", appt)


def find_appointment(sandbox: Sandbox, event_id: str) -> Appointment:
    appt = sandbox.state.appointments.get(event_id)
    if appt is None:
        raise sandbox.not_found("Appointment not found")
    return appt


async def list_calendars(request: Request) -> Response:
    sandbox = sandbox_of(request)
    location_id = request.query_params.get("locationId")
    if not location_id:
        raise bad_request("locationId should not be empty")
    require_location(request, location_id)
    group_id = request.query_params.get("groupId")
    calendars = [
        calendar_dto(c)
        for c in sandbox.state.calendars.values()
        if c.location_id == location_id and (not group_id or c.group_id == group_id)
    ]
    return JSONResponse({"calendars": calendars})


async def get_calendar(request: Request) -> Response:
    sandbox = sandbox_of(request)
    calendar = sandbox.state.calendars.get(request.path_params["calendarId"])
    if calendar is None:
        raise sandbox.not_found("Calendar not found")
    require_location(request, calendar.location_id)
    return JSONResponse({"calendar": calendar_dto(calendar)})


def _epoch_millis(request: Request, key: str) -> datetime:
    raw = request.query_params.get(key, "")
    if not raw.isdigit():
        raise bad_request(f"{key} must be a number string of epoch milliseconds")
    return datetime.fromtimestamp(int(raw) / 1000, UTC)


async def list_events(request: Request) -> Response:
    sandbox = sandbox_of(request)
    params = request.query_params
    location_id = params.get("locationId")
    if not location_id:
        raise bad_request("locationId should not be empty")
    require_location(request, location_id)
    start, end = _epoch_millis(request, "startTime"), _epoch_millis(request, "endTime")
    calendar_id, user_id, group_id = params.get("calendarId"), params.get("userId"), params.get("groupId")
    if not (calendar_id or user_id or group_id):
        raise bad_request("Either calendarId, userId or groupId is required")
    calendars = sandbox.state.calendars

    def wanted(appt: Appointment) -> bool:
        calendar = calendars.get(appt.calendar_id)
        return (
            appt.location_id == location_id
            and appt.overlaps(start, end)
            and (not calendar_id or appt.calendar_id == calendar_id)
            and (not user_id or user_id == appt.assigned_user_id or user_id in appt.users)
            and (not group_id or (calendar is not None and calendar.group_id == group_id))
        )

    events = sorted(filter(wanted, sandbox.state.appointments.values()), key=lambda a: (a.start, a.id))
    return JSONResponse({"events": [calendar_event_dto(sandbox.state, e) for e in events]})


async def get_appointment(request: Request) -> Response:
    sandbox = sandbox_of(request)
    appt = find_appointment(sandbox, request.path_params["eventId"])
    require_location(request, appt.location_id)
    return JSONResponse({"event": calendar_event_dto(sandbox.state, appt)})


async def post_appointment(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await json_object(request)
    require_location(request, _text(data, "locationId", required=True) or "")
    appt = create_appointment(sandbox, data, source="third_party", check_slots=_checks_slots(sandbox, data))
    return JSONResponse(appointment_response(sandbox.state, appt))


async def put_appointment(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await json_object(request)  # before the lookup: no await may split a read from its write
    appt = find_appointment(sandbox, request.path_params["eventId"])
    require_location(request, appt.location_id)
    update_appointment(sandbox, appt, data, check_slots=_checks_slots(sandbox, data))
    return JSONResponse(appointment_response(sandbox.state, appt))


async def delete_event(request: Request) -> Response:
    sandbox = sandbox_of(request)
    await json_object(request)  # the spec makes the (empty) body required
    appt = find_appointment(sandbox, request.path_params["eventId"])
    require_location(request, appt.location_id)
    delete_appointment(sandbox, appt)
    return JSONResponse({"succeeded": True}, status_code=201)


_V = CALENDARS_VERSION
ENDPOINTS = [
    Endpoint("GET", "/calendars/", list_calendars, _V, "calendars.readonly"),
    Endpoint("GET", "/calendars/events", list_events, _V, "calendars/events.readonly"),
    Endpoint("POST", "/calendars/events/appointments", post_appointment, _V, "calendars/events.write"),
    Endpoint("GET", "/calendars/events/appointments/{eventId}", get_appointment, _V, "calendars/events.readonly"),
    Endpoint("PUT", "/calendars/events/appointments/{eventId}", put_appointment, _V, "calendars/events.write"),
    Endpoint("DELETE", "/calendars/events/{eventId}", delete_event, _V, "calendars/events.write"),
    Endpoint("GET", "/calendars/{calendarId}", get_calendar, _V, "calendars.readonly"),
]
