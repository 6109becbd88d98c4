"""Domain vocabulary: appointment statuses, sync states, policies, location rules, the stored appointment."""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sync_core.times import DEFAULT_TIMEZONE, as_utc, zone

UtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]
"""An aware datetime normalised to UTC; naive values are rejected at the boundary."""


class AppointmentStatus(StrEnum):
    """An appointment's status in RV3's vocabulary (the stored one)."""

    scheduled = "scheduled"
    confirmed = "confirmed"
    cancelled = "cancelled"
    attended = "attended"
    no_show = "no_show"


class SyncState(StrEnum):
    """Where the appointment's sync stands, as staff see it."""

    pending = "pending"  # GHL is not known to hold the local state yet: it is on its way
    synced = "synced"  # GHL holds the local state (or deleted the event)
    error = "error"  # GHL refused the local state: `last_error` says why; sent again once it changes
    local_only = "local_only"  # cancelled before it ever reached GHL: nothing to send


class ValidationMode(StrEnum):
    """`strict` rejects overlaps and out-of-hours bookings; `flexible` only warns about them."""

    strict = "strict"
    flexible = "flexible"


class ConflictPolicy(StrEnum):
    """Who wins when both sides changed the same appointment since the last sync."""

    latest_wins = "latest_wins"
    rv3_wins = "rv3_wins"
    ghl_wins = "ghl_wins"


class Source(StrEnum):
    rv3 = "rv3"
    ghl = "ghl"


_HOURS_PATTERN = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


class WorkingHours(BaseModel):
    """The clinic's daily opening window in local time; also accepts the "08:00-20:00" setting form."""

    model_config = ConfigDict(frozen=True)

    start: time = time(8, 0)
    end: time = time(20, 0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _HOURS_PATTERN.match(value)
            if match is None:
                raise ValueError('working hours must look like "08:00-20:00"')
            return {"start": _hhmm(match.group(1)), "end": _hhmm(match.group(2))}
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("working hours must end after they start (overnight windows are not supported)")
        return self

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """Parse "08:00-20:00" (spaces around the dash allowed); raises `pydantic.ValidationError`."""
        return cls.model_validate(text)

    def label(self) -> str:
        """The window as shown to staff: "08:00 - 20:00"."""
        return f"{self.start:%H:%M} - {self.end:%H:%M}"


def _hhmm(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(hours, minutes)


class LocationRules(BaseModel):
    """The per-location settings the validation rules need."""

    model_config = ConfigDict(frozen=True)

    timezone: str = DEFAULT_TIMEZONE
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    min_duration_min: int = Field(default=15, ge=1)
    validation_mode: ValidationMode = ValidationMode.strict

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        zone(value)
        return value


class Appointment(BaseModel):
    """An appointment as the sync stores it: times in UTC, status in RV3's vocabulary, sync bookkeeping."""

    id: str
    location_id: str
    calendar_id: str
    contact_id: str | None = None
    title: str
    notes: str | None = None
    assigned_user_id: str | None = None
    start: UtcDatetime
    end: UtcDatetime
    status: AppointmentStatus = AppointmentStatus.scheduled
    ghl_event_id: str | None = None
    version: int = Field(default=1, ge=1)
    sync_state: SyncState = SyncState.pending
    last_error: str | None = None
    source: Source = Source.rv3
    flags: list[str] = Field(default_factory=list)
