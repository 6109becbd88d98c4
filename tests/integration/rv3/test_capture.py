"""RV3 → GHL: the front desk books, moves, completes, cancels and deletes in RV3's own tables; GHL follows once."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import sqlalchemy as sa

from blueprints import rv3 as api
from shared import runtime
from shared.store.schema import outbox, rv3_cursors
from tests.fixtures.app import CALENDAR
from tests.fixtures.rv3_schema import CANCELADO, CLINICAL, COMPLETADO, Rv3Clock

from .conftest import DAY, TEN, World


def _patient(world: World, **values: Any) -> int:
    fields = {
        "name": "María",
        "last_name_paternal": "Quispe",
        "last_name_maternal": "Huamán",
        "phone1": "987654321",
        "email": "maria@example.pe",
        "document_number": "45678912",
        **values,
    }
    return world.desk.add_patient(**fields)


def _outbox_count(world: World) -> int:
    with world.db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())


def test_a_front_desk_booking_reaches_ghl_at_its_lima_time_with_the_patient_as_contact(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    report = world.sync()
    assert report.error is None and report.outcomes["created"] == 1
    event = world.ghl_event(rv3_id)
    assert event is not None
    assert (event["calendarId"], event["appointmentStatus"], event["title"]) == (
        CALENDAR,
        "new",
        "Reflexología - Consultorio 2",
    )
    assert (event["startTime"], event["endTime"]) == ("2030-03-12T10:00:00-05:00", "2030-03-12T11:00:00-05:00")
    [contact] = world.ghl.contacts.values()
    assert (contact["firstName"], contact["lastName"], contact["phone"], contact["email"]) == (
        "María",
        "Quispe Huamán",
        "+51987654321",
        "maria@example.pe",
    )
    assert event["contactId"] == contact["id"]


def test_a_second_run_over_the_same_rows_sends_nothing(world: World) -> None:
    world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    sent = len(world.ghl.requests)
    for _ in range(3):
        report = world.sync()
        assert report.outcomes["created"] == report.outcomes["update"] == 0
    assert len(world.ghl.requests) == sent
    assert _outbox_count(world) == 1


def test_moving_completing_and_cancelling_in_rv3_update_the_one_ghl_event(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    world.desk.move(rv3_id, day=DAY + timedelta(days=1), hour=time(16, 30))
    world.sync()
    event = world.ghl_event(rv3_id)
    assert event is not None and event["startTime"] == "2030-03-13T16:30:00-05:00"
    world.desk.set_status(rv3_id, COMPLETADO)
    world.sync()
    assert world.ghl_event(rv3_id)["appointmentStatus"] == "showed"  # type: ignore[index]
    world.desk.set_status(rv3_id, CANCELADO)
    world.sync()
    assert world.ghl_event(rv3_id)["appointmentStatus"] == "cancelled"  # type: ignore[index]
    assert world.ghl.creates == 1 and len(world.ghl.events) == 1


def test_a_soft_deleted_appointment_is_cancelled_in_ghl(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    world.desk.soft_delete(rv3_id)
    world.sync()
    assert world.ghl_event(rv3_id)["appointmentStatus"] == "cancelled"  # type: ignore[index]


def test_a_hard_deleted_appointment_is_found_by_the_sweep_and_cancelled_in_ghl(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    event_id = world.ghl_event(rv3_id)["id"]  # type: ignore[index]
    world.desk.hard_delete(rv3_id)
    with world.db.transaction() as conn:  # the last sweep was long ago
        conn.execute(rv3_cursors.update().values(swept_at=None))
    report = world.sync()
    assert report.outcomes["swept:cancel"] == 1
    assert world.ghl.events[event_id]["appointmentStatus"] == "cancelled"


def test_a_patient_edit_in_rv3_updates_their_ghl_contact(world: World) -> None:
    patient_id = _patient(world)
    world.desk.book(patient_id, DAY, TEN)
    world.sync()
    world.desk.edit_patient(patient_id, phone1="912 345 678", email="maria.q@example.pe")
    report = world.sync()
    assert report.contacts_pushed == 1
    [contact] = world.ghl.contacts.values()
    assert (contact["phone"], contact["email"]) == ("+51912345678", "maria.q@example.pe")
    assert world.sync().contacts_pushed == 0


def test_a_patient_edit_saved_without_a_new_updated_at_reaches_the_contact_by_the_sweep(world: World) -> None:
    world.desk.clock = Rv3Clock(skew=-timedelta(hours=1))  # saved long before: behind the cursor's overlap
    patient_id = _patient(world)
    world.desk.book(patient_id, DAY, TEN)
    world.sync()
    world.desk.clock = Rv3Clock()
    world.desk.add_patient(name="Otra", phone1="911000222", email="otra@example.pe", document_number="1")
    world.sync()  # the patients' cursor is now past María's row
    world.desk.edit_patient_fields(patient_id, phone1="912 345 678")  # Django's update_fields: same updated_at
    with world.db.transaction() as conn:
        conn.execute(rv3_cursors.update().values(swept_at=None))  # the sweep is due
    report = world.sync()
    assert report.outcomes["swept:patient_changed"] == 1 and report.contacts_pushed == 1
    [contact] = world.ghl.contacts.values()
    assert contact["phone"] == "+51912345678"
    with world.db.transaction() as conn:
        conn.execute(rv3_cursors.update().values(swept_at=None))
    again = world.sync()
    assert again.outcomes["swept:patient_changed"] == 0 and again.contacts_pushed == 0


def test_a_contact_created_from_one_full_name_gets_rv3s_exact_surnames(world: World) -> None:
    patient_id = _patient(world, name="Ana María", last_name_maternal=None)
    world.desk.book(patient_id, DAY, TEN)
    world.sync()  # the worker creates the contact splitting "Ana María Quispe" by convention
    world.sync()
    [contact] = world.ghl.contacts.values()
    assert (contact["firstName"], contact["lastName"]) == ("Ana María", "Quispe")


def test_no_clinical_or_billing_value_ever_reaches_ghl(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    world.desk.move(rv3_id, hour=time(12, 0))
    world.desk.edit(rv3_id, diagnosis="nuevo-diagnostico-7Q", observation="otra-observacion-7Q")
    world.sync()
    sent = repr(world.ghl.requests)
    for value in [*CLINICAL.values(), "nuevo-diagnostico-7Q", "otra-observacion-7Q", "45678912"]:
        assert value not in sent


def test_the_cursor_survives_a_restart_without_losing_or_repeating_changes(world: World) -> None:
    patient_id = _patient(world)
    first = world.desk.book(patient_id, DAY, TEN)
    world.sync()
    runtime.reset()  # the worker process restarts (the fakes stay: they are GHL and the queue)
    second = world.desk.book(patient_id, DAY, time(12, 0))
    world.desk.move(first, hour=time(11, 0))
    report = world.sync()
    assert (report.outcomes["created"], report.outcomes["update"]) == (1, 1)
    assert world.ghl.creates == 2
    assert world.ghl_event(first)["startTime"] == "2030-03-12T11:00:00-05:00"  # type: ignore[index]
    assert world.ghl_event(second) is not None
    runtime.reset()
    report = world.sync()
    assert report.outcomes["created"] == report.outcomes["update"] == 0


def test_rows_sharing_the_cursors_second_and_late_commits_are_not_skipped(world: World) -> None:
    patient_id = _patient(world)
    second = Rv3Clock(skew=timedelta(minutes=-3)).now()  # RV3's server runs behind ours
    world.desk.clock = Rv3Clock(frozen=second)
    ids = [world.desk.book(patient_id, DAY, time(8 + i, 0)) for i in range(3)]
    world.sync()
    ids.append(world.desk.book(patient_id, DAY, time(12, 0)))  # saved in the second the run stopped at
    # A transaction that started two minutes earlier commits now, its stamp before everything read so far.
    world.desk.clock = Rv3Clock(frozen=second - timedelta(minutes=2))
    ids.append(world.desk.book(patient_id, DAY, time(15, 0)))
    world.sync()
    assert all(world.ghl_event(i) is not None for i in ids)
    assert world.ghl.creates == 5


def test_a_stamp_ahead_of_rv3s_clock_never_hides_later_front_desk_edits(world: World) -> None:
    patient_id = _patient(world)
    ahead, later = world.desk.book(patient_id, DAY, TEN), world.desk.book(patient_id, DAY, time(12, 0))
    world.sync()
    # The sync's old write-backs stamped the database's UTC clock: 5 h ahead of RV3's Lima wall time.
    world.desk.clock = Rv3Clock(skew=timedelta(hours=5))
    world.desk.move(ahead, hour=time(11, 0))
    world.sync()
    world.desk.clock = Rv3Clock()
    world.desk.move(later, hour=time(16, 0))
    world.sync()
    assert world.ghl_event(ahead)["startTime"] == "2030-03-12T11:00:00-05:00"  # type: ignore[index]
    assert world.ghl_event(later)["startTime"] == "2030-03-12T16:00:00-05:00"  # type: ignore[index]


def test_an_appointment_without_a_date_is_reported_and_skipped_while_the_rest_goes_on(world: World) -> None:
    patient_id = _patient(world)
    before = world.desk.book(patient_id, DAY, TEN)
    undated = world.desk.book(patient_id, DAY, time(11, 0), appointment_date=None)  # RV3's API accepts it
    after = world.desk.book(patient_id, DAY, time(12, 0))
    report = world.sync()
    assert report.error is None and report.outcomes["unreadable:no_date"] == 1
    assert world.ghl_event(before) is not None and world.ghl_event(after) is not None
    assert world.ghl_event(undated) is None
    status = world.app().call(api.rv3_status, "GET", "rv3/status").body
    assert status["last_error"] is None
    [rejected] = status["rejected_rows"]
    assert (rejected["table"], rejected["rv3_id"]) == ("appointments", undated)
    assert "no tiene fecha" in rejected["reason"]
    later = world.desk.book(patient_id, DAY, time(15, 0))  # the cursor went on past the bad row
    world.desk.move(undated, day=DAY)  # the front desk gives it a date
    world.sync()
    assert world.ghl_event(later) is not None and world.ghl_event(undated) is not None
    assert world.app().call(api.rv3_status, "GET", "rv3/status").body["rejected_rows"] == []


def test_history_stays_out_of_ghl_but_a_synced_appointment_moved_into_the_past_follows(world: World) -> None:
    patient = _patient(world)
    old = world.desk.book(patient, date(2020, 1, 6), TEN)
    rv3_id = world.desk.book(patient, DAY, TEN)
    report = world.sync()
    assert report.outcomes["skipped:in_the_past"] == 1 and world.ghl_event(old) is None
    world.desk.move(rv3_id, day=date(2020, 1, 7))
    world.sync()
    assert world.ghl_event(rv3_id)["startTime"] == "2020-01-07T10:00:00-05:00"  # type: ignore[index]


def test_without_a_default_calendar_nothing_is_read_past_and_it_all_arrives_once_configured(world: World) -> None:
    from shared.store import locations as location_repo

    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"default_calendar_id": None}, _now())
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    report = world.sync()
    assert report.error == "no_default_calendar" and world.ghl.events == {}
    with world.db.transaction() as conn:
        location_repo.update_location(conn, world.location_pk, {"default_calendar_id": CALENDAR}, _now())
    world.sync()
    assert world.ghl_event(rv3_id) is not None


def test_giving_the_appointment_to_another_patient_cancels_it_and_books_the_new_one(world: World) -> None:
    rv3_id = world.desk.book(_patient(world), DAY, TEN)
    world.sync()
    old_event = world.ghl_event(rv3_id)
    other = _patient(world, name="Pedro", phone1="912000111", email="pedro@example.pe", document_number="1")
    world.desk.edit(rv3_id, patient_id=other)
    world.sync()
    new_event = world.ghl_event(rv3_id)
    assert old_event is not None and new_event is not None and new_event["id"] != old_event["id"]
    assert world.ghl.events[old_event["id"]]["appointmentStatus"] == "cancelled"
    assert new_event["contactId"] != old_event["contactId"]


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
