"""RV3 → GHL end to end: the citas API on the local host, the outbox and queue worker, the GHL sandbox."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.stack import Stack, call_json

CALENDAR = "cal_demo_terapia"


def _synced(api: httpx.Client, cita_id: int, version: int) -> dict[str, Any] | None:
    body = call_json(api.get(f"/ghl/citas/{cita_id}"))
    return body if body["sync_state"] == "synced" and body["version"] == version else None


def _events(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.sandbox.admin.state()["appointments"])


def test_create_reschedule_cancel_reach_ghl_as_one_event(stack: Stack) -> None:
    api = stack.api()
    created = api.post(
        "/ghl/citas",
        json={
            "title": "Consulta Fisioterapia",
            "ghl_calendar_id": CALENDAR,
            "patient": {"name": "María Quispe Huamán", "phone": "987654321", "email": "maria@example.pe"},
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
            "notes": "Primera consulta",
        },
    )
    assert created.status_code == 201, created.text
    cita_id = created.json()["id"]

    synced = stack.wait_until(lambda: _synced(api, cita_id, 1), what="create synced")
    [event] = _events(stack)
    assert event["id"] == synced["ghl_event_id"]
    assert (event["calendarId"], event["title"], event["appointmentStatus"]) == (
        CALENDAR,
        "Consulta Fisioterapia",
        "new",
    )
    assert event["startTime"].startswith("2030-03-12T10:00:00") and event["startTime"].endswith("-05:00")
    [contact] = stack.sandbox.admin.state()["contacts"]
    assert (event["contactId"], contact["phone"], contact["email"]) == (
        contact["id"],
        "+51987654321",
        "maria@example.pe",
    )

    moved = api.put(
        f"/ghl/citas/{cita_id}",
        headers={"If-Match": '"1"'},
        json={
            "title": "Consulta Fisioterapia",
            "ghl_calendar_id": CALENDAR,
            "patient": {"name": "María Quispe Huamán", "phone": "987654321", "email": "maria@example.pe"},
            "start_time": "2030-03-12T15:00:00-05:00",
            "end_time": "2030-03-12T16:00:00-05:00",
        },
    )
    assert moved.status_code == 200, moved.text
    stack.wait_until(lambda: _synced(api, cita_id, 2), what="reschedule synced")
    [event] = _events(stack)
    assert event["startTime"].startswith("2030-03-12T15:00:00")
    assert event["endTime"].startswith("2030-03-12T16:00:00")

    assert api.post(f"/ghl/citas/{cita_id}/cancel").status_code == 200
    stack.wait_until(lambda: _synced(api, cita_id, 3), what="cancel synced")
    [event] = _events(stack)
    assert event["appointmentStatus"] == "cancelled"
    assert len(stack.sandbox.admin.state()["contacts"]) == 1


def test_the_configured_location_registers_itself_from_ghl(stack: Stack) -> None:
    api = stack.api()
    calendars = call_json(api.get("/ghl/calendars"))
    assert calendars["success"] is True
    assert {c["id"] for c in calendars["calendars"]} == {CALENDAR, "cal_demo_reflexologia", "cal_demo_inactivo"}
    [location] = call_json(api.get("/locations/settings/active_locations"))["results"]
    assert (location["ghl_location_id"], location["timezone"]) == ("loc_demo", "America/Lima")


def test_a_rejected_appointment_shows_its_error_instead_of_retrying(stack: Stack) -> None:
    api = stack.api()
    created = api.post(
        "/ghl/citas",
        json={
            "title": "Contacto inexistente",
            "ghl_calendar_id": CALENDAR,
            "contact_id": "contact_does_not_exist",
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    assert created.status_code == 201, created.text
    cita_id = created.json()["id"]

    def errored() -> dict[str, Any] | None:
        body = call_json(api.get(f"/ghl/citas/{cita_id}"))
        return body if body["sync_state"] == "error" else None

    failed = stack.wait_until(errored, what="sync_state=error")
    assert "GoHighLevel" in failed["last_error"]
    assert _events(stack) == []
