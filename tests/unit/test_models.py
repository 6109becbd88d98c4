"""Domain vocabulary: working hours, location rules and the stored appointment."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from sync_core.models import Appointment, LocationRules, ValidationMode, WorkingHours

from .conftest import LIMA, AppointmentFactory


def test_working_hours_setting_parses_with_or_without_spaces() -> None:
    assert WorkingHours.parse("08:00-20:00") == WorkingHours(start=time(8), end=time(20))
    assert WorkingHours.parse(" 7:30 - 19:00 ") == WorkingHours(start=time(7, 30), end=time(19))


@pytest.mark.parametrize("text", ["8-20", "20:00-08:00", "08:00-08:00", "25:00-26:00", "abc"])
def test_malformed_or_backwards_working_hours_are_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        WorkingHours.parse(text)


def test_working_hours_label_is_what_staff_see() -> None:
    assert WorkingHours.parse("08:00-20:00").label() == "08:00 - 20:00"


def test_location_rules_default_to_lima_business_hours_and_strict_mode() -> None:
    rules = LocationRules()
    assert (rules.timezone, rules.working_hours.label(), rules.min_duration_min) == (
        "America/Lima",
        "08:00 - 20:00",
        15,
    )
    assert rules.validation_mode == ValidationMode.strict


def test_location_rules_accept_settings_strings() -> None:
    rules = LocationRules.model_validate(
        {"timezone": "America/Bogota", "working_hours": "09:00-18:00", "validation_mode": "flexible"}
    )
    assert rules.working_hours.label() == "09:00 - 18:00"
    assert rules.validation_mode == ValidationMode.flexible


def test_location_rules_reject_an_unknown_timezone() -> None:
    with pytest.raises(ValidationError, match="Zona horaria desconocida"):
        LocationRules(timezone="Lima/Peru")


def test_appointment_times_are_stored_in_utc(make_appointment: AppointmentFactory) -> None:
    appointment = make_appointment(start=datetime(2025, 12, 22, 10, tzinfo=LIMA))
    assert appointment.start == datetime(2025, 12, 22, 15, tzinfo=UTC)
    assert appointment.start.utcoffset() is not None
    assert appointment.start.tzinfo == UTC


def test_appointment_rejects_naive_times(make_appointment: AppointmentFactory) -> None:
    with pytest.raises(ValidationError):
        make_appointment(start=datetime(2025, 12, 22, 10))


def test_appointment_reads_iso_strings_with_offset() -> None:
    appointment = Appointment.model_validate(
        {
            "id": "a1",
            "location_id": "loc1",
            "calendar_id": "cal1",
            "title": "x",
            "start": "2025-12-22T10:00:00-05:00",
            "end": "2025-12-22T11:00:00-05:00",
        }
    )
    assert appointment.start == datetime(2025, 12, 22, 15, tzinfo=UTC)
