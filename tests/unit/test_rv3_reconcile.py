"""RV3's own rows against the sync's appointments: what is drift, what is still on its way, how each is healed,
and the days RV3 is read by."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from sync_core.models import AppointmentStatus
from sync_core.reconcile import HealDirection, Kind
from sync_core.rv3_mapping import (
    Cursor,
    MappingRules,
    Rv3Appointment,
    Rv3Snapshot,
    SyncedAppointment,
)
from sync_core.rv3_reconcile import LinkedAppointment, Rv3Context, classify_rv3, rv3_days, starts_between
from sync_core.rv3_statuses import Rv3Status, Rv3StatusMap

STATUSES = Rv3StatusMap.of(
    [Rv3Status(id=1, name="Pendiente"), Rv3Status(id=2, name="Completado"), Rv3Status(id=3, name="CANCELADO")]
)
STAMP = datetime(2030, 3, 1, 9, 0)  # RV3's stamp of the rows: behind the capture's cursor
CONTEXT = Rv3Context(
    rules=MappingRules(timezone="America/Lima", duration_min=60, default_calendar_id="cal_main", statuses=STATUSES),
    next_scan=Cursor(updated_at=datetime(2030, 3, 2), id=0),
)
TEN_LIMA = datetime(2030, 3, 12, 15, tzinfo=UTC)


def row(**overrides: Any) -> Rv3Appointment:
    values: dict[str, Any] = {
        "id": 101,
        "patient_id": 5,
        "appointment_date": date(2030, 3, 12),
        "hour": time(10, 0),
        "status_id": 1,
        "status_name": "Pendiente",
        "appointment_type": "Reflexología",
        "room": "2",
        "updated_at": STAMP,
    }
    values.update(overrides)
    return Rv3Appointment(**values)


def linked(seen: Rv3Appointment | None = None, **overrides: Any) -> LinkedAppointment:
    """The sync's appointment of `row()` as the capture left it, with `overrides` (values or link fields)."""
    values = SyncedAppointment(
        calendar_id="cal_main",
        start=TEN_LIMA,
        end=TEN_LIMA + timedelta(hours=1),
        status=AppointmentStatus.scheduled,
        title="Reflexología - Consultorio 2",
    )
    value_fields = {k: overrides.pop(k) for k in list(overrides) if k in SyncedAppointment.model_fields}
    data: dict[str, Any] = {
        "appointment_id": 7,
        "rv3_id": 101,
        "ghl_event_id": "ev7",
        "values": values.model_copy(update=value_fields),
        "snapshot": Rv3Snapshot.of(seen or row()),
    }
    data.update(overrides)
    return LinkedAppointment(**data)


def test_a_row_as_the_sync_holds_it_is_no_drift() -> None:
    assert classify_rv3(row(), linked(), CONTEXT).kind is Kind.matched


def test_an_rv3_edit_the_capture_missed_is_out_of_sync_and_goes_to_ghl_as_the_capture_would_send_it() -> None:
    moved = row(hour=time(16, 0))
    finding = classify_rv3(moved, linked(), CONTEXT)
    assert (finding.kind, finding.reason) == (Kind.out_of_sync, "changed_in_rv3")
    assert finding.campos == {
        "start": {"rv3": "2030-03-12T21:00:00Z", "ghl": "2030-03-12T15:00:00Z"},
        "end": {"rv3": "2030-03-12T22:00:00Z", "ghl": "2030-03-12T16:00:00Z"},
    }
    assert finding.heal is not None and finding.heal.direction is HealDirection.to_ghl
    assert finding.recapture == Rv3Snapshot.of(moved)


def test_the_same_edit_still_ahead_of_the_capture_is_in_flight() -> None:
    fresh = row(hour=time(16, 0), updated_at=datetime(2030, 3, 2, 0, 0, 1))
    assert classify_rv3(fresh, linked(), CONTEXT).kind is Kind.in_flight


def test_a_lost_write_back_is_drift_even_when_the_capture_will_read_the_row_again() -> None:
    # GHL moved it to 19:00 and cancelled nothing; RV3 still has 10:00, as the sync last wrote it.
    moved_in_ghl = {"start": TEN_LIMA + timedelta(hours=9), "end": TEN_LIMA + timedelta(hours=10)}
    for stamp in (STAMP, datetime(2030, 3, 2, 0, 0, 1)):
        finding = classify_rv3(row(updated_at=stamp), linked(**moved_in_ghl), CONTEXT)
        assert (finding.kind, finding.reason) == (Kind.out_of_sync, "writeback_missing")
        assert finding.campos == {"start": {"rv3": "2030-03-12T15:00:00Z", "ghl": "2030-03-13T00:00:00Z"}}
        assert finding.heal is not None and finding.heal.direction is HealDirection.to_rv3


def test_a_cancellation_in_ghl_rv3_never_got_is_listed_as_cancelled_in_ghl() -> None:
    finding = classify_rv3(row(), linked(status=AppointmentStatus.cancelled), CONTEXT)
    assert (finding.kind, finding.entry()["cancelada_en"]) == (Kind.cancelled_one_side, "ghl")
    assert finding.campos == {"status": {"rv3": "scheduled", "ghl": "cancelled"}}
    assert finding.heal is not None and finding.heal.direction is HealDirection.to_rv3


@pytest.mark.parametrize(
    "values",
    [
        {"status": AppointmentStatus.confirmed},  # RV3 has one "Pendiente" for new and confirmed
        {"status": AppointmentStatus.no_show},  # RV3 has no no-show status: its row stays as it was
        {"title": "Renombrada en GHL", "end": TEN_LIMA + timedelta(minutes=90)},  # GHL-side fields
    ],
    ids=["confirmed", "no-show", "title-and-length"],
)
def test_what_rv3_cannot_hold_or_does_not_take_back_is_no_drift(values: dict[str, Any]) -> None:
    assert classify_rv3(row(), linked(**values), CONTEXT).kind is Kind.matched


def test_a_row_deleted_from_rv3_is_cancelled_in_ghl_as_the_sweep_would() -> None:
    finding = classify_rv3(None, linked(), CONTEXT)
    assert (finding.kind, finding.reason, finding.estado) == (
        Kind.cancelled_one_side,
        "deleted_in_rv3",
        {"rv3": "eliminada", "ghl": "scheduled"},
    )
    assert finding.recapture == Rv3Snapshot.of(row()).model_copy(update={"deleted": True})
    assert classify_rv3(None, linked(status=AppointmentStatus.cancelled), CONTEXT).kind is Kind.matched


def test_a_patient_change_the_capture_missed_rebooks_through_the_capture() -> None:
    finding = classify_rv3(row(patient_id=6), linked(), CONTEXT)
    assert (finding.kind, finding.campos) == (Kind.out_of_sync, {"patient_id": {"rv3": "6", "ghl": "5"}})
    assert finding.heal is not None and finding.heal.direction is HealDirection.to_ghl


def test_a_row_never_captured_is_missing_in_ghl_unless_the_capture_would_skip_it() -> None:
    finding = classify_rv3(row(), None, CONTEXT)
    assert (finding.kind, finding.reason) == (Kind.missing_ghl, "never_captured")
    assert finding.entry()["start"] == "2030-03-12T15:00:00Z"
    assert classify_rv3(row(status_name="CANCELADO"), None, CONTEXT).reason == "not_synced:cancelled_before_sync"
    assert classify_rv3(row(hour=None), None, CONTEXT).reason == "not_synced:rv3_without_hour"
    assert classify_rv3(row(updated_at=None), None, CONTEXT).kind is Kind.missing_ghl  # never read: no stamp


def test_a_ghl_booking_rv3_never_got_is_missing_locally_unless_it_waits_for_the_front_desk() -> None:
    booking = linked(rv3_id=None, snapshot=None)
    finding = classify_rv3(None, booking, CONTEXT)
    assert (finding.kind, finding.entry()["origen"]) == (Kind.missing_local, "rv3")
    assert finding.heal is not None and finding.heal.direction is HealDirection.to_rv3
    assert classify_rv3(None, linked(rv3_id=None, in_review=True), CONTEXT).kind is Kind.ignored
    assert classify_rv3(None, linked(rv3_id=None, pending=True), CONTEXT).kind is Kind.in_flight


def test_an_appointment_with_a_change_on_its_way_is_in_flight() -> None:
    assert classify_rv3(row(hour=time(16)), linked(pending=True), CONTEXT).kind is Kind.in_flight


def test_rv3_is_read_by_local_day_cut_to_the_window() -> None:
    start, end = datetime(2030, 3, 4, 12, tzinfo=UTC), datetime(2030, 3, 6, 5, tzinfo=UTC)
    days = list(rv3_days(start, end, "America/Lima"))
    assert [(d.day, d.start, d.end) for d in days] == [
        (date(2030, 3, 4), start, datetime(2030, 3, 5, 5, tzinfo=UTC)),
        (date(2030, 3, 5), datetime(2030, 3, 5, 5, tzinfo=UTC), end),
    ]
    assert starts_between(row(appointment_date=date(2030, 3, 4), hour=time(7)), "America/Lima", start, end)
    assert not starts_between(row(appointment_date=date(2030, 3, 4), hour=time(6)), "America/Lima", start, end)
