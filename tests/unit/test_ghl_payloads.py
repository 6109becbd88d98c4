"""GHL appointment request bodies and reading GHL's appointment objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync_core.ghl_appointments import GhlShapeError, parse_ghl_appointment
from sync_core.ghl_payloads import cancel_body, create_body, update_body
from sync_core.models import AppointmentStatus

from .conftest import AppointmentFactory

# Property names of AppointmentCreateSchema / AppointmentEditSchema in GHL's calendars OpenAPI (2021-04-15).
EDIT_SCHEMA = {
    "title", "meetingLocationType", "meetingLocationId", "overrideLocationConfig", "appointmentStatus",
    "assignedUserId", "description", "address", "ignoreDateRange", "toNotify", "ignoreFreeSlotValidation",
    "rrule", "calendarId", "startTime", "endTime",
}  # fmt: skip
CREATE_SCHEMA = EDIT_SCHEMA | {"locationId", "contactId"}
CREATE_REQUIRED = {"calendarId", "locationId", "contactId", "startTime"}
REQUEST_STATUSES = {"new", "confirmed", "cancelled", "showed", "noshow", "invalid"}


def test_create_body_has_local_offset_times_and_skips_ghl_slot_validation(
    make_appointment: AppointmentFactory,
) -> None:
    body = create_body(make_appointment(assigned_user_id="u1", notes="Traer exámenes"), timezone="America/Lima")
    assert body == {
        "calendarId": "cal1",
        "locationId": "loc1",
        "contactId": "con1",
        "startTime": "2025-12-22T10:00:00-05:00",
        "endTime": "2025-12-22T11:00:00-05:00",
        "title": "Terapia - Ana",
        "appointmentStatus": "new",
        "assignedUserId": "u1",
        "description": "Traer exámenes",
        "toNotify": True,
        "ignoreFreeSlotValidation": True,
    }


@pytest.mark.parametrize("status", list(AppointmentStatus))
def test_create_body_only_uses_schema_fields_and_valid_statuses(
    make_appointment: AppointmentFactory, status: AppointmentStatus
) -> None:
    body = create_body(make_appointment(status=status), timezone="America/Lima")
    assert set(body) <= CREATE_SCHEMA
    assert set(body) >= CREATE_REQUIRED
    assert body["appointmentStatus"] in REQUEST_STATUSES


def test_create_body_leaves_out_absent_optional_values(make_appointment: AppointmentFactory) -> None:
    body = create_body(make_appointment(title=" ", notes=None, assigned_user_id=None), timezone="America/Lima")
    assert not {"title", "description", "assignedUserId"} & set(body)


def test_create_needs_the_contact_first(make_appointment: AppointmentFactory) -> None:
    with pytest.raises(ValueError, match="contact"):
        create_body(make_appointment(contact_id=None), timezone="America/Lima")


def test_automations_can_be_silenced(make_appointment: AppointmentFactory) -> None:
    assert create_body(make_appointment(), timezone="America/Lima", to_notify=False)["toNotify"] is False


def test_update_body_has_neither_location_nor_contact(make_appointment: AppointmentFactory) -> None:
    body = update_body(make_appointment(status=AppointmentStatus.attended), timezone="America/Lima")
    assert set(body) <= EDIT_SCHEMA
    assert "locationId" not in body and "contactId" not in body
    assert body["appointmentStatus"] == "showed"
    assert body["startTime"] == "2025-12-22T10:00:00-05:00"
    assert body["ignoreFreeSlotValidation"] is True


def test_cancel_is_a_status_change_not_a_delete() -> None:
    assert cancel_body() == {"appointmentStatus": "cancelled", "toNotify": True}
    assert set(cancel_body()) <= EDIT_SCHEMA


def test_ghl_appointment_object_reads_into_utc_and_typed_fields() -> None:
    event = parse_ghl_appointment(
        {
            "id": "ev1",
            "calendarId": "cal1",
            "contactId": "con1",
            "locationId": "loc1",
            "title": "Cita",
            "appointmentStatus": "showed",
            "assignedUserId": "",
            "users": ["u1"],
            "startTime": "2025-12-22T10:00:00-05:00",
            "endTime": "2025-12-22T15:30:00.000Z",
            "dateUpdated": "2025-12-20T12:00:00+00:00",
        },
        tz="America/Lima",
    )
    assert event.start == datetime(2025, 12, 22, 15, tzinfo=UTC)
    assert event.end == datetime(2025, 12, 22, 15, 30, tzinfo=UTC)
    assert event.assigned_user_id is None
    assert event.status.status == AppointmentStatus.attended
    assert event.users == ["u1"]


def test_contact_appointments_space_form_is_read_in_the_location_timezone() -> None:
    event = parse_ghl_appointment({"id": "ev1", "startTime": "2021-07-16 11:00:00"}, tz="America/Lima")
    assert event.start == datetime(2021, 7, 16, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({}, "missing_appointment_id"),
        ({"id": " "}, "missing_appointment_id"),
        ({"id": "ev1", "calendarId": 7}, "invalid_field:calendarId"),
        ({"id": "ev1", "users": "u1"}, "invalid_field:users"),
        ({"id": "ev1", "startTime": "tomorrow"}, "invalid_time:startTime"),
        ({"id": "ev1", "endTime": True}, "invalid_time:endTime"),
    ],
)
def test_malformed_ghl_appointment_names_the_bad_field(obj: dict[str, object], reason: str) -> None:
    with pytest.raises(GhlShapeError) as caught:
        parse_ghl_appointment(obj, tz="America/Lima")
    assert caught.value.reason == reason
