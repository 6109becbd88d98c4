"""GHL → RV3: reschedules, cancellations, attendance and bookings made in GHL reach RV3's own tables with the
next capture run, once, without overwriting the front desk and without coming back to GHL as RV3 changes."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import pytest
import sqlalchemy as sa

from blueprints import rv3 as api
from shared import runtime
from shared.rv3.database import Rv3Database
from shared.rv3.port import Rv3Unavailable
from shared.services import rv3_capture
from shared.store import locations as location_repo
from shared.store.schema import appointments, conflicts, rv3_appointments
from sync_core.rv3_mapping import NewRv3Appointment, Rv3Appointment
from tests.fixtures.rv3_schema import CANCELADO, COMPLETADO, PENDIENTE, Rv3Clock

from .conftest import DAY, TEN, World

WEB_CONTACT = {
    "id": "ct_web",
    "firstName": "Lucía",
    "lastName": "Ramos Soto",
    "name": "Lucía Ramos Soto",
    "phone": "+51955000111",
    "email": "lucia@example.pe",
}


def _booked_and_synced(world: World) -> tuple[int, dict[str, Any]]:
    patient = world.desk.add_patient(name="María", last_name_paternal="Quispe", phone1="987654321")
    rv3_id = world.desk.book(patient, DAY, TEN)
    world.sync()
    event = world.ghl_event(rv3_id)
    assert event is not None
    return rv3_id, event


def _rv3(world: World, rv3_id: int) -> sa.Row[Any]:
    row = world.desk.appointment(rv3_id)
    assert row is not None
    return row


def test_a_ghl_reschedule_moves_the_rv3_appointment_and_does_not_come_back_as_an_rv3_change(world: World) -> None:
    rv3_id, event = _booked_and_synced(world)
    before = _rv3(world, rv3_id)
    moved = world.ghl.change(event["id"], startTime="2030-03-14T17:00:00-05:00", endTime="2030-03-14T18:00:00-05:00")
    assert world.webhook("AppointmentUpdate", moved).detail == "ghl_won"
    sent = len(world.ghl.requests)
    written_from = Rv3Clock().now()
    report = world.sync()
    row = _rv3(world, rv3_id)
    assert (row.appointment_date.date().isoformat(), row.hour) == ("2030-03-14", time(17, 0))
    # Stamped as RV3's Django stamps its rows (naive Lima wall time), not with the database's UTC clock.
    assert row.appointment_status_id == PENDIENTE and written_from <= row.updated_at <= Rv3Clock().now()
    assert row.diagnosis == before.diagnosis  # nothing else is touched
    assert report.outcomes["update"] == 0
    world.sync()
    assert len(world.ghl.requests) == sent


@pytest.mark.parametrize(
    ("ghl_status", "rv3_status"),
    [("showed", COMPLETADO), ("cancelled", CANCELADO), ("noshow", PENDIENTE), ("confirmed", PENDIENTE)],
)
def test_ghl_attendance_and_cancellation_set_the_rv3_status_by_name(
    world: World, ghl_status: str, rv3_status: int
) -> None:
    rv3_id, event = _booked_and_synced(world)
    world.webhook("AppointmentUpdate", world.ghl.change(event["id"], appointmentStatus=ghl_status))
    sent = len(world.ghl.requests)
    world.sync()
    assert _rv3(world, rv3_id).appointment_status_id == rv3_status
    world.sync()
    assert len(world.ghl.requests) == sent  # RV3 has no no-show: its unchanged "Pendiente" is not pushed back


def test_a_front_desk_edit_made_meanwhile_is_kept_recorded_as_a_conflict_and_reaches_ghl(world: World) -> None:
    rv3_id, event = _booked_and_synced(world)
    world.desk.move(rv3_id, hour=time(11, 0))  # saved in RV3, not read by the capture yet
    moved = world.ghl.change(event["id"], startTime="2030-03-12T17:00:00-05:00", endTime="2030-03-12T18:00:00-05:00")
    world.webhook("AppointmentUpdate", moved)
    world.sync()
    assert _rv3(world, rv3_id).hour == time(11, 0)
    with world.db.transaction() as conn:
        [conflict] = conn.execute(sa.select(conflicts)).all()
    assert (conflict.winner, conflict.rv3_values["hour"], conflict.ghl_values["hour"]) == (
        "rv3",
        "11:00:00",
        "17:00:00",
    )
    assert world.ghl.events[event["id"]]["startTime"] == "2030-03-12T11:00:00-05:00"


def test_a_write_back_waits_while_rv3_is_unreachable_and_the_next_run_writes_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rv3_id, event = _booked_and_synced(world)
    reachable = runtime.rv3

    def unreachable() -> Rv3Database:
        raise Rv3Unavailable("RV3 database unreachable (OperationalError)")

    monkeypatch.setattr(runtime, "rv3", unreachable)
    outcome = world.webhook("AppointmentUpdate", world.ghl.change(event["id"], appointmentStatus="showed"))
    assert outcome.result == "applied"  # the GHL change is taken; RV3's part waits
    assert world.sync().error == "rv3_unavailable"
    assert _rv3(world, rv3_id).appointment_status_id == PENDIENTE
    monkeypatch.setattr(runtime, "rv3", reachable)
    world.sync()
    assert _rv3(world, rv3_id).appointment_status_id == COMPLETADO
    with world.db.transaction() as conn:
        assert conn.execute(sa.select(rv3_appointments.c.writeback)).scalar_one() is None


def test_a_ghl_booking_of_a_known_patient_is_created_in_rv3_once(world: World) -> None:
    _booked_and_synced(world)
    [contact] = world.ghl.contacts.values()
    booking = world.ghl.book(contact, "2030-03-20T09:00:00-05:00")
    assert world.webhook("AppointmentCreate", booking).detail == "created"
    creates = world.ghl.creates
    world.sync()
    rows = world.desk.rows("appointments")
    assert len(rows) == 2
    new = rows[-1]
    assert (new.patient_id, new.appointment_date.date().isoformat(), new.hour) == (
        rows[0].patient_id,
        "2030-03-20",
        time(9),
    )
    assert new.social_benefit is not None and not new.social_benefit  # required by RV3, no DB default
    world.webhook("AppointmentCreate", booking)  # GHL's redelivery
    world.sync()
    assert world.ghl.creates == creates and len(world.desk.rows("appointments")) == 2


@pytest.mark.parametrize("rv3_url", ["mariadb"], indirect=True)  # MySQL's error codes tell refusal from outage
def test_a_write_rv3_refuses_fails_with_its_reason_and_does_not_hold_up_the_others(world: World) -> None:
    rv3_id, event = _booked_and_synced(world)
    [contact] = world.ghl.contacts.values()
    # A newer RV3 with a NOT NULL column without a DB default the sync knows nothing of: the insert gets 1364.
    with world.desk.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE appointments ADD COLUMN sede_id INT NOT NULL"))
    try:
        world.webhook("AppointmentCreate", world.ghl.book(contact, "2030-03-20T09:00:00-05:00"))
        world.webhook("AppointmentUpdate", world.ghl.change(event["id"], appointmentStatus="showed"))
        report = world.sync()
        assert report.error is None and report.outcomes["writeback:failed"] == 1
        assert _rv3(world, rv3_id).appointment_status_id == COMPLETADO  # the next write-back was not held up
        assert len(world.desk.rows("appointments")) == 1
        status = world.app().call(api.rv3_status, "GET", "rv3/status").body
        assert status["failed_writebacks"] == 1 and status["pending_writebacks"] == 0
        [failed] = status["failed_writes"]
        assert failed["operation"] == "create" and failed["rv3_appointment_id"] is None
        assert "rechazó" in failed["reason"] and "1364" in failed["reason"] and "sede_id" in failed["reason"]
        assert world.sync().outcomes["writeback:failed"] == 0  # not retried forever
    finally:
        with world.desk.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE appointments DROP COLUMN sede_id"))


def test_a_ghl_booking_of_an_unknown_contact_waits_for_the_front_desk_then_is_created_for_the_chosen_patient(
    world: World,
) -> None:
    world.webhook("AppointmentCreate", world.ghl.book(WEB_CONTACT, "2030-03-20T09:00:00-05:00"))
    world.sync()
    assert world.desk.rows("appointments") == []
    app = world.app()
    listed = app.call(api.rv3_review_list, "GET", "rv3/review")
    assert listed.status == 200, listed.body
    [item] = listed.body["results"]
    assert (item["reason"], item["contact"]["name"], item["contact"]["phone"]) == (
        "unknown_contact",
        "Lucía Ramos Soto",
        "+51955000111",
    )
    patient = world.desk.add_patient(name="Lucía", last_name_paternal="Ramos", phone1="955000111")
    resolved = app.call(
        api.rv3_review_resolve,
        "POST",
        f"rv3/review/{item['id']}/resolve",
        body={"rv3_patient_id": patient},
        route={"id": str(item["id"])},
    )
    assert resolved.status == 200, resolved.body
    [row] = world.desk.rows("appointments")
    assert (row.patient_id, row.hour) == (patient, time(9))
    assert resolved.body["rv3_appointment_id"] == row.id
    assert app.call(api.rv3_review_list, "GET", "rv3/review").body["count"] == 0
    again = app.call(
        api.rv3_review_resolve,
        "POST",
        f"rv3/review/{item['id']}/resolve",
        body={"rv3_patient_id": patient},
        route={"id": str(item["id"])},
    )
    assert (again.status, again.body["error"]["code"]) == (409, "review_not_open")


def test_a_location_that_allows_it_creates_the_rv3_patient_of_an_unknown_contact(world: World) -> None:
    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"create_patients_from_ghl": True}, _now())
    world.webhook("AppointmentCreate", world.ghl.book(WEB_CONTACT, "2030-03-20T09:00:00-05:00"))
    world.sync()
    [patient] = world.desk.rows("patients")
    assert (patient.name, patient.last_name_paternal, patient.last_name_maternal) == ("Lucía", "Ramos", "Soto")
    assert (patient.phone1, patient.email) == ("955000111", "lucia@example.pe")
    [row] = world.desk.rows("appointments")
    assert row.patient_id == patient.id
    world.sync()
    assert world.ghl.creates == 0 and len(world.desk.rows("patients")) == 1


@pytest.mark.parametrize("rv3_url", ["mariadb"], indirect=True)  # MySQL's 1364, raised as OperationalError
def test_a_patient_rv3_cannot_take_from_ghl_leaves_the_booking_to_the_front_desk(world: World) -> None:
    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"create_patients_from_ghl": True}, _now())
    # RV3's real patients require columns GHL has nothing for (`ocupation`, no DB default): RV3 refuses the insert.
    with world.desk.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE patients ADD COLUMN ocupation VARCHAR(100) NOT NULL"))
    try:
        world.webhook("AppointmentCreate", world.ghl.book(WEB_CONTACT, "2030-03-20T09:00:00-05:00"))
        report = world.sync()
        assert report.error is None and report.outcomes["writeback:review"] == 1
        assert world.desk.rows("patients") == [] and world.desk.rows("appointments") == []
        [item] = world.app().call(api.rv3_review_list, "GET", "rv3/review").body["results"]
        assert item["reason"] == "patient_not_created"
    finally:
        with world.desk.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE patients DROP COLUMN ocupation"))


def test_a_ghl_booking_whose_email_is_an_rv3_patients_is_theirs_not_a_new_patient(world: World) -> None:
    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"create_patients_from_ghl": True}, _now())
    patient = world.desk.add_patient(name="Lucía", email="Lucia@Example.pe")
    world.webhook("AppointmentCreate", world.ghl.book(WEB_CONTACT, "2030-03-20T09:00:00-05:00"))
    world.sync()
    [row] = world.desk.rows("appointments")
    assert row.patient_id == patient and len(world.desk.rows("patients")) == 1


def _lose_the_answer_of_the_rv3_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    create = Rv3Database.create_appointment

    def insert_then_lose_the_answer(self: Rv3Database, new: NewRv3Appointment, *, stamp: datetime) -> Rv3Appointment:
        create(self, new, stamp=stamp)
        monkeypatch.setattr(Rv3Database, "create_appointment", create)
        raise Rv3Unavailable("RV3 database unreachable (connection reset)")

    monkeypatch.setattr(Rv3Database, "create_appointment", insert_then_lose_the_answer)


def _linked_rv3_id(world: World) -> str | None:
    with world.db.transaction() as conn:
        value: str | None = conn.execute(sa.select(appointments.c.rv3_appointment_id)).scalar_one()
        return value


@pytest.mark.parametrize("found_by", ["retry", "capture"])
def test_a_create_in_rv3_whose_outcome_was_lost_is_adopted_not_made_twice(
    world: World, monkeypatch: pytest.MonkeyPatch, found_by: str
) -> None:
    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"create_patients_from_ghl": True}, _now())
    _lose_the_answer_of_the_rv3_insert(monkeypatch)
    world.webhook("AppointmentCreate", world.ghl.book(WEB_CONTACT, "2030-03-20T09:00:00-05:00"))
    with monkeypatch.context() as patched:
        if found_by == "retry":  # the run ends before reading RV3: the next run's retry finds the row
            patched.setattr(rv3_capture, "_capture_appointments", lambda *args: None)
        first = world.sync()
    assert _linked_rv3_id(world) == (None if found_by == "retry" else str(world.desk.rows("appointments")[0].id))
    assert first.outcomes["adopted"] == (1 if found_by == "capture" else 0)
    report = world.sync()
    [row] = world.desk.rows("appointments")
    assert _linked_rv3_id(world) == str(row.id)
    assert report.outcomes["created"] == 0 and world.ghl.creates == 0
    with world.db.transaction() as conn:
        assert conn.execute(sa.select(rv3_appointments.c.writeback)).scalar_one() is None


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
