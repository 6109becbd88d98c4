"""RV3's rows mapped to GHL and back: times in Lima, durations, therapists, statuses, echoes and conflicts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import (
    Cursor,
    GhlPerson,
    MappingRules,
    PlanKind,
    Rv3Appointment,
    Rv3Patient,
    Rv3Snapshot,
    SyncedAppointment,
    TherapistLink,
    WritebackKind,
    advance_cursor,
    after_write,
    contact_digest,
    contact_for,
    contact_from_link,
    contact_update_body,
    decide_writeback,
    match_patient,
    new_rv3_appointment,
    new_rv3_patient,
    plan_change,
    rv3_wall_clock,
    writeback_target,
)
from sync_core.rv3_statuses import Rv3Status, Rv3StatusMap, status_by_name

ROWS = [Rv3Status(id=1, name="Pendiente"), Rv3Status(id=2, name="Completado"), Rv3Status(id=3, name="CANCELADO")]
STATUSES = Rv3StatusMap.of(ROWS)
RULES = MappingRules(
    timezone="America/Lima",
    duration_min=60,
    default_calendar_id="cal_main",
    therapists={
        7: TherapistLink(ghl_user_id="usr_ana"),
        8: TherapistLink(ghl_user_id="usr_luis", ghl_calendar_id="cal_luis"),
    },
)


def row(**overrides: Any) -> Rv3Appointment:
    values: dict[str, Any] = {
        "id": 101,
        "patient_id": 5,
        "therapist_id": 7,
        "appointment_date": date(2030, 3, 12),
        "hour": time(10, 0),
        "status_id": 1,
        "status_name": "Pendiente",
        "appointment_type": "Reflexología",
        "room": 2,
        "updated_at": datetime(2030, 3, 1, 9, 0, 0),
    }
    values.update(overrides)
    return Rv3Appointment(**values)


def snap(**overrides: Any) -> Rv3Snapshot:
    return Rv3Snapshot.of(row(**overrides))


def created(**overrides: Any) -> SyncedAppointment:
    plan = plan_change(None, snap(**overrides), None, RULES)
    assert plan.kind is PlanKind.create and plan.values is not None
    return plan.values


def test_an_rv3_appointment_starts_at_its_lima_date_and_hour_and_lasts_the_location_default() -> None:
    values = created()
    assert values.start == datetime(2030, 3, 12, 15, 0, tzinfo=UTC)
    assert values.end - values.start == timedelta(minutes=60)
    assert values.start.astimezone(UTC).isoformat() == "2030-03-12T15:00:00+00:00"


def test_a_location_with_longer_sessions_gives_them_their_length() -> None:
    plan = plan_change(None, snap(), None, RULES.model_copy(update={"duration_min": 90}))
    assert plan.values is not None and plan.values.end - plan.values.start == timedelta(minutes=90)


def test_the_therapist_becomes_the_assigned_ghl_user_and_their_own_calendar_is_used() -> None:
    assert (created().assigned_user_id, created().calendar_id) == ("usr_ana", "cal_main")
    assert (created(therapist_id=8).assigned_user_id, created(therapist_id=8).calendar_id) == ("usr_luis", "cal_luis")
    assert created(therapist_id=99).assigned_user_id is None


def test_title_is_the_type_and_room_never_clinical_text() -> None:
    assert created().title == "Reflexología - Consultorio 2"
    assert created(appointment_type=None, room=None).title == "Cita"


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("Pendiente", AppointmentStatus.scheduled),
        ("PENDIENTE", AppointmentStatus.scheduled),
        ("ACTIVO", AppointmentStatus.scheduled),
        ("Completado", AppointmentStatus.attended),
        ("No asistió", AppointmentStatus.no_show),
    ],
)
def test_rv3_status_names_map_to_sync_statuses(name: str, status: AppointmentStatus) -> None:
    assert created(status_name=name).status is status
    assert status_by_name(name) is status


def test_an_unknown_rv3_status_is_kept_as_a_flag_not_guessed() -> None:
    plan = plan_change(None, snap(status_name="En espera"), None, RULES)
    assert plan.values is not None and plan.values.status is AppointmentStatus.scheduled
    assert plan.flags == ["unknown_rv3_status:En espera"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"hour": None}, "rv3_without_hour"),
        ({"deleted": True}, "deleted_in_rv3"),
        ({"status_name": "CANCELADO"}, "cancelled_before_sync"),
    ],
)
def test_rows_that_cannot_or_need_not_reach_ghl_are_skipped(overrides: dict[str, Any], reason: str) -> None:
    plan = plan_change(None, snap(**overrides), None, RULES)
    assert (plan.kind, plan.reason) == (PlanKind.skip, reason)


def test_history_is_not_brought_to_ghl() -> None:
    rules = RULES.model_copy(update={"not_before": date(2030, 3, 13)})
    plan = plan_change(None, snap(), None, rules)
    assert (plan.kind, plan.reason) == (PlanKind.skip, "in_the_past")
    assert plan_change(snap(), snap(hour=time(9)), created(), rules).kind is PlanKind.update


def test_without_a_calendar_nothing_is_created() -> None:
    plan = plan_change(None, snap(), None, RULES.model_copy(update={"default_calendar_id": None}))
    assert (plan.kind, plan.reason) == (PlanKind.skip, "no_calendar")


def test_a_re_read_row_changes_nothing() -> None:
    stored = created()
    assert plan_change(snap(), snap(), stored, RULES).kind is PlanKind.unchanged


def test_an_edit_of_a_column_not_synced_is_no_change() -> None:
    stored = created()
    plan = plan_change(snap(), snap(room=2, appointment_type="Reflexología"), stored, RULES)
    assert plan.kind is PlanKind.unchanged


def test_moving_the_hour_moves_the_appointment_and_keeps_a_length_changed_in_ghl() -> None:
    stored = created().model_copy(update={"end": created().start + timedelta(minutes=45), "title": "Título de GHL"})
    plan = plan_change(snap(), snap(hour=time(16, 30)), stored, RULES)
    assert plan.kind is PlanKind.update and plan.values is not None
    assert plan.values.start == datetime(2030, 3, 12, 21, 30, tzinfo=UTC)
    assert plan.values.end - plan.values.start == timedelta(minutes=45)
    assert plan.values.title == "Título de GHL"  # RV3 did not change the type or room: GHL's title stays


def test_cancelling_or_deleting_in_rv3_cancels() -> None:
    stored = created()
    assert plan_change(snap(), snap(status_name="CANCELADO"), stored, RULES).kind is PlanKind.cancel
    deleted = plan_change(snap(), snap(deleted=True), stored, RULES)
    assert deleted.kind is PlanKind.cancel and deleted.values is not None
    assert deleted.values.status is AppointmentStatus.cancelled


def test_a_restored_appointment_comes_back_with_its_rv3_status() -> None:
    cancelled = created().model_copy(update={"status": AppointmentStatus.cancelled})
    plan = plan_change(snap(deleted=True), snap(), cancelled, RULES)
    assert plan.kind is PlanKind.update and plan.values is not None
    assert plan.values.status is AppointmentStatus.scheduled


def test_giving_the_appointment_to_another_patient_rebooks_it() -> None:
    assert plan_change(snap(), snap(patient_id=6), created(), RULES).kind is PlanKind.rebook


def test_a_new_therapist_reassigns_the_appointment() -> None:
    plan = plan_change(snap(), snap(therapist_id=8), created(), RULES)
    assert plan.values is not None
    assert (plan.values.assigned_user_id, plan.values.calendar_id) == ("usr_luis", "cal_luis")


def test_the_cursor_never_moves_back_nor_jumps_to_a_stamp_from_a_wrong_clock() -> None:
    start = Cursor(updated_at=datetime(2030, 3, 1, 9), id=4)
    seen = [
        Cursor(updated_at=datetime(2030, 3, 1, 8), id=9),
        Cursor(updated_at=datetime(2030, 3, 1, 9), id=7),
        Cursor(updated_at=datetime(2099, 1, 1), id=1),
    ]
    assert advance_cursor(start, seen, not_after=datetime(2030, 3, 2)) == Cursor(
        updated_at=datetime(2030, 3, 1, 9), id=7
    )


def test_a_cursor_that_jumped_past_rv3s_now_comes_back_to_it() -> None:
    jumped = Cursor(updated_at=datetime(2030, 3, 1, 14, 0, 5), id=3)  # a UTC stamp, 5 h ahead of Lima
    rv3_now = datetime(2030, 3, 1, 9, 0, 0, 250000)
    assert advance_cursor(jumped, [], not_after=rv3_now) == Cursor(updated_at=rv3_now, id=0)


def test_the_syncs_stamps_are_rv3s_naive_lima_wall_time_with_microseconds() -> None:
    now = datetime(2030, 3, 1, 14, 0, 5, 123456, tzinfo=UTC)
    assert rv3_wall_clock(now, "America/Lima") == datetime(2030, 3, 1, 9, 0, 5, 123456)


# --- GHL → RV3 ---


def synced(start: datetime, status: AppointmentStatus = AppointmentStatus.scheduled) -> SyncedAppointment:
    return SyncedAppointment(
        calendar_id="cal_main", start=start, end=start + timedelta(hours=1), status=status, title="Cita"
    )


def test_a_ghl_reschedule_becomes_rv3_date_and_hour_in_lima() -> None:
    target = writeback_target(synced(datetime(2030, 3, 13, 2, 30, tzinfo=UTC)), "America/Lima", STATUSES)
    assert (target.day, target.hour) == (date(2030, 3, 12), time(21, 30))
    assert (target.status_id, target.status_name) == (1, "Pendiente")


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (AppointmentStatus.attended, "Completado"),
        (AppointmentStatus.cancelled, "CANCELADO"),
        (AppointmentStatus.confirmed, "Pendiente"),
    ],
)
def test_ghl_statuses_find_rv3_status_rows_by_name(status: AppointmentStatus, name: str) -> None:
    found = STATUSES.row_for(status)
    assert found is not None and found.name == name


def test_a_no_show_keeps_rv3_status_unless_the_clinic_has_one() -> None:
    assert STATUSES.row_for(AppointmentStatus.no_show) is None
    clinic = Rv3StatusMap.of([*ROWS, Rv3Status(id=9, name="No asistió")])
    found = clinic.row_for(AppointmentStatus.no_show)
    assert found is not None and found.id == 9


def test_an_older_rv3_with_its_enum_names_still_gets_a_status() -> None:
    older = Rv3StatusMap.of([Rv3Status(id=1, name="ACTIVO"), Rv3Status(id=2, name="COMPLETADO")])
    scheduled = older.row_for(AppointmentStatus.scheduled)
    attended = older.row_for(AppointmentStatus.attended)
    assert (scheduled and scheduled.id, attended and attended.id) == (1, 2)


def test_a_ghl_change_is_written_over_an_rv3_row_nobody_touched() -> None:
    target = writeback_target(synced(datetime(2030, 3, 12, 20, tzinfo=UTC)), "America/Lima", STATUSES)
    assert decide_writeback(snap(), snap(), target) is WritebackKind.write
    written = after_write(snap(), target)
    assert (written.day, written.hour, written.status) == (date(2030, 3, 12), time(15, 0), "Pendiente")


def test_a_front_desk_edit_of_the_same_columns_is_not_overwritten() -> None:
    target = writeback_target(synced(datetime(2030, 3, 12, 20, tzinfo=UTC)), "America/Lima", STATUSES)
    assert decide_writeback(snap(), snap(hour=time(11, 0)), target) is WritebackKind.conflict
    assert decide_writeback(snap(), snap(status_name="Completado"), target) is WritebackKind.conflict


def test_a_front_desk_edit_of_other_columns_does_not_block_the_write() -> None:
    target = writeback_target(synced(datetime(2030, 3, 12, 20, tzinfo=UTC)), "America/Lima", STATUSES)
    assert decide_writeback(snap(), snap(room=5, therapist_id=8), target) is WritebackKind.write


def test_a_write_already_in_rv3_is_not_repeated_and_a_deleted_row_is_left_alone() -> None:
    target = writeback_target(synced(datetime(2030, 3, 12, 20, tzinfo=UTC)), "America/Lima", STATUSES)
    done = snap(hour=time(15, 0))
    assert decide_writeback(snap(), done, target) is WritebackKind.already
    assert decide_writeback(snap(), snap(deleted=True), target) is WritebackKind.missing
    assert decide_writeback(snap(), None, target) is WritebackKind.missing


def test_the_sync_recognises_its_own_write_back_when_reading_rv3_again() -> None:
    stored = created()
    moved = stored.model_copy(
        update={"start": stored.start + timedelta(hours=5), "end": stored.end + timedelta(hours=5)}
    )
    target = writeback_target(moved, "America/Lima", STATUSES)
    remembered = after_write(snap(), target)
    reread = snap(hour=time(15, 0))
    assert reread == remembered
    assert plan_change(remembered, reread, moved, RULES).kind is PlanKind.unchanged


def test_a_ghl_booking_becomes_a_pending_rv3_appointment_without_a_therapist() -> None:
    # In RV3 a therapist is given when the patient is attended: the booking's GHL user is not written as one.
    values = synced(datetime(2030, 3, 12, 14, tzinfo=UTC)).model_copy(update={"assigned_user_id": "usr_luis"})
    new = new_rv3_appointment(values, patient_id=5, timezone="America/Lima", statuses=STATUSES)
    assert (new.patient_id, new.therapist_id, new.day, new.hour, new.status_id) == (
        5,
        None,
        date(2030, 3, 12),
        time(9),
        1,
    )


# --- patients and contacts ---


def patient(**overrides: Any) -> Rv3Patient:
    values: dict[str, Any] = {
        "id": 5,
        "name": "Ana María",
        "last_name_paternal": "Quispe",
        "last_name_maternal": None,
        "phone1": "987 654 321",
        "email": "Ana@Example.PE",
    }
    values.update(overrides)
    return Rv3Patient(**values)


def test_an_rv3_patient_becomes_a_ghl_contact_with_rv3_split_surnames_and_e164_phone() -> None:
    draft = contact_for(patient(), "loc")
    assert (draft.first_name, draft.last_name, draft.phone, draft.email) == (
        "Ana María",
        "Quispe",
        "+51987654321",
        "Ana@example.pe",
    )


def test_the_worker_split_of_one_full_name_is_corrected_only_when_it_differs() -> None:
    exact = contact_for(patient(), "loc")
    guessed = contact_from_link(exact.name, exact.phone, exact.email, "loc")
    assert contact_digest(exact) != contact_digest(guessed)  # "Ana" / "María Quispe" by convention
    both = contact_for(patient(last_name_maternal="Huamán"), "loc")
    assert contact_digest(both) == contact_digest(contact_from_link(both.name, both.phone, both.email, "loc"))


def test_a_contact_shared_by_a_family_keeps_its_name() -> None:
    body = contact_update_body(contact_for(patient(), "loc"), shared=True)
    assert body == {"phone": "+51987654321", "email": "Ana@example.pe"}


def test_a_ghl_contact_becomes_an_rv3_patient_with_peruvian_surnames_and_local_phone() -> None:
    new = new_rv3_patient(GhlPerson(name="Rosa Elena Flores Quispe", phone="+51987000111", email="r@x.pe"))
    assert new is not None
    assert (new.name, new.last_name_paternal, new.last_name_maternal) == ("Rosa Elena", "Flores", "Quispe")
    assert (new.phone1, new.email) == ("987000111", "r@x.pe")
    short = new_rv3_patient(GhlPerson(name="Luis Flores", phone="+34612345678"))
    assert short is not None
    assert (short.name, short.last_name_paternal, short.last_name_maternal, short.phone1) == (
        "Luis",
        "Flores",
        None,
        "+34612345678",
    )
    assert new_rv3_patient(GhlPerson(name=None)) is None


def test_a_ghl_contact_matches_an_rv3_patient_by_email_or_phone_and_first_name_never_phone_alone() -> None:
    mother = patient(id=1, name="Rosa", email="rosa@x.pe", phone1="987000111")
    son = patient(id=2, name="Pedro", email=None, phone1="987000111")
    assert match_patient(GhlPerson(name="X", email="ROSA@x.pe"), [mother, son]) == mother
    assert match_patient(GhlPerson(name="Pedro Flores", phone="+51987000111"), [mother, son]) == son
    assert match_patient(GhlPerson(name="Lucía", phone="+51987000111"), [mother, son]) is None
