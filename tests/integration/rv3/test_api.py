"""The RV3 routes: therapist ⇄ GHL user mapping (and its effect on GHL), status, and what staff see on errors."""

from __future__ import annotations

import pytest

from blueprints import rv3 as api
from shared import runtime
from shared.rv3.database import Rv3Database
from shared.rv3.port import Rv3Refused
from tests.fixtures.app import OTHER_CALENDAR

from .conftest import DAY, TEN, World

# The routes behave alike whatever RV3 runs on (the adapter's tests cover MariaDB).
pytestmark = pytest.mark.parametrize("rv3_url", ["sqlite"], indirect=True)


def test_therapists_are_listed_from_rv3_with_their_ghl_user(world: World) -> None:
    ana = world.desk.add_therapist(first_name="Ana", last_name_paternal="Torres")
    world.desk.add_therapist(first_name="Luis", last_name_paternal="Paz", is_active=False)
    app = world.app()
    put = app.call(
        api.rv3_therapists_put,
        "PUT",
        f"rv3/therapists/{ana}",
        body={"ghl_user_id": "usr_demo_ana"},
        route={"id": str(ana)},
    )
    assert put.status == 200, put.body
    listed = app.call(api.rv3_therapists_list, "GET", "rv3/therapists").body
    assert [(t["name"], t["is_active"], t["ghl_user_id"]) for t in listed["results"]] == [
        ("Ana Torres", True, "usr_demo_ana"),
        ("Luis Paz", False, None),
    ]
    one = app.call(api.rv3_therapists_get, "GET", f"rv3/therapists/{ana}", route={"id": str(ana)})
    assert one.body["ghl_user_id"] == "usr_demo_ana"


def test_mapping_a_therapist_assigns_their_upcoming_appointments_in_ghl_and_unmapping_stops_it(world: World) -> None:
    ana = world.desk.add_therapist(first_name="Ana")
    patient = world.desk.add_patient(name="Rosa", phone1="987000111")
    rv3_id = world.desk.book(patient, DAY, TEN, therapist_id=ana)
    world.sync()
    assert world.ghl_event(rv3_id).get("assignedUserId") is None  # type: ignore[union-attr]
    app = world.app()
    body = {"ghl_user_id": "usr_demo_luis", "ghl_calendar_id": OTHER_CALENDAR}
    assert app.call(api.rv3_therapists_put, "PUT", "rv3/therapists/x", body=body, route={"id": str(ana)}).status == 200
    world.deliver()
    event = world.ghl_event(rv3_id)
    assert event is not None and (event["assignedUserId"], event["calendarId"]) == ("usr_demo_luis", OTHER_CALENDAR)
    second = world.desk.book(patient, DAY, TEN.replace(hour=12), therapist_id=ana)
    world.sync()
    assert world.ghl_event(second)["assignedUserId"] == "usr_demo_luis"  # type: ignore[index]
    deleted = app.call(api.rv3_therapists_delete, "DELETE", "rv3/therapists/x", route={"id": str(ana)})
    assert deleted.status == 204
    third = world.desk.book(patient, DAY, TEN.replace(hour=15), therapist_id=ana)
    world.sync()
    assert world.ghl_event(third).get("assignedUserId") is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"ghl_user_id": "usr_demo_ana", "ghl_calendar_id": "cal_unknown"}, 422, "calendar_unavailable"),
        ({"ghl_user_id": "no spaces allowed"}, 400, "validation_error"),
    ],
)
def test_a_bad_mapping_is_refused_with_a_spanish_message(
    world: World, body: dict[str, str], status: int, code: str
) -> None:
    ana = world.desk.add_therapist(first_name="Ana")
    response = world.app().call(api.rv3_therapists_put, "PUT", "rv3/therapists/x", body=body, route={"id": str(ana)})
    assert (response.status, response.body["error"]["code"]) == (status, code)


def test_unknown_therapists_and_mappings_are_404(world: World) -> None:
    app = world.app()
    put = app.call(api.rv3_therapists_put, "PUT", "x", body={"ghl_user_id": "usr_demo_ana"}, route={"id": "999"})
    assert (put.status, put.body["error"]["code"]) == (404, "therapist_not_found")
    assert put.body["error"]["message"] == "El terapeuta no existe en Reflexo V3."
    gone = app.call(api.rv3_therapists_delete, "DELETE", "x", route={"id": "999"})
    assert (gone.status, gone.body["error"]["code"]) == (404, "therapist_mapping_not_found")


def test_status_shows_how_far_rv3_was_read_and_what_waits(world: World) -> None:
    world.desk.book(world.desk.add_patient(name="Rosa", phone1="987000111"), DAY, TEN)
    world.sync()
    body = world.app().call(api.rv3_status, "GET", "rv3/status").body
    assert body["configured"] is True and body["location_id"] == "loc_demo"
    assert body["last_error"] is None and body["last_run_at"] and body["appointments_read_to"]
    assert (body["pending_writebacks"], body["open_reviews"]) == (0, 0)


def test_an_unreachable_rv3_is_503_for_staff_and_an_error_in_the_status(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RV3_SQL_URL", "mysql+pymysql://rv3@127.0.0.1:9/reflexo")
    runtime.reset()
    app = world.app()
    listed = app.call(api.rv3_therapists_list, "GET", "rv3/therapists")
    assert (listed.status, listed.body["error"]["code"]) == (503, "rv3_unavailable")
    assert world.capture().error == "rv3_unavailable"
    assert app.call(api.rv3_status, "GET", "rv3/status").body["last_error"] == "rv3_unavailable"


def test_a_read_rv3_refuses_is_an_error_in_the_status_not_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Rv3Database, **_: object) -> None:
        raise Rv3Refused(1142, "SELECT command denied to user 'sync' for table 'appointments'")

    monkeypatch.setattr(Rv3Database, "changed_appointments", denied)
    assert world.capture().error == "rv3_refused"
    assert world.app().call(api.rv3_status, "GET", "rv3/status").body["last_error"] == "rv3_refused"


def test_without_rv3_configured_the_routes_say_so_and_the_timer_does_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RV3_SQL_URL")
    runtime.reset()
    response = world.app().call(api.rv3_review_list, "GET", "rv3/review")
    assert (response.status, response.body["error"]["code"]) == (503, "rv3_not_configured")
    assert world.capture().error == "rv3_not_configured"
    assert world.app().call(api.rv3_status, "GET", "rv3/status").body["configured"] is False
