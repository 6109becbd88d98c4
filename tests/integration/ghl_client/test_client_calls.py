"""The client against the GHL sandbox over HTTP: each endpoint the sync uses, and errors by meaning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.ghl.client import GhlClient
from shared.ghl.errors import AuthExpired, Forbidden, Invalid, NotFound
from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN, SandboxServer
from tools.ghl_sandbox.config import LocationSeed, PrivateTokenSeed, SeedSpec

from .conftest import Calls


class AnyLocation:
    """Offers one token for every location, as a misconfigured GHL_LOCATION_ID would."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self, location_id: str) -> str:
        return self.token

    def refresh(self, location_id: str, rejected_token: str) -> str:
        raise AuthExpired("no refresh")


LOC = DEMO_LOCATION_ID
CALENDAR = "cal_demo_terapia"


def new_contact(client: GhlClient, phone: str = "+51987000111") -> str:
    contact, _ = client.upsert_contact(LOC, {"firstName": "Rosa", "lastName": "Flores", "phone": phone})
    return contact.id


def appointment(contact_id: str) -> dict[str, str]:
    start, end = "2030-03-18T10:00:00-05:00", "2030-03-18T11:00:00-05:00"
    return {"calendarId": CALENDAR, "contactId": contact_id, "startTime": start, "endTime": end, "title": "Terapia"}


def test_calendars_of_the_location_are_listed_and_read(make_client: Callable[..., GhlClient]) -> None:
    client = make_client()
    calendars = {c.id: c for c in client.list_calendars(LOC)}
    assert calendars[CALENDAR].name == "Terapia física"
    assert calendars["cal_demo_inactivo"].isActive is False
    assert client.get_calendar(LOC, CALENDAR).description == "Sesiones de terapia física"


def test_an_appointment_goes_through_create_read_list_update_cancel_and_delete(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer
) -> None:
    client = make_client()
    contact_id = new_contact(client)
    created = client.create_appointment(LOC, appointment(contact_id))
    assert (created.calendarId, created.contactId, created.locationId) == (CALENDAR, contact_id, LOC)
    assert created.dateAdded is None  # create answers the unwrapped AppointmentSchemaResponse

    read = client.get_event(LOC, created.id)
    assert read.startTime == "2030-03-18T10:00:00-05:00"
    assert read.dateAdded is not None

    day = dict(start=datetime(2030, 3, 18, tzinfo=UTC), end=datetime(2030, 3, 19, tzinfo=UTC))
    assert [e.id for e in client.list_events(LOC, calendar_id=CALENDAR, **day)] == [created.id]
    assert client.list_events(LOC, calendar_id="cal_demo_reflexologia", **day) == []

    later = {"startTime": "2030-03-18T12:00:00-05:00", "endTime": "2030-03-18T13:00:00-05:00"}
    moved = client.update_appointment(LOC, created.id, later)
    assert moved.startTime == "2030-03-18T12:00:00-05:00"
    assert client.cancel_appointment(LOC, created.id).appointmentStatus == "cancelled"
    assert client.get_event(LOC, created.id).appointmentStatus == "cancelled"  # cancel keeps the history

    client.delete_event(LOC, created.id)
    with pytest.raises(NotFound):
        client.get_event(LOC, created.id)
    assert sandbox.admin.state()["appointments"] == []


def test_upsert_reports_a_new_contact_then_matches_it_and_the_duplicate_lookup_finds_it(
    make_client: Callable[..., GhlClient],
) -> None:
    client = make_client()
    first, created = client.upsert_contact(LOC, {"firstName": "Rosa", "phone": "+51 987 000 111"})
    again, created_again = client.upsert_contact(LOC, {"firstName": "Rosa", "phone": "+51987000111"})
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    found = client.find_duplicate_contact(LOC, phone="+51987000111")
    assert found is not None and found.id == first.id
    assert client.find_duplicate_contact(LOC, email="nadie@example.com") is None
    assert client.get_contact(LOC, first.id).phone == "+51987000111"


def test_location_details_come_from_ghl(make_client: Callable[..., GhlClient]) -> None:
    location = make_client().get_location(LOC)
    assert (location.name, location.timezone) == ("Reflexo Perú - Sede Principal", "America/Lima")


def test_an_unknown_event_is_not_found_and_keeps_ghls_trace_id(
    make_client: Callable[..., GhlClient], calls: Calls
) -> None:
    with pytest.raises(NotFound) as caught:
        make_client().get_event(LOC, "does-not-exist")
    assert caught.value.status == 400  # GHL documents only 400 for unknown ids
    assert caught.value.trace_id
    assert calls.records[-1].trace_id == caught.value.trace_id
    assert calls.records[-1].error_code == "not_found"


def test_a_rejected_appointment_is_invalid_with_ghls_messages(make_client: Callable[..., GhlClient]) -> None:
    client = make_client()
    body = {**appointment(new_contact(client)), "endTime": "2030-03-18T09:00:00-05:00"}
    with pytest.raises(Invalid) as caught:
        client.create_appointment(LOC, body)
    assert caught.value.details == ["endTime must be after startTime"]


def test_a_contact_ghl_finds_invalid_lists_every_problem(make_client: Callable[..., GhlClient]) -> None:
    with pytest.raises(Invalid) as caught:
        make_client().upsert_contact(LOC, {"email": "no-es-correo", "nickname": "x"})
    assert caught.value.status == 422
    assert set(caught.value.details) == {"property nickname should not exist", "email must be an email"}


def test_a_location_the_token_does_not_cover_is_forbidden(
    make_client: Callable[..., GhlClient], sandbox: SandboxServer
) -> None:
    other = "loc_other"
    tokens = [PrivateTokenSeed(token="pit-other")]
    sandbox.admin.seed(SeedSpec(locations=[LocationSeed(id=other, name="Otra sede", private_tokens=tokens)]))
    with pytest.raises(Forbidden):
        make_client(tokens=AnyLocation(DEMO_PRIVATE_TOKEN)).list_calendars(other)


def test_a_rejected_private_token_is_auth_expired_after_one_call(
    make_client: Callable[..., GhlClient], calls: Calls
) -> None:
    with pytest.raises(AuthExpired):
        make_client(token="pit-wrong").list_calendars(LOC)
    assert calls.statuses == [401]  # a private token cannot be refreshed, so no second try


def test_every_call_is_recorded_for_metrics_and_no_record_holds_the_token(
    make_client: Callable[..., GhlClient], calls: Calls
) -> None:
    client = make_client()
    client.list_calendars(LOC)
    client.get_location(LOC)
    assert [(r.operation, r.method, r.path_template, r.status_code, r.success) for r in calls.records] == [
        ("list_calendars", "GET", "/calendars/", 200, True),
        ("get_location", "GET", "/locations/{locationId}", 200, True),
    ]
    assert all(r.location_id == LOC and r.duration_ms > 0 for r in calls.records)
    assert DEMO_PRIVATE_TOKEN not in repr(calls.records)


def test_the_rate_limit_headroom_of_the_last_answer_is_known(make_client: Callable[..., GhlClient]) -> None:
    client = make_client()
    assert client.last_rate_limit(LOC) is None
    client.get_location(LOC)
    limits = client.last_rate_limit(LOC)
    assert limits is not None
    assert (limits.max_requests, limits.interval_ms, limits.remaining) == (100, 10_000, 99)
