"""Appointment validation: time range, duration, working hours, overlaps, calendar; Spanish messages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from sync_core.errors import Issue
from sync_core.models import AppointmentStatus, LocationRules, UtcDatetime, ValidationMode
from sync_core.times import format_local_hhmm, zone


class Slot(Protocol):
    """What the overlap rule needs to know about a booked appointment (an `Appointment` is one)."""

    @property
    def id(self) -> str | None: ...
    @property
    def calendar_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def status(self) -> AppointmentStatus: ...


class Draft(Slot, Protocol):
    """The appointment being created or edited (an `Appointment` or an `AppointmentDraft`)."""

    @property
    def location_id(self) -> str: ...


class AppointmentDraft(BaseModel):
    """A proposed appointment before it is stored; `id` is set when an existing one is being edited."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    location_id: str
    calendar_id: str
    title: str
    start: UtcDatetime
    end: UtcDatetime
    status: AppointmentStatus = AppointmentStatus.scheduled


class CalendarInfo(BaseModel):
    """A GHL calendar as cached for a location (the `/api/ghl/calendars` item)."""

    model_config = ConfigDict(frozen=True)

    id: str
    location_id: str
    name: str = ""
    description: str | None = None
    timezone: str | None = None
    is_active: bool = True


class ValidationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_appointment(
    draft: Draft,
    *,
    rules: LocationRules,
    calendar: CalendarInfo | None,
    others: Iterable[Slot],
    mode: ValidationMode | None = None,
) -> ValidationResult:
    """Check a draft against the location's rules.

    `calendar` is the draft's calendar as found in the location (None when it was not found);
    `others` are the location's appointments near the draft, any status. `mode` overrides the
    location's mode for one request. In flexible mode overlaps and out-of-hours become warnings.
    """
    effective_mode = mode or rules.validation_mode
    errors: list[Issue] = []
    soft: list[Issue] = []

    calendar_issue = _check_calendar(draft, calendar)
    if calendar_issue is not None:
        errors.append(calendar_issue)

    range_issue = _check_time_range(draft, rules)
    if range_issue is not None:
        errors.append(range_issue)
    else:
        hours_issue = _check_working_hours(draft, rules)
        if hours_issue is not None:
            soft.append(hours_issue)
        conflict_issue = _check_overlaps(draft, others, rules)
        if conflict_issue is not None:
            soft.append(conflict_issue)

    if effective_mode == ValidationMode.strict:
        return ValidationResult(errors=errors + soft)
    return ValidationResult(errors=errors, warnings=soft)


def _check_calendar(draft: Draft, calendar: CalendarInfo | None) -> Issue | None:
    if (
        calendar is not None
        and calendar.is_active
        and calendar.id == draft.calendar_id
        and calendar.location_id == draft.location_id
    ):
        return None
    return Issue(
        code="calendar_unavailable",
        message=f"El calendario {draft.calendar_id} no existe o no está disponible",
        field="ghl_calendar_id",
        details=[{"calendar_id": draft.calendar_id}],
    )


def _check_time_range(draft: Draft, rules: LocationRules) -> Issue | None:
    if draft.end <= draft.start:
        return Issue(
            code="invalid_time_range",
            message="La hora de fin debe ser posterior a la hora de inicio",
            field="end_time",
        )
    if draft.end - draft.start < timedelta(minutes=rules.min_duration_min):
        return Issue(
            code="min_duration",
            message=f"La duración mínima es {rules.min_duration_min} minutos",
            field="end_time",
            details=[{"min_duration_min": str(rules.min_duration_min)}],
        )
    return None


def _check_working_hours(draft: Draft, rules: LocationRules) -> Issue | None:
    tz = zone(rules.timezone)
    local_start = draft.start.astimezone(tz)
    local_end = draft.end.astimezone(tz)
    hours = rules.working_hours
    inside = (
        local_start.date() == local_end.date() and local_start.time() >= hours.start and local_end.time() <= hours.end
    )
    if inside:
        return None
    return Issue(
        code="outside_working_hours",
        message=f"Horario fuera del horario de trabajo ({hours.label()})",
        field="start_time",
        details=[{"start": f"{hours.start:%H:%M}", "end": f"{hours.end:%H:%M}"}],
    )


def _check_overlaps(draft: Draft, others: Iterable[Slot], rules: LocationRules) -> Issue | None:
    if draft.status == AppointmentStatus.cancelled:
        return None
    clashes = sorted(
        (
            other
            for other in others
            if other.calendar_id == draft.calendar_id
            and other.status != AppointmentStatus.cancelled
            and (draft.id is None or other.id != draft.id)
            and other.start < draft.end
            and draft.start < other.end
        ),
        key=lambda other: (other.start, other.end),
    )
    if not clashes:
        return None
    labels = [
        f"{other.title} ({format_local_hhmm(other.start, rules.timezone)} - "
        f"{format_local_hhmm(other.end, rules.timezone)})"
        for other in clashes
    ]
    return Issue(
        code="schedule_conflict",
        message="Conflicto de horario con: " + ", ".join(labels),
        field="start_time",
        details=[
            {
                "id": other.id or "",
                "title": other.title,
                "start": other.start.isoformat(),
                "end": other.end.isoformat(),
            }
            for other in clashes
        ],
    )
