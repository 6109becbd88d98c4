"""Canonical JSON, payload hashes and the sync hash that recognises our own writes coming back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.ghl_payloads import create_body
from sync_core.hashing import (
    canonical_json,
    payload_hash,
    sync_hash,
    synced_fields_from_appointment,
    synced_fields_from_ghl,
)
from sync_core.models import AppointmentStatus

from .conftest import AppointmentFactory

keys = st.text(alphabet="abcñ é", max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="xyzñ \n", max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


@given(value=st.dictionaries(keys, json_values, max_size=5))
def test_payload_hash_ignores_key_order(value: dict[str, Any]) -> None:
    assert payload_hash(value) == payload_hash(_reversed_keys(value))


@given(value=st.dictionaries(keys, json_values, max_size=5), indent=st.sampled_from([None, 1, 4]))
def test_payload_hash_ignores_whitespace_of_the_json_text(value: dict[str, Any], indent: int | None) -> None:
    assert payload_hash(json.loads(json.dumps(value, indent=indent))) == payload_hash(value)


def test_payload_hash_changes_with_content() -> None:
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": "ñ", "a": [1, 2]}) == '{"a":[1,2],"b":"ñ"}'.encode()


def test_canonical_json_writes_datetimes_as_utc_and_enums_as_values() -> None:
    value = {"at": datetime(2025, 12, 22, 15, tzinfo=UTC), "status": AppointmentStatus.no_show}
    assert canonical_json(value) == b'{"at":"2025-12-22T15:00:00+00:00","status":"no_show"}'


def test_canonical_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def _ghl_echo(sent: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """What a GHL webhook reports after we sent `sent`: its own time format and extra fields."""
    echo = {
        "id": "ev1",
        "calendarId": sent["calendarId"],
        "contactId": sent["contactId"],
        "locationId": sent["locationId"],
        "title": sent.get("title"),
        "appointmentStatus": sent["appointmentStatus"],
        "assignedUserId": sent.get("assignedUserId", ""),
        "startTime": sent["startTime"],
        "endTime": sent["endTime"],
        "notes": "",
        "source": "third_party",
        "dateAdded": "2025-12-20T12:00:00.000Z",
        "dateUpdated": "2025-12-20T12:00:00.000Z",
    }
    echo.update(changes)
    return echo


@pytest.mark.parametrize("status", list(AppointmentStatus))
def test_our_write_echoed_by_ghl_has_the_same_sync_hash(
    make_appointment: AppointmentFactory, status: AppointmentStatus
) -> None:
    appointment = make_appointment(status=status, assigned_user_id="u1", notes="solo local")
    sent = create_body(appointment, timezone="America/Lima")
    echoed = parse_ghl_appointment(_ghl_echo(sent), tz="America/Lima")
    assert sync_hash(synced_fields_from_ghl(echoed)) == sync_hash(synced_fields_from_appointment(appointment))


def test_echo_in_utc_z_form_still_matches(make_appointment: AppointmentFactory) -> None:
    appointment = make_appointment()
    sent = create_body(appointment, timezone="America/Lima")
    echoed = parse_ghl_appointment(
        _ghl_echo(sent, startTime="2025-12-22T15:00:00.000Z", endTime="2025-12-22T16:00:00Z"),
        tz="America/Lima",
    )
    assert sync_hash(synced_fields_from_ghl(echoed)) == sync_hash(synced_fields_from_appointment(appointment))


def test_sub_second_precision_does_not_break_echo_matching(make_appointment: AppointmentFactory) -> None:
    appointment = make_appointment(start=datetime(2025, 12, 22, 15, 0, 0, 250_000, tzinfo=UTC))
    echoed = parse_ghl_appointment(_ghl_echo(create_body(appointment, timezone="America/Lima")), tz="America/Lima")
    assert sync_hash(synced_fields_from_ghl(echoed)) == sync_hash(synced_fields_from_appointment(appointment))


@pytest.mark.parametrize(
    "change",
    [
        {"startTime": "2025-12-22T10:30:00-05:00"},
        {"endTime": "2025-12-22T11:30:00-05:00"},
        {"appointmentStatus": "cancelled"},
        {"title": "Otra cita"},
        {"calendarId": "cal2"},
        {"contactId": "con2"},
        {"assignedUserId": "u2"},
        {"appointmentStatus": "weird"},
    ],
)
def test_a_real_change_in_ghl_changes_the_sync_hash(
    make_appointment: AppointmentFactory, change: dict[str, str]
) -> None:
    appointment = make_appointment()
    echoed = parse_ghl_appointment(
        _ghl_echo(create_body(appointment, timezone="America/Lima"), **change), tz="America/Lima"
    )
    assert sync_hash(synced_fields_from_ghl(echoed)) != sync_hash(synced_fields_from_appointment(appointment))


def test_changes_outside_the_shared_fields_do_not_change_the_sync_hash(
    make_appointment: AppointmentFactory,
) -> None:
    appointment = make_appointment()
    echoed = parse_ghl_appointment(
        _ghl_echo(create_body(appointment, timezone="America/Lima"), notes="nota GHL", address="Zoom"),
        tz="America/Lima",
    )
    assert sync_hash(synced_fields_from_ghl(echoed)) == sync_hash(synced_fields_from_appointment(appointment))


def test_ghl_event_without_times_cannot_be_hashed() -> None:
    with pytest.raises(ValueError):
        synced_fields_from_ghl(parse_ghl_appointment({"id": "ev1"}, tz="America/Lima"))
