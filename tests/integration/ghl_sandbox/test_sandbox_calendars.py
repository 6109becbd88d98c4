"""Calendars API: calendars, events and appointments answer as apps/calendars.json documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_SEED, SandboxServer, SeedSpec
from tools.ghl_sandbox.config import CalendarSeed

from .helpers import CALENDARS
from .openapi import assert_documented

APPOINTMENTS = "/calendars/events/appointments"
TERAPIA = "cal_demo_terapia"


def _millis(iso: str) -> str:
    return str(int(datetime.fromisoformat(iso).timestamp() * 1000))


def _book(ghl: httpx.Client, contact_id: str, start: str, **extra: Any) -> httpx.Response:
    body = {
        "locationId": DEMO_LOCATION_ID,
        "calendarId": TERAPIA,
        "contactId": contact_id,
        "startTime": start,
    }
    return ghl.post(APPOINTMENTS, json={**body, **extra}, headers=CALENDARS)


def _events(ghl: httpx.Client, start: str, end: str, **selector: str) -> httpx.Response:
    params = {
        "locationId": DEMO_LOCATION_ID,
        "startTime": _millis(start),
        "endTime": _millis(end),
        **selector,
    }
    return ghl.get("/calendars/events", params=params, headers=CALENDARS)


def test_calendar_list_shows_active_and_inactive_calendars_of_the_location(ghl: httpx.Client) -> None:
    response = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS)

    body = assert_documented("calendars", "GET", "/calendars/", response)
    assert {(c["id"], c["isActive"]) for c in body["calendars"]} == {
        ("cal_demo_terapia", True),
        ("cal_demo_reflexologia", True),
        ("cal_demo_inactivo", False),
    }


def test_calendar_by_id_comes_wrapped_in_calendar(ghl: httpx.Client) -> None:
    response = ghl.get(f"/calendars/{TERAPIA}", headers=CALENDARS)

    body = assert_documented("calendars", "GET", "/calendars/{calendarId}", response)
    assert body["calendar"]["name"] == "Terapia física"
    assert body["calendar"]["teamMembers"][0]["userId"] == "usr_demo_ana"


def test_booking_answers_the_unwrapped_appointment_with_location_offset(ghl: httpx.Client, contact_id: str) -> None:
    response = _book(ghl, contact_id, "2026-12-01T15:00:00Z", title="Sesión 1")

    body = assert_documented("calendars", "POST", APPOINTMENTS, response)
    assert response.status_code == 200
    assert body["startTime"] == "2026-12-01T10:00:00-05:00"
    assert body["endTime"] == "2026-12-01T11:00:00-05:00"  # calendar slot of 60 min
    assert (body["appointmentStatus"], body["assignedUserId"], body["title"]) == (
        "confirmed",
        "usr_demo_ana",
        "Sesión 1",
    )


def test_events_range_returns_overlapping_appointments_only(ghl: httpx.Client, contact_id: str) -> None:
    first = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00").json()["id"]
    _book(ghl, contact_id, "2026-12-02T10:00:00-05:00")

    response = _events(ghl, "2026-12-01T10:30:00-05:00", "2026-12-01T12:00:00-05:00", calendarId=TERAPIA)

    body = assert_documented("calendars", "GET", "/calendars/events", response)
    assert [e["id"] for e in body["events"]] == [first]
    event = body["events"][0]
    assert (event["contactId"], event["locationId"], event["createdBy"]["source"]) == (
        contact_id,
        DEMO_LOCATION_ID,
        "third_party",
    )


def test_events_can_be_selected_by_user_or_group(ghl: httpx.Client, contact_id: str) -> None:
    booked = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00").json()["id"]
    day = ("2026-12-01T00:00:00-05:00", "2026-12-02T00:00:00-05:00")

    by_ana = _events(ghl, *day, userId="usr_demo_ana").json()["events"]
    by_luis = _events(ghl, *day, userId="usr_demo_luis").json()["events"]
    by_group = _events(ghl, *day, groupId="no-such-group").json()["events"]

    assert ([e["id"] for e in by_ana], by_luis, by_group) == ([booked], [], [])


def test_events_query_without_calendar_user_or_group_is_a_bad_request(ghl: httpx.Client) -> None:
    response = _events(ghl, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")

    body = assert_documented("calendars", "GET", "/calendars/events", response)
    assert response.status_code == 400
    assert "calendarId" in body["message"]


def test_booking_needs_a_calendar_and_contact_of_that_location(ghl: httpx.Client, contact_id: str) -> None:
    no_calendar = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00", calendarId="nope")
    no_contact = _book(ghl, "nope", "2026-12-01T10:00:00-05:00")
    inactive = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00", calendarId="cal_demo_inactivo")
    missing = ghl.post(APPOINTMENTS, json={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS)

    for response in (no_calendar, no_contact, inactive, missing):
        assert response.status_code == 400
        assert_documented("calendars", "POST", APPOINTMENTS, response)
    assert no_contact.json()["message"] == "Contact not found"


def test_taken_slot_is_refused_unless_free_slot_validation_is_ignored(ghl: httpx.Client, contact_id: str) -> None:
    _book(ghl, contact_id, "2026-12-01T10:00:00-05:00")

    overlapping = _book(ghl, contact_id, "2026-12-01T10:30:00-05:00")
    forced = _book(ghl, contact_id, "2026-12-01T10:30:00-05:00", ignoreFreeSlotValidation=True)

    assert overlapping.status_code == 400
    assert overlapping.json()["message"] == "The slot you have selected is no longer available."
    assert forced.status_code == 200


def test_booking_outside_open_hours_is_refused(ghl: httpx.Client, contact_id: str) -> None:
    sunday = _book(ghl, contact_id, "2026-11-29T10:00:00-05:00")
    late = _book(ghl, contact_id, "2026-12-01T19:30:00-05:00")

    assert (sunday.status_code, late.status_code) == (400, 400)


def test_cancel_keeps_the_event_with_a_newer_date_updated(ghl: httpx.Client, contact_id: str) -> None:
    event_id = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00").json()["id"]
    before = ghl.get(f"{APPOINTMENTS}/{event_id}", headers=CALENDARS).json()["event"]

    response = ghl.put(f"{APPOINTMENTS}/{event_id}", json={"appointmentStatus": "cancelled"}, headers=CALENDARS)

    assert assert_documented("calendars", "PUT", f"{APPOINTMENTS}/{{eventId}}", response)["appointmentStatus"] == (
        "cancelled"
    )
    fetched = ghl.get(f"{APPOINTMENTS}/{event_id}", headers=CALENDARS)
    after = assert_documented("calendars", "GET", f"{APPOINTMENTS}/{{eventId}}", fetched)["event"]
    assert after["appointmentStatus"] == "cancelled"
    assert datetime.fromisoformat(after["dateUpdated"]) > datetime.fromisoformat(before["dateUpdated"])
    assert after["dateAdded"] == before["dateAdded"]


def test_reschedule_keeps_the_duration_and_frees_the_old_slot(ghl: httpx.Client, contact_id: str) -> None:
    event_id = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00", endTime="2026-12-01T10:45:00-05:00").json()["id"]

    moved = ghl.put(f"{APPOINTMENTS}/{event_id}", json={"startTime": "2026-12-01T15:00:00-05:00"}, headers=CALENDARS)
    rebooked = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00")

    assert (moved.json()["startTime"], moved.json()["endTime"]) == (
        "2026-12-01T15:00:00-05:00",
        "2026-12-01T15:45:00-05:00",
    )
    assert rebooked.status_code == 200


def test_unknown_status_is_a_bad_request(ghl: httpx.Client, contact_id: str) -> None:
    response = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00", appointmentStatus="booked")

    assert response.status_code == 400
    assert "appointmentStatus" in response.json()["message"]


def test_delete_answers_201_and_the_event_is_gone(ghl: httpx.Client, contact_id: str) -> None:
    event_id = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00").json()["id"]

    deleted = ghl.request("DELETE", f"/calendars/events/{event_id}", json={}, headers=CALENDARS)

    assert deleted.status_code == 201
    assert assert_documented("calendars", "DELETE", "/calendars/events/{eventId}", deleted) == {"succeeded": True}
    gone = ghl.get(f"{APPOINTMENTS}/{event_id}", headers=CALENDARS)
    assert gone.status_code == 400
    assert_documented("calendars", "GET", f"{APPOINTMENTS}/{{eventId}}", gone)
    assert _events(ghl, "2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z", calendarId=TERAPIA).json()["events"] == []


def test_delete_requires_the_documented_json_body(ghl: httpx.Client, contact_id: str) -> None:
    event_id = _book(ghl, contact_id, "2026-12-01T10:00:00-05:00").json()["id"]

    response = ghl.delete(f"/calendars/events/{event_id}", headers=CALENDARS)

    assert response.status_code == 400
    assert ghl.get(f"{APPOINTMENTS}/{event_id}", headers=CALENDARS).status_code == 200


def test_unknown_ids_can_answer_404_when_configured(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    sandbox.admin.configure("behaviour", {"not_found_status": 404})

    response = ghl.get(f"{APPOINTMENTS}/nope", headers=CALENDARS)

    assert (response.status_code, response.json()["message"]) == (404, "Appointment not found")


def test_seeding_an_existing_location_adds_calendars_to_it(sandbox: SandboxServer, ghl: httpx.Client) -> None:
    demo = DEMO_SEED.locations[0]
    extra = CalendarSeed(id="cal_masajes", name="Masajes", is_active=False)
    sandbox.admin.seed(SeedSpec(locations=[demo.model_copy(update={"calendars": [extra]})]))

    calendars = ghl.get("/calendars/", params={"locationId": DEMO_LOCATION_ID}, headers=CALENDARS).json()["calendars"]

    assert ("cal_masajes", False) in {(c["id"], c["isActive"]) for c in calendars}
    assert len(calendars) == 4
