"""The reconciliation diff: the merge-join of two sorted streams, each kind of drift, in-flight exclusion, the
fix auto-heal chooses, time-slice sizing, and the report (totals, listing cap, resume from JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.hashing import SyncedFields
from sync_core.reconcile import (
    MAX_LISTED,
    TOTALS,
    GhlRecord,
    HealDirection,
    Kind,
    ReconciliationReport,
    ReportWindow,
    Rv3Record,
    SlicePlan,
    UnsortedStream,
    classify,
    decide_heal,
    first_slice,
    merge_join,
    next_slice,
)

from .conftest import LIMA

T = TypeVar("T")
START = datetime(2025, 12, 22, 15, tzinfo=UTC)  # 10:00 Lima


class Once(Generic[T]):
    """An input that can be read only once, lazily; it counts how far it has been read."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items = list(items)
        self.read = 0
        self._used = False

    def __iter__(self) -> Iterator[T]:
        if self._used:
            raise AssertionError("stream consumed twice")
        self._used = True
        for item in self._items:
            self.read += 1
            yield item


def fields(**overrides: Any) -> SyncedFields:
    values: dict[str, Any] = {
        "calendar_id": "cal1",
        "contact_id": "con1",
        "start": START,
        "end": START + timedelta(hours=1),
        "status": "scheduled",
        "title": "Terapia - Ana",
        "assigned_user_id": None,
    }
    values.update(overrides)
    return SyncedFields(**values)


def rv3(event_id: str | None = "ev1", **overrides: Any) -> Rv3Record:
    """An RV3 appointment as the sync stores it."""
    extra = {k: overrides.pop(k) for k in ("in_flight", "id") if k in overrides}
    return Rv3Record(id=str(extra.pop("id", "7")), ghl_event_id=event_id, fields=fields(**overrides), **extra)


def ghl(event_id: str = "ev1", **overrides: Any) -> GhlRecord:
    data: dict[str, Any] = {
        "id": event_id,
        "calendarId": "cal1",
        "contactId": "con1",
        "locationId": "loc1",
        "title": "Terapia - Ana",
        "appointmentStatus": "new",
        "startTime": "2025-12-22T10:00:00-05:00",
        "endTime": "2025-12-22T11:00:00-05:00",
        "dateUpdated": "2025-12-21T09:00:00Z",
    }
    data.update(overrides)
    return GhlRecord.of(parse_ghl_appointment(data, tz=LIMA))


# --- merge-join -----------------------------------------------------------------------------------------------


def test_the_join_pairs_each_appointment_with_its_event_reading_each_stream_once() -> None:
    local = Once([rv3(None, id="1"), rv3("ev1", id="2"), rv3("ev3", id="3")])
    remote = Once([ghl("ev1"), ghl("ev2"), ghl("ev3")])
    pairs = [(p.rv3.id if p.rv3 else None, p.ghl.id if p.ghl else None) for p in merge_join(local, remote)]
    assert pairs == [("1", None), ("2", "ev1"), (None, "ev2"), ("3", "ev3")]


def test_the_join_holds_one_record_of_each_stream_at_a_time() -> None:
    local = Once([rv3(f"ev{i:03d}", id=str(i)) for i in range(100)])
    remote = Once([ghl(f"ev{i:03d}") for i in range(100)])
    pairs = merge_join(local, remote)
    next(pairs)
    assert (local.read, remote.read) == (1, 1)
    next(pairs)
    assert (local.read, remote.read) == (2, 2)


def test_ids_are_joined_in_code_point_order_as_a_binary_collation_sorts_them() -> None:
    local = [rv3("Zeta", id="1"), rv3("alpha", id="2")]  # "Z" < "a": a case-insensitive sort would swap them
    remote = [ghl("Zeta"), ghl("alpha")]
    assert all(p.rv3 and p.ghl for p in merge_join(local, remote))


def test_an_unsorted_stream_is_refused_instead_of_mismatching() -> None:
    with pytest.raises(UnsortedStream):
        list(merge_join([rv3("ev2", id="1"), rv3("ev1", id="2")], []))
    with pytest.raises(UnsortedStream):
        list(merge_join([], [ghl("ev1"), ghl("ev1")]))
    with pytest.raises(UnsortedStream):
        list(merge_join([rv3("ev1", id="1"), rv3(None, id="2")], []))


@given(
    st.sets(st.text("abcXYZ019", min_size=1, max_size=4), max_size=30),
    st.sets(st.text("abcXYZ019", min_size=1, max_size=4), max_size=30),
    st.integers(0, 3),
)
def test_the_join_equals_a_full_outer_join_by_event_id(local_ids: set[str], ghl_ids: set[str], unlinked: int) -> None:
    local = [rv3(None, id=f"n{i}") for i in range(unlinked)] + [rv3(i, id=i) for i in sorted(local_ids)]
    pairs = list(merge_join(local, [ghl(i) for i in sorted(ghl_ids)]))
    joined = {(p.rv3.ghl_event_id if p.rv3 else None, p.ghl.id if p.ghl else None) for p in pairs}
    expected = {(i if i in local_ids else None, i if i in ghl_ids else None) for i in local_ids | ghl_ids}
    assert joined - {(None, None)} == expected
    assert len(pairs) == len(local_ids | ghl_ids) + unlinked


# --- kinds of drift -------------------------------------------------------------------------------------------


def test_same_appointment_on_both_sides_is_no_drift() -> None:
    finding = classify(rv3(), ghl())
    assert (finding.kind, finding.drift) == (Kind.matched, False)


def test_an_event_only_ghl_has_is_missing_locally() -> None:
    finding = classify(None, ghl())
    assert (finding.kind, finding.drift) == (Kind.missing_local, True)


def test_an_event_cancelled_in_ghl_that_rv3_never_had_needs_nothing() -> None:
    assert classify(None, ghl(appointmentStatus="cancelled")).kind == Kind.ignored


def test_an_appointment_never_sent_to_ghl_is_missing_in_ghl() -> None:
    finding = classify(rv3(None), None)
    assert (finding.kind, finding.reason) == (Kind.missing_ghl, "never_sent")


def test_an_appointment_cancelled_before_reaching_ghl_needs_nothing() -> None:
    assert classify(rv3(None, status="cancelled"), None).kind == Kind.ignored


def test_an_event_deleted_in_ghl_is_a_cancellation_rv3_missed() -> None:
    finding = classify(rv3(), None)
    assert (finding.kind, finding.reason) == (Kind.cancelled_one_side, "deleted_in_ghl")


def test_a_cancellation_in_ghl_only_is_reported_as_such() -> None:
    finding = classify(rv3(), ghl(appointmentStatus="cancelled"))
    assert (finding.kind, finding.reason) == (Kind.cancelled_one_side, "cancelled_in_ghl")
    assert finding.campos == {"status": {"rv3": "scheduled", "ghl": "cancelled"}}


def test_a_cancellation_in_rv3_only_is_reported_as_such() -> None:
    finding = classify(rv3(status="cancelled"), ghl())
    assert (finding.kind, finding.reason) == (Kind.cancelled_one_side, "cancelled_in_rv3")


def test_cancelled_on_both_sides_is_no_drift_whatever_else_differs() -> None:
    finding = classify(rv3(status="cancelled"), ghl(appointmentStatus="cancelled", title="Otra"))
    assert finding.kind == Kind.matched


def test_differing_fields_are_listed_with_both_values() -> None:
    finding = classify(
        rv3(title="Terapia - Ana (control)"),
        ghl(startTime="2025-12-22T12:00:00-05:00", endTime="2025-12-22T13:00:00-05:00"),
    )
    assert finding.kind == Kind.out_of_sync
    assert finding.campos == {
        "start": {"rv3": "2025-12-22T15:00:00Z", "ghl": "2025-12-22T17:00:00Z"},
        "end": {"rv3": "2025-12-22T16:00:00Z", "ghl": "2025-12-22T18:00:00Z"},
        "title": {"rv3": "Terapia - Ana (control)", "ghl": "Terapia - Ana"},
    }


@pytest.mark.parametrize(
    ("local", "remote"),
    [
        ({}, {"assignedUserId": "usr_ana"}),  # GHL assigns a calendar member to a booking sent without one
        ({}, {"appointmentStatus": "rescheduled"}),  # a status RV3 cannot map is flagged, never applied
        ({}, {"title": ""}),
        ({"contact_id": None}, {}),  # the patient's GHL contact is not resolved yet
        ({"title": "x" * 255}, {"title": "x" * 300}),  # RV3 stores 255 characters of a title
        ({"status": "confirmed"}, {"appointmentStatus": "confirmed"}),
    ],
)
def test_what_only_looks_different_is_no_drift(local: dict[str, Any], remote: dict[str, Any]) -> None:
    assert classify(rv3(**local), ghl(**remote)).kind == Kind.matched


def test_a_different_assignee_is_drift_when_rv3_has_one() -> None:
    finding = classify(rv3(assigned_user_id="usr_ana"), ghl(assignedUserId="usr_luis"))
    assert finding.campos == {"assigned_user_id": {"rv3": "usr_ana", "ghl": "usr_luis"}}


def test_an_appointment_whose_sync_is_in_flight_is_not_drift() -> None:
    for finding in (
        classify(rv3(None, in_flight=True), None),
        classify(rv3(in_flight=True, title="Editada"), ghl()),
        classify(rv3(in_flight=True, status="cancelled"), ghl()),
    ):
        assert (finding.kind, finding.drift) == (Kind.in_flight, False)


# --- auto-heal ------------------------------------------------------------------------------------------------


def heal(local: Rv3Record | None, remote: GhlRecord | None) -> Any:
    decided = decide_heal(classify(local, remote))
    return (decided.direction, decided.reason) if decided else None


def test_an_appointment_ghl_never_got_is_sent() -> None:
    assert heal(rv3(None), None) == (HealDirection.to_ghl, "missing_in_ghl")


@pytest.mark.parametrize(
    ("local", "remote", "reason"),
    [
        (None, {}, "missing_in_rv3"),  # a missed booking
        ({}, None, "deleted_in_ghl"),  # a missed deletion
        ({}, {"appointmentStatus": "cancelled"}, "differs"),  # a missed cancellation
        ({"status": "cancelled"}, {}, "differs"),  # a cancellation that never reached GHL
        ({"title": "Editada en RV3"}, {"title": "Editada en GHL"}, "differs"),  # both changed
    ],
)
def test_every_other_difference_goes_to_the_protocol_as_ghl_state_read_now(
    local: dict[str, Any] | None, remote: dict[str, Any] | None, reason: str
) -> None:
    # Which side is right (the newest edit, or the policy for a true conflict) is `sync_core.protocol`'s call,
    # as for the webhook GHL did not deliver: the heal never decides it on its own.
    local_record = rv3(**local) if local is not None else None
    remote_record = ghl(**remote) if remote is not None else None
    assert heal(local_record, remote_record) == (HealDirection.newest, reason)


def test_no_difference_needs_no_fix() -> None:
    assert heal(rv3(), ghl()) is None
    assert heal(rv3(in_flight=True, title="x"), ghl()) is None


# --- time slices ----------------------------------------------------------------------------------------------


def test_a_busy_slice_is_halved_until_it_fits() -> None:
    plan = SlicePlan(longest=timedelta(days=1), shortest=timedelta(minutes=15), max_events=100)
    assert next_slice(timedelta(hours=8), 100, plan) == (False, timedelta(hours=4))
    assert next_slice(timedelta(minutes=15), 400, plan) == (True, timedelta(minutes=15))  # cannot narrow more
    assert next_slice(timedelta(hours=4), 60, plan) == (True, timedelta(hours=4))
    assert next_slice(timedelta(hours=4), 10, plan) == (True, timedelta(hours=8))  # sparse: grow back
    assert next_slice(timedelta(hours=16), 0, plan) == (True, timedelta(days=1))


def test_the_first_slice_is_sized_from_the_expected_density() -> None:
    plan = SlicePlan(longest=timedelta(days=1), shortest=timedelta(minutes=1), max_events=500)
    assert first_slice(timedelta(days=1), 0, plan) == timedelta(days=1)
    assert first_slice(timedelta(days=1), 50_000, plan) == timedelta(days=1) * 250 / 50_000
    assert first_slice(timedelta(days=1), 10**9, plan) == timedelta(minutes=1)


# --- the report -----------------------------------------------------------------------------------------------


def empty_report() -> ReconciliationReport:
    window = ReportWindow(desde=START - timedelta(days=1), hasta=START + timedelta(days=1))
    return ReconciliationReport(fecha=START, location_id="loc1", window=window)


def test_the_report_lists_each_difference_under_its_kind_and_counts_everything() -> None:
    report = empty_report()
    steps = [(rv3("ev1", id="1"), ghl("ev1")), (None, ghl("ev2")), (rv3("ev3", id="3", title="x"), ghl("ev3")),
             (rv3(None, id="4"), None), (rv3("ev5", id="5", in_flight=True), None)]  # fmt: skip
    for local, remote in steps:
        report.add(classify(local, remote))
    assert report.drift == 3
    assert [e["ghl_event_id"] for e in report.faltantes_local] == ["ev2"]
    assert [e["id"] for e in report.faltantes_ghl] == ["4"]
    assert report.desincronizadas == [
        {"id": "3", "ghl_event_id": "ev3", "campos": {"title": {"rv3": "x", "ghl": "Terapia - Ana"}}}
    ]
    counted = {name: count for name, count in report.totales.items() if count}
    assert counted == {
        "coincidentes": 1,
        "faltantes_local": 1,
        "desincronizadas": 1,
        "faltantes_ghl": 1,
        "en_curso": 1,
        "drift": 3,
    }
    assert set(report.totales) == set(TOTALS)  # every count is there, zero or not


def test_a_cancellation_is_listed_with_the_side_that_cancelled() -> None:
    report = empty_report()
    report.add(classify(rv3(), ghl(appointmentStatus="cancelled")))
    report.add(classify(rv3("ev2", id="8"), None))
    assert [(e["cancelada_en"], e["motivo"], e["estado"]) for e in report.canceladas_no_actualizadas] == [
        ("ghl", "cancelled_in_ghl", {"rv3": "scheduled", "ghl": "cancelled"}),
        ("ghl", "deleted_in_ghl", {"rv3": "scheduled", "ghl": "eliminada"}),
    ]


def test_a_huge_drift_is_counted_in_full_but_listed_up_to_the_cap() -> None:
    report = empty_report()
    for i in range(MAX_LISTED + 5):
        report.add(classify(None, ghl(f"ev{i}")))
    assert len(report.faltantes_local) == MAX_LISTED
    assert (report.totales["faltantes_local"], report.totales["no_listadas"], report.drift) == (
        MAX_LISTED + 5,
        5,
        MAX_LISTED + 5,
    )


def test_a_report_stored_at_a_checkpoint_resumes_where_it_was() -> None:
    report = empty_report()
    finding = classify(None, ghl("ev9"))
    report.add(finding)
    decided = decide_heal(finding)
    assert decided is not None
    report.add_action(finding, decided, "reconcile:run:ev9")
    resumed = ReconciliationReport.model_validate(report.model_dump(mode="json"))
    resumed.add(classify(rv3(None, id="3"), None))
    assert resumed.drift == 2
    assert resumed.acciones == [
        {"tipo": "conciliar", "hallazgo": "faltantes_local", "motivo": "missing_in_rv3", "id": None,
         "ghl_event_id": "ev9", "referencia": "reconcile:run:ev9"}
    ]  # fmt: skip
