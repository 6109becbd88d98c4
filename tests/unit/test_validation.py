"""Appointment validation: every rule, its Spanish message, and strict vs flexible mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from sync_core.models import AppointmentStatus, LocationRules, ValidationMode
from sync_core.validation import AppointmentDraft, CalendarInfo, Draft, ValidationResult, validate_appointment

from .conftest import LIMA, AppointmentFactory

CALENDAR = CalendarInfo(id="cal1", location_id="loc1", name="Terapias")
RULES = LocationRules()


def draft(start_hm: tuple[int, int], end_hm: tuple[int, int], **overrides: Any) -> AppointmentDraft:
    """A draft on Mon 22 Dec 2025 from `start_hm` to `end_hm` (Lima wall times)."""
    values: dict[str, Any] = {
        "location_id": "loc1",
        "calendar_id": "cal1",
        "title": "Nueva cita",
        "start": datetime(2025, 12, 22, *start_hm, tzinfo=LIMA),
        "end": datetime(2025, 12, 22, *end_hm, tzinfo=LIMA),
    }
    values.update(overrides)
    return AppointmentDraft(**values)


def check(candidate: Draft, others: Any = (), **overrides: Any) -> ValidationResult:
    kwargs: dict[str, Any] = {"rules": RULES, "calendar": CALENDAR, "others": others}
    kwargs.update(overrides)
    return validate_appointment(candidate, **kwargs)


def codes(issues: Any) -> list[str]:
    return [issue.code for issue in issues]


def test_a_valid_appointment_passes_with_nothing_to_report() -> None:
    result = check(draft((10, 0), (11, 0)))
    assert result.ok
    assert result.errors == [] and result.warnings == []


def test_end_before_start_is_rejected_with_the_spanish_message() -> None:
    result = check(draft((11, 0), (10, 0)))
    assert codes(result.errors) == ["invalid_time_range"]
    assert result.errors[0].message == "La hora de fin debe ser posterior a la hora de inicio"
    assert result.errors[0].field == "end_time"


def test_end_equal_to_start_is_rejected() -> None:
    assert codes(check(draft((10, 0), (10, 0))).errors) == ["invalid_time_range"]


def test_appointment_shorter_than_the_minimum_is_rejected() -> None:
    result = check(draft((10, 0), (10, 10)))
    assert codes(result.errors) == ["min_duration"]
    assert result.errors[0].message == "La duración mínima es 15 minutos"


def test_exactly_the_minimum_duration_is_accepted() -> None:
    assert check(draft((10, 0), (10, 15))).ok


def test_minimum_duration_message_uses_the_configured_number() -> None:
    result = check(draft((10, 0), (10, 20)), rules=LocationRules(min_duration_min=30))
    assert result.errors[0].message == "La duración mínima es 30 minutos"


def test_start_before_opening_is_outside_working_hours() -> None:
    result = check(draft((7, 30), (8, 30)))
    assert codes(result.errors) == ["outside_working_hours"]
    assert result.errors[0].message == "Horario fuera del horario de trabajo (08:00 - 20:00)"


def test_end_after_closing_is_outside_working_hours() -> None:
    assert codes(check(draft((19, 30), (20, 30))).errors) == ["outside_working_hours"]


def test_appointment_filling_the_whole_working_day_is_inside() -> None:
    assert check(draft((8, 0), (20, 0))).ok


def test_working_hours_are_judged_in_the_location_timezone_not_utc() -> None:
    # 19:00-20:00 Lima is 00:00-01:00 UTC the next day: still inside Lima's hours.
    assert check(draft((19, 0), (20, 0))).ok


def test_working_hours_message_shows_the_configured_hours() -> None:
    rules = LocationRules(working_hours="09:00-18:00")
    result = check(draft((18, 0), (19, 0)), rules=rules)
    assert result.errors[0].message == "Horario fuera del horario de trabajo (09:00 - 18:00)"


def test_overlap_lists_the_other_appointment_in_local_time(make_appointment: AppointmentFactory) -> None:
    other = make_appointment(
        id="b",
        title="Cita Existente",
        start=datetime(2025, 12, 22, 14, tzinfo=LIMA),
        end=datetime(2025, 12, 22, 15, tzinfo=LIMA),
    )
    result = check(draft((14, 30), (15, 30)), others=[other])
    assert codes(result.errors) == ["schedule_conflict"]
    assert result.errors[0].message == "Conflicto de horario con: Cita Existente (14:00 - 15:00)"
    assert result.errors[0].details[0]["id"] == "b"


def test_overlap_lists_each_conflicting_appointment_in_start_order(
    make_appointment: AppointmentFactory,
) -> None:
    later = make_appointment(
        id="b",
        title="B",
        start=datetime(2025, 12, 22, 11, tzinfo=LIMA),
        end=datetime(2025, 12, 22, 12, tzinfo=LIMA),
    )
    earlier = make_appointment(
        id="c",
        title="C",
        start=datetime(2025, 12, 22, 9, 30, tzinfo=LIMA),
        end=datetime(2025, 12, 22, 10, 30, tzinfo=LIMA),
    )
    result = check(draft((10, 0), (11, 30)), others=[later, earlier])
    assert result.errors[0].message == "Conflicto de horario con: C (09:30 - 10:30), B (11:00 - 12:00)"


def test_back_to_back_appointments_do_not_overlap(make_appointment: AppointmentFactory) -> None:
    before = make_appointment(
        id="b", start=datetime(2025, 12, 22, 9, tzinfo=LIMA), end=datetime(2025, 12, 22, 10, tzinfo=LIMA)
    )
    after = make_appointment(
        id="c", start=datetime(2025, 12, 22, 11, tzinfo=LIMA), end=datetime(2025, 12, 22, 12, tzinfo=LIMA)
    )
    assert check(draft((10, 0), (11, 0)), others=[before, after]).ok


def test_cancelled_appointments_do_not_block_the_slot(make_appointment: AppointmentFactory) -> None:
    cancelled = make_appointment(id="b", status=AppointmentStatus.cancelled)
    assert check(draft((10, 0), (11, 0)), others=[cancelled]).ok


def test_attended_and_no_show_appointments_still_hold_their_slot(
    make_appointment: AppointmentFactory,
) -> None:
    attended = make_appointment(id="b", status=AppointmentStatus.attended)
    no_show = make_appointment(id="c", status=AppointmentStatus.no_show)
    assert codes(check(draft((10, 30), (11, 30)), others=[attended]).errors) == ["schedule_conflict"]
    assert codes(check(draft((10, 30), (11, 30)), others=[no_show]).errors) == ["schedule_conflict"]


def test_appointments_of_another_calendar_do_not_conflict(make_appointment: AppointmentFactory) -> None:
    elsewhere = make_appointment(id="b", calendar_id="cal2")
    assert check(draft((10, 0), (11, 0)), others=[elsewhere]).ok


def test_an_edited_appointment_is_not_compared_with_itself(make_appointment: AppointmentFactory) -> None:
    stored = make_appointment(id="a1")
    moved = stored.model_copy(update={"end": datetime(2025, 12, 22, 11, 30, tzinfo=LIMA)})
    assert check(moved, others=[stored]).ok


def test_cancelling_an_appointment_is_never_blocked_by_a_conflict(
    make_appointment: AppointmentFactory,
) -> None:
    other = make_appointment(id="b")
    assert check(draft((10, 0), (11, 0), status=AppointmentStatus.cancelled), others=[other]).ok


def test_missing_calendar_is_rejected_naming_it() -> None:
    result = check(draft((10, 0), (11, 0), calendar_id="cal_123"), calendar=None)
    assert codes(result.errors) == ["calendar_unavailable"]
    assert result.errors[0].message == "El calendario cal_123 no existe o no está disponible"


def test_inactive_calendar_is_rejected() -> None:
    inactive = CALENDAR.model_copy(update={"is_active": False})
    assert codes(check(draft((10, 0), (11, 0)), calendar=inactive).errors) == ["calendar_unavailable"]


def test_calendar_of_another_location_is_rejected() -> None:
    foreign = CALENDAR.model_copy(update={"location_id": "loc2"})
    assert codes(check(draft((10, 0), (11, 0)), calendar=foreign).errors) == ["calendar_unavailable"]


def test_flexible_mode_turns_overlap_and_hours_into_warnings(make_appointment: AppointmentFactory) -> None:
    other = make_appointment(
        id="b", start=datetime(2025, 12, 22, 19, tzinfo=LIMA), end=datetime(2025, 12, 22, 20, tzinfo=LIMA)
    )
    result = check(draft((19, 30), (20, 30)), others=[other], mode=ValidationMode.flexible)
    assert result.ok
    assert sorted(codes(result.warnings)) == ["outside_working_hours", "schedule_conflict"]


def test_flexible_mode_still_rejects_bad_ranges_short_appointments_and_missing_calendars() -> None:
    flexible = {"mode": ValidationMode.flexible}
    assert codes(check(draft((11, 0), (10, 0)), **flexible).errors) == ["invalid_time_range"]
    assert codes(check(draft((10, 0), (10, 5)), **flexible).errors) == ["min_duration"]
    assert codes(check(draft((10, 0), (11, 0)), calendar=None, **flexible).errors) == ["calendar_unavailable"]


def test_the_location_mode_applies_when_the_request_does_not_choose() -> None:
    rules = LocationRules(validation_mode=ValidationMode.flexible)
    result = check(draft((7, 0), (8, 0)), rules=rules)
    assert result.ok and codes(result.warnings) == ["outside_working_hours"]


def test_a_request_can_ask_for_strict_mode_in_a_flexible_location() -> None:
    rules = LocationRules(validation_mode=ValidationMode.flexible)
    result = check(draft((7, 0), (8, 0)), rules=rules, mode=ValidationMode.strict)
    assert codes(result.errors) == ["outside_working_hours"]


def test_every_problem_is_reported_at_once(make_appointment: AppointmentFactory) -> None:
    other = make_appointment(
        id="b", start=datetime(2025, 12, 22, 7, tzinfo=LIMA), end=datetime(2025, 12, 22, 8, tzinfo=LIMA)
    )
    result = check(draft((7, 30), (8, 30)), others=[other], calendar=None)
    assert sorted(codes(result.errors)) == [
        "calendar_unavailable",
        "outside_working_hours",
        "schedule_conflict",
    ]


def test_an_appointment_across_midnight_is_outside_working_hours() -> None:
    rules = LocationRules(working_hours="00:00-23:59")
    overnight = draft((23, 0), (23, 30), end=datetime(2025, 12, 23, 0, 30, tzinfo=LIMA))
    assert codes(check(overnight, rules=rules).errors) == ["outside_working_hours"]


@pytest.mark.parametrize("mode", list(ValidationMode))
def test_issues_serialise_to_the_api_error_shape(mode: ValidationMode) -> None:
    result = check(draft((11, 0), (10, 0)), mode=mode)
    assert result.errors[0].model_dump() == {
        "code": "invalid_time_range",
        "message": "La hora de fin debe ser posterior a la hora de inicio",
        "field": "end_time",
        "details": [],
    }
