"""A GHL appointment as webhooks and the calendars API report it, read into UTC and typed fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo

from pydantic import BaseModel, ConfigDict, Field

from sync_core.models import UtcDatetime
from sync_core.status import StatusMapping, from_ghl
from sync_core.times import parse_ghl_time

_TEXT_FIELDS = {
    "location_id": "locationId",
    "calendar_id": "calendarId",
    "contact_id": "contactId",
    "title": "title",
    "appointment_status": "appointmentStatus",
    "assigned_user_id": "assignedUserId",
    "notes": "notes",
    "description": "description",
    "address": "address",
    "source": "source",
}
_TIME_FIELDS = {
    "start": "startTime",
    "end": "endTime",
    "date_added": "dateAdded",
    "date_updated": "dateUpdated",
}


class GhlAppointment(BaseModel):
    """GHL's view of one appointment. Only `id` is guaranteed; empty strings are read as absent."""

    model_config = ConfigDict(frozen=True)

    id: str
    location_id: str | None = None
    calendar_id: str | None = None
    contact_id: str | None = None
    title: str | None = None
    appointment_status: str | None = None
    assigned_user_id: str | None = None
    users: list[str] = Field(default_factory=list)
    notes: str | None = None
    description: str | None = None
    address: str | None = None
    source: str | None = None
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    date_added: UtcDatetime | None = None
    date_updated: UtcDatetime | None = None

    @property
    def status(self) -> StatusMapping:
        return from_ghl(self.appointment_status)


class GhlShapeError(ValueError):
    """A GHL appointment object that cannot be read; `reason` names the offending field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_ghl_appointment(obj: Mapping[str, object], *, tz: str | tzinfo) -> GhlAppointment:
    """Read a webhook `appointment`/`data` object or a `CalendarEventDTO`; naive times are read in `tz`."""
    raw_id = obj.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise GhlShapeError("missing_appointment_id")
    values: dict[str, object] = {"id": raw_id.strip()}
    for name, key in _TEXT_FIELDS.items():
        values[name] = _text(obj, key)
    values["users"] = _users(obj)
    for name, key in _TIME_FIELDS.items():
        values[name] = _time(obj, key, tz)
    return GhlAppointment.model_validate(values)


def _text(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GhlShapeError(f"invalid_field:{key}")
    return value.strip() or None


def _users(obj: Mapping[str, object]) -> list[str]:
    value = obj.get("users")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(user, str) for user in value):
        raise GhlShapeError("invalid_field:users")
    return [user for user in value if isinstance(user, str)]


def _time(obj: Mapping[str, object], key: str, tz: str | tzinfo) -> datetime | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise GhlShapeError(f"invalid_time:{key}")
    try:
        return parse_ghl_time(value, tz)
    except ValueError:
        raise GhlShapeError(f"invalid_time:{key}") from None
