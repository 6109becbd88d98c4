"""Reading GHL webhook deliveries: both appointment shapes, contacts, other types, replay window, dedupe."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.models import AppointmentStatus
from sync_core.webhooks import (
    WEBHOOK_EVENT_ADAPTER,
    GhlAppointmentEvent,
    GhlContactEvent,
    IgnoredEvent,
    WebhookParseError,
    dedupe_key,
    is_stale_timestamp,
    parse_webhook,
)

APPOINTMENT = {
    "id": "ev1",
    "address": "https://example.com/meeting",
    "title": "Terapia",
    "calendarId": "cal1",
    "contactId": "con1",
    "groupId": "g1",
    "appointmentStatus": "confirmed",
    "assignedUserId": "u1",
    "users": ["u1"],
    "notes": "Some dummy note",
    "source": "booking_widget",
    "startTime": "2025-12-22T10:00:00-05:00",
    "endTime": "2025-12-22T11:00:00-05:00",
    "dateAdded": "2025-12-20T12:00:00-05:00",
    "dateUpdated": "2025-12-20T12:00:00-05:00",
}


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def official(event_type: str = "AppointmentCreate", **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "locationId": "loc1",
        "webhookId": "wh1",
        "timestamp": "2025-12-20T17:00:00Z",
        "appointment": dict(APPOINTMENT),
        **extra,
    }


def test_official_appointment_webhook_is_read() -> None:
    event = parse_webhook(raw(official()))
    assert isinstance(event, GhlAppointmentEvent)
    assert (event.action, event.location_id, event.webhook_id) == ("create", "loc1", "wh1")
    assert event.timestamp == datetime(2025, 12, 20, 17, tzinfo=UTC)
    assert event.appointment.id == "ev1"
    assert event.appointment.start == datetime(2025, 12, 22, 15, tzinfo=UTC)
    assert event.appointment.status.status == AppointmentStatus.confirmed


def test_rv3_older_data_shape_is_read_too() -> None:
    older = {
        "type": "AppointmentUpdate",
        "locationId": "CRlTCqv7ASS9xOpPQ59O",
        "webhookId": "webhook_unique_id",
        "data": {
            "id": "ghl_appointment_123",
            "calendarId": "cal_456",
            "contactId": "contact_789",
            "title": "Cita desde GHL",
            "startTime": "2025-12-25T19:00:00.000Z",
            "endTime": "2025-12-25T20:00:00.000Z",
            "appointmentStatus": "scheduled",
        },
    }
    event = parse_webhook(raw(older))
    assert isinstance(event, GhlAppointmentEvent)
    assert event.action == "update"
    assert event.appointment.id == "ghl_appointment_123"
    assert event.appointment.start == datetime(2025, 12, 25, 19, tzinfo=UTC)
    assert event.appointment.status.status == AppointmentStatus.scheduled
    assert event.timestamp is None


@pytest.mark.parametrize(
    ("event_type", "action"),
    [("AppointmentCreate", "create"), ("AppointmentUpdate", "update"), ("AppointmentDelete", "delete")],
)
def test_each_appointment_event_type_gives_its_action(event_type: str, action: str) -> None:
    event = parse_webhook(raw(official(event_type)))
    assert isinstance(event, GhlAppointmentEvent) and event.action == action


def test_delete_only_needs_the_appointment_id() -> None:
    event = parse_webhook(raw(official("AppointmentDelete", appointment={"id": "ev1"})))
    assert isinstance(event, GhlAppointmentEvent) and event.appointment.start is None


@pytest.mark.parametrize("missing", ["calendarId", "startTime", "endTime"])
def test_create_or_update_without_what_the_mirror_needs_is_malformed(missing: str) -> None:
    appointment = {key: value for key, value in APPOINTMENT.items() if key != missing}
    with pytest.raises(WebhookParseError) as caught:
        parse_webhook(raw(official("AppointmentUpdate", appointment=appointment)))
    assert caught.value.reason == f"missing_field:{missing}"


def test_location_comes_from_the_appointment_when_the_envelope_lacks_it() -> None:
    body = official()
    del body["locationId"]
    body["appointment"]["locationId"] = "loc9"
    assert parse_webhook(raw(body)).location_id == "loc9"


def test_contact_update_flat_shape_is_read() -> None:
    body = {
        "type": "ContactUpdate",
        "locationId": "ve9EPM428h8vShlRW1KT",
        "id": "nmFmQEsNgz6AVpgLVUJ0",
        "email": "JohnDeo@gmail.comm",
        "name": "John Deo",
        "firstName": "John",
        "lastName": "Deo",
        "phone": "+919509597501",
        "tags": ["a"],
        "dnd": True,
        "customFields": [{"id": "x", "value": "XYZ Corp"}],
    }
    event = parse_webhook(raw(body))
    assert isinstance(event, GhlContactEvent)
    assert (event.action, event.contact.id, event.contact.phone) == (
        "update",
        "nmFmQEsNgz6AVpgLVUJ0",
        "+919509597501",
    )


@pytest.mark.parametrize(("event_type", "action"), [("ContactCreate", "create"), ("ContactDelete", "delete")])
def test_contact_create_and_delete_are_read(event_type: str, action: str) -> None:
    event = parse_webhook(raw({"type": event_type, "locationId": "loc1", "id": "c1"}))
    assert isinstance(event, GhlContactEvent) and event.action == action


@pytest.mark.parametrize("event_type", ["INSTALL", "UNINSTALL", "ContactTagUpdate", "OpportunityCreate"])
def test_other_event_types_are_ignored_not_rejected(event_type: str) -> None:
    event = parse_webhook(raw({"type": event_type, "locationId": "loc1", "appId": "app"}))
    assert isinstance(event, IgnoredEvent) and event.type == event_type


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_utf8"),
        (b"[1, 2]", "not_an_object"),
        (raw({"locationId": "loc1"}), "missing_type"),
        (raw({"type": "  "}), "missing_type"),
        (raw({"type": "AppointmentCreate"}), "missing_appointment"),
        (raw({"type": "AppointmentCreate", "appointment": "ev1"}), "missing_appointment"),
        (raw(official(appointment={**APPOINTMENT, "id": None})), "missing_appointment_id"),
        (raw(official(appointment={**APPOINTMENT, "startTime": "soon"})), "invalid_time:startTime"),
        (raw(official(timestamp="yesterday")), "invalid_timestamp"),
        (raw(official(webhookId={"id": 1})), "invalid_field:webhookId"),
        (raw({"type": "ContactUpdate", "locationId": "loc1"}), "missing_contact_id"),
    ],
)
def test_malformed_delivery_raises_a_parse_error_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookParseError) as caught:
        parse_webhook(body)
    assert caught.value.reason == reason


def test_parsed_event_survives_a_queue_round_trip() -> None:
    event = parse_webhook(raw(official()))
    assert WEBHOOK_EVENT_ADAPTER.validate_json(WEBHOOK_EVENT_ADAPTER.dump_json(event)) == event


NOW = datetime(2025, 12, 20, 17, 0, tzinfo=UTC)


def test_fresh_timestamp_is_accepted() -> None:
    assert not is_stale_timestamp(NOW - timedelta(minutes=4, seconds=59), NOW)


def test_timestamp_older_than_five_minutes_is_stale() -> None:
    assert is_stale_timestamp(NOW - timedelta(minutes=5, seconds=1), NOW)


def test_timestamp_far_in_the_future_is_rejected_too() -> None:
    assert is_stale_timestamp(NOW + timedelta(minutes=10), NOW)


def test_missing_timestamp_is_accepted_and_left_to_signature_and_dedupe() -> None:
    assert not is_stale_timestamp(None, NOW)


def test_replay_window_is_configurable() -> None:
    assert is_stale_timestamp(NOW - timedelta(minutes=2), NOW, max_age=timedelta(minutes=1))


def test_dedupe_key_is_the_webhook_id_when_present() -> None:
    body = raw(official())
    assert dedupe_key(parse_webhook(body), body) == "webhook:wh1"


def test_redelivery_without_webhook_id_has_the_same_key_despite_formatting() -> None:
    body = official()
    del body["webhookId"]
    compact = json.dumps(body, separators=(",", ":")).encode()
    pretty = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    assert dedupe_key(parse_webhook(compact), compact) == dedupe_key(parse_webhook(pretty), pretty)
    assert dedupe_key(parse_webhook(compact), compact).startswith("payload:")


def test_different_deliveries_without_webhook_id_have_different_keys() -> None:
    first = official()
    second = official(appointment={**APPOINTMENT, "title": "Otra"})
    del first["webhookId"], second["webhookId"]
    assert dedupe_key(parse_webhook(raw(first)), raw(first)) != dedupe_key(parse_webhook(raw(second)), raw(second))


# --- the parser under arbitrary input: an event, or a WebhookParseError; never anything else -----------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=12,
)
_field_values = _json_leaf | st.sampled_from(
    ["", " ", "2030-03-01T10:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "²"]
)
_appointment = st.fixed_dictionaries({}, optional={k: _field_values for k in APPOINTMENT} | {"id": _field_values})
_bodies = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["AppointmentCreate", "AppointmentUpdate", "AppointmentDelete", "ContactUpdate", "INSTALL", ""]
        )
    },
    optional={
        "appointment": _appointment | _json,
        "data": _appointment,
        "timestamp": _field_values,
        "webhookId": _field_values,
        "locationId": _field_values,
        "id": _field_values,
    },
)


def _parsed_or_refused(raw: bytes) -> None:
    try:
        event = parse_webhook(raw)
    except WebhookParseError as exc:
        assert exc.reason
        return
    WEBHOOK_EVENT_ADAPTER.validate_json(WEBHOOK_EVENT_ADAPTER.dump_json(event))
    assert dedupe_key(event, raw)


@settings(max_examples=300)
@given(_bodies)
def test_any_webhook_shaped_body_is_an_event_or_a_parse_error(body: dict[str, Any]) -> None:
    _parsed_or_refused(json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=512) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_are_an_event_or_a_parse_error(raw: bytes) -> None:
    _parsed_or_refused(raw)
