"""RV3's statuses, which each clinic names itself: read by the location's mapping or their name, written by id,
and what cannot be read or written said, never guessed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import (
    MappingRules,
    PlanKind,
    Rv3Snapshot,
    SyncedAppointment,
    describe_refusal,
    plan_change,
    unwritable_status,
    writeback_target,
)
from sync_core.rv3_statuses import (
    MappingRefused,
    Rv3Status,
    Rv3StatusMap,
    StatusChoice,
    changed_meanings,
    checked_choices,
    status_by_name,
)

S = AppointmentStatus
# A clinic's own statuses: RV3 seeds none, names need not be unique.
CLINIC = [
    Rv3Status(id=4, name="Pendiente"),
    Rv3Status(id=5, name="Completado"),
    Rv3Status(id=6, name="Baja"),
    Rv3Status(id=7, name="En espera"),
    Rv3Status(id=8, name="Baja"),
]


def choice(status_id: int, status: AppointmentStatus, write: bool = False) -> StatusChoice:
    return StatusChoice(rv3_status_id=status_id, status=status, write=write)


def snap(status: str | None = "Pendiente", **overrides: Any) -> Rv3Snapshot:
    values: dict[str, Any] = {
        "patient_id": 5,
        "therapist_id": None,
        "day": date(2030, 3, 12),
        "hour": time(10),
        "status": status,
        "type": "Reflexología",
        "room": "2",
        "deleted": False,
    }
    return Rv3Snapshot(**{**values, **overrides})


def synced(status: AppointmentStatus) -> SyncedAppointment:
    start = datetime(2030, 3, 12, 15, tzinfo=UTC)
    return SyncedAppointment(
        calendar_id="cal_main", start=start, end=start.replace(hour=16), status=status, title="Reflexología"
    )


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("Cancelada", S.cancelled),
        ("ANULADO", S.cancelled),
        ("Atendida", S.attended),
        ("Confirmada", S.confirmed),
        ("  no   asistió ", S.no_show),
        ("En espera", None),
    ],
)
def test_the_usual_spanish_names_are_read_without_a_mapping(name: str, status: AppointmentStatus | None) -> None:
    assert status_by_name(name) is status


def test_a_mapping_reads_a_clinic_s_own_names_and_writes_by_id() -> None:
    statuses = Rv3StatusMap.of(CLINIC, checked_choices(CLINIC, [choice(6, S.cancelled), choice(8, S.cancelled, True)]))
    assert statuses.status_of("baja") is S.cancelled
    assert statuses.status_of("Pendiente") is S.scheduled  # not mapped: by its name
    written = statuses.row_for(S.cancelled)
    assert written is not None and written.id == 8  # the one marked to write among two of the same meaning
    assert statuses.missing() == []
    assert [row.name for row in statuses.unmapped()] == ["En espera"]


def test_a_mapping_overrides_a_name_and_the_name_is_not_written_for_another_status() -> None:
    # The clinic uses "Completado" for paid-and-closed and wants it read as cancelled: the map wins both ways.
    statuses = Rv3StatusMap.of(CLINIC, [choice(5, S.cancelled)])
    assert statuses.status_of("Completado") is S.cancelled
    assert statuses.row_for(S.attended) is None
    assert statuses.missing() == [S.attended]


def test_an_unmapped_twin_of_a_mapped_name_is_never_written_for_another_status() -> None:
    # Two RV3 statuses named "Pendiente": the clinic maps one as cancelled. Rows are read by name, so the other
    # reads back as cancelled too: it must not be written for a pending appointment.
    twins = [Rv3Status(id=1, name="Pendiente"), Rv3Status(id=2, name="Pendiente"), Rv3Status(id=3, name="Programada")]
    statuses = Rv3StatusMap.of(twins, [choice(1, S.cancelled)])
    written = statuses.row_for(S.scheduled)
    assert written is not None and written.id == 3
    assert statuses.status_of(written.name) is S.scheduled


def test_what_cannot_be_read_or_written_is_said_in_spanish() -> None:
    statuses = Rv3StatusMap.of([Rv3Status(id=1, name="Pendiente"), Rv3Status(id=2, name="En espera")])
    assert statuses.missing() == [S.cancelled, S.attended]
    problems = statuses.problems()
    assert any("«En espera» (id 2)" in line for line in problems)
    assert any("«cancelada»" in line for line in problems) and any("«atendida»" in line for line in problems)
    assert Rv3StatusMap.of([]).missing() == [S.scheduled, S.cancelled, S.attended]  # RV3 seeds none


@pytest.mark.parametrize(
    ("choices", "says"),
    [
        ([choice(99, S.cancelled)], "El estado 99 no existe"),
        ([choice(6, S.cancelled), choice(6, S.attended)], "aparece más de una vez"),
        ([choice(6, S.cancelled), choice(8, S.attended)], "se llaman «Baja»"),
        ([choice(6, S.cancelled, True), choice(8, S.cancelled, True)], "Solo un estado puede escribirse"),
    ],
)
def test_a_mapping_that_cannot_hold_is_refused_with_its_reason(choices: list[StatusChoice], says: str) -> None:
    with pytest.raises(MappingRefused) as refused:
        checked_choices(CLINIC, choices)
    assert any(says in reason for reason in refused.value.reasons)


def test_an_rv3_status_mapped_as_cancelled_cancels_the_appointment_in_ghl() -> None:
    rules = MappingRules(
        timezone="America/Lima", duration_min=60, default_calendar_id="cal_main", statuses=Rv3StatusMap.of(CLINIC)
    )
    unknown = plan_change(snap(), snap("Baja"), synced(S.scheduled), rules)
    assert unknown.kind is PlanKind.unchanged and unknown.flags == ["unknown_rv3_status:Baja"]
    mapped = rules.model_copy(update={"statuses": Rv3StatusMap.of(CLINIC, [choice(6, S.cancelled)])})
    assert plan_change(snap(), snap("Baja"), synced(S.scheduled), mapped).kind is PlanKind.cancel


def test_a_new_mapping_names_the_statuses_whose_meaning_changed() -> None:
    before = Rv3StatusMap.of(CLINIC)
    after = Rv3StatusMap.of(CLINIC, [choice(6, S.cancelled), choice(4, S.scheduled)])
    assert changed_meanings(before, after) == {"baja"}  # "Pendiente" meant pending by its name already


def test_a_ghl_status_rv3_has_no_row_for_is_unwritable_unless_rv3_already_means_it() -> None:
    statuses = Rv3StatusMap.of([Rv3Status(id=1, name="Pendiente"), Rv3Status(id=2, name="Completado")])
    target = writeback_target(synced(S.cancelled), "America/Lima", statuses)
    assert (target.status_id, target.missing_status) == (None, S.cancelled)
    assert unwritable_status(snap("Pendiente"), target, statuses) is S.cancelled
    no_show = writeback_target(synced(S.no_show), "America/Lima", statuses)
    assert no_show.missing_status is None  # RV3 needs no no-show status: the row stays as it is
    confirmed = writeback_target(synced(S.confirmed), "America/Lima", Rv3StatusMap.of([]))
    assert unwritable_status(snap("ACTIVO"), confirmed, Rv3StatusMap.of([])) is None  # pending is confirmed's


def test_a_refused_write_reads_as_its_reason() -> None:
    assert "«cancelada»" in describe_refusal("rv3_status_missing: cancelled")
    said = describe_refusal("rv3_refused: MySQL 1364: Field 'social_benefit' doesn't have a default value")
    assert said.startswith("Reflexo V3 rechazó el cambio") and "social_benefit" in said
