"""Reconciliation of RV3's own tables: each RV3 appointment against the sync's appointment linked to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sync_core.hashing import FieldDiffs
from sync_core.models import AppointmentStatus
from sync_core.reconcile import DRIFT_KINDS, Heal, HealDirection, Kind
from sync_core.rv3_mapping import (
    Cursor,
    MappingRules,
    PlanKind,
    Rv3Appointment,
    Rv3Plan,
    Rv3Snapshot,
    SyncedAppointment,
    describe_refusal,
    holds,
    plan_change,
    rv3_start,
    status_holds,
    unwritable_status,
    writeback_target,
)
from sync_core.times import local_day_bounds, zone

ORIGIN = "rv3"
GONE = "eliminada"  # RV3's state of a row that no longer exists
_DESCRIBED = ("calendar_id", "start", "end", "status", "title")


class LinkedAppointment(BaseModel):
    """The sync's side of an RV3 appointment: the stored appointment, its link to RV3, what is on its way."""

    model_config = ConfigDict(frozen=True)

    appointment_id: int
    rv3_id: int | None  # None: booked in GHL, not created in RV3 yet
    ghl_event_id: str | None
    values: SyncedAppointment
    snapshot: Rv3Snapshot | None  # RV3's values as the sync last read or wrote them
    pending: bool = False  # an outbox entry is open, or a write to RV3 is waiting
    in_review: bool = False  # a GHL booking the front desk has to give a patient
    refused: str | None = None  # RV3 refused its write-back for good: why (`code: RV3's reason`)


class Rv3Context(BaseModel):
    """What comparing RV3's rows needs besides them: the capture's rules (with RV3's statuses), the capture's
    cursor."""

    model_config = ConfigDict(frozen=True)

    rules: MappingRules
    next_scan: Cursor  # where the next capture run starts reading


class Rv3Finding(BaseModel):
    """The outcome of comparing one RV3 appointment; `heal` says how the normal sync path fixes it.

    `recapture` is RV3's state the capture is to apply (RV3 → GHL); a heal toward RV3 asks the write-back.
    """

    model_config = ConfigDict(frozen=True)

    kind: Kind
    reason: str
    rv3_id: int | None = None
    appointment_id: int | None = None
    ghl_event_id: str | None = None
    values: SyncedAppointment | None = None  # the appointment that one side lacks
    campos: FieldDiffs = Field(default_factory=dict)
    estado: dict[str, str] | None = None  # of a cancelled_one_side: each side's status
    heal: Heal | None = None
    recapture: Rv3Snapshot | None = None
    refused: str | None = None  # the write-back RV3 refused, when that is why RV3 differs

    @property
    def drift(self) -> bool:
        return self.kind in DRIFT_KINDS

    def entry(self) -> dict[str, Any]:
        """How the difference is listed: the ids on each side, then what is missing or differs.

        In `campos` and `estado`, `rv3` is RV3's table and `ghl` the sync's appointment (what GHL holds or is
        being sent: the GHL walk checks that part).
        """
        entry: dict[str, Any] = {
            "origen": ORIGIN,
            "rv3_id": self.rv3_id,
            "id": str(self.appointment_id) if self.appointment_id is not None else None,
            "ghl_event_id": self.ghl_event_id,
        }
        if self.kind in (Kind.missing_ghl, Kind.missing_local):
            assert self.values is not None
            data = self.values.model_dump(mode="json")
            return {**entry, **{name: data[name] for name in _DESCRIBED}}
        if self.kind is Kind.cancelled_one_side:
            assert self.estado is not None
            cancelled_in = "rv3" if self.estado["rv3"] in (AppointmentStatus.cancelled.value, GONE) else "ghl"
            entry.update(cancelada_en=cancelled_in, motivo=self.reason, estado=self.estado)
        entry["campos"] = self.campos
        if self.refused is not None:
            entry["rechazo_rv3"] = describe_refusal(self.refused)
        return entry

    def action(self, reference: str) -> dict[str, Any]:
        """The report's `acciones` line for the fix sent (`reference`: outbox op id or write-back)."""
        assert self.heal is not None
        return {
            "origen": ORIGIN,
            "tipo": self.heal.direction.value,
            "hallazgo": self.kind.value,
            "motivo": self.heal.reason,
            "rv3_id": self.rv3_id,
            "id": str(self.appointment_id) if self.appointment_id is not None else None,
            "ghl_event_id": self.ghl_event_id,
            "referencia": reference,
        }


# --- where and when -----------------------------------------------------------------------------------------


class Rv3Day(BaseModel):
    """One local day of the window, as RV3 files appointments (`appointment_date`), cut to the window."""

    model_config = ConfigDict(frozen=True)

    day: date
    start: datetime
    end: datetime


def rv3_days(start: datetime, end: datetime, timezone: str) -> Iterator[Rv3Day]:
    """The local days covering [start, end), each as its part of it: RV3 is read one `appointment_date` at a time."""
    tz = zone(timezone)
    day = start.astimezone(tz).date()
    while True:
        bounds = local_day_bounds(day, tz)
        assert bounds.start is not None and bounds.end is not None
        if bounds.start >= end:
            return
        yield Rv3Day(day=day, start=max(start, bounds.start), end=min(end, bounds.end))
        day += timedelta(days=1)


def starts_between(row: Rv3Appointment, timezone: str, start: datetime, end: datetime) -> bool:
    """Whether the RV3 appointment starts in [start, end) (a row without an hour starts nowhere)."""
    begins = rv3_start(Rv3Snapshot.of(row), timezone)
    return begins is not None and start <= begins < end


def capture_pending(row: Rv3Appointment, next_scan: Cursor) -> bool:
    """Whether the next capture run reads the row (its stamp is not behind the cursor): it is still in flight."""
    if row.cursor is None:
        return False  # never read by the capture: RV3 rows without a stamp are not returned
    return (row.cursor.updated_at, row.cursor.id) > (next_scan.updated_at, next_scan.id)


# --- the comparison -----------------------------------------------------------------------------------------


def classify_rv3(row: Rv3Appointment | None, linked: LinkedAppointment | None, context: Rv3Context) -> Rv3Finding:
    """Compare RV3's row (None: it no longer exists) with the sync's appointment linked to it (None: none is).

    The GHL walk (`sync_core.reconcile`) compares the sync's appointments with GHL; this finds what the capture
    or the write-back left behind (a row edited or booked behind the capture's cursor, a hard delete the sweep
    missed, a lost write-back), under the same kinds. The capture's and the write-back's own rules say what
    "the same" is (`plan_change`, `writeback_target`, `holds`): date, hour and status travel both ways; title,
    length and assignee follow RV3 only when RV3 changes them. An RV3 change the capture will still read, an
    appointment with a change on its way and a booking waiting for the front desk are not drift.
    """
    rv3_id = row.id if row is not None else (linked.rv3_id if linked is not None else None)
    ids: dict[str, Any] = {"rv3_id": rv3_id}
    if linked is not None:
        ids.update(appointment_id=linked.appointment_id, ghl_event_id=linked.ghl_event_id)
    if row is not None and capture_pending(row, context.next_scan) and _news_for_capture(row, linked):
        return Rv3Finding(kind=Kind.in_flight, reason="capture_pending", **ids)
    if linked is not None and linked.pending:
        return Rv3Finding(kind=Kind.in_flight, reason="sync_pending", **ids)
    if linked is not None and linked.in_review:
        return Rv3Finding(kind=Kind.ignored, reason="awaiting_review", **ids)
    if linked is None:
        if row is None:
            raise ValueError("nothing to compare")
        return _not_captured(row, context, ids)
    if row is None:
        return _gone_from_rv3(linked, ids)
    found = _compare_rv3(Rv3Snapshot.of(row), linked, context, ids)
    return found.model_copy(update={"refused": linked.refused}) if found.drift and linked.refused else found


def _news_for_capture(row: Rv3Appointment, linked: LinkedAppointment | None) -> bool:
    """Whether reading the row changes anything: the capture skips a row that is as it last saw it, so re-reading
    cannot bring a lost write-back."""
    return linked is None or linked.snapshot != Rv3Snapshot.of(row)


def _not_captured(row: Rv3Appointment, context: Rv3Context, ids: dict[str, Any]) -> Rv3Finding:
    snapshot = Rv3Snapshot.of(row)
    plan = plan_change(None, snapshot, None, context.rules)
    if plan.kind is PlanKind.skip:  # history, cancelled before any sync, no hour or calendar: never synced
        return Rv3Finding(kind=Kind.ignored, reason=f"not_synced:{plan.reason}", **ids)
    return Rv3Finding(
        kind=Kind.missing_ghl,
        reason="never_captured",
        values=plan.values,
        heal=Heal(direction=HealDirection.to_ghl, reason="missing_in_ghl"),
        recapture=snapshot,
        **ids,
    )


def _gone_from_rv3(linked: LinkedAppointment, ids: dict[str, Any]) -> Rv3Finding:
    cancelled = linked.values.status is AppointmentStatus.cancelled
    if linked.rv3_id is None:  # a GHL booking RV3 never got
        if cancelled:
            return Rv3Finding(kind=Kind.ignored, reason="cancelled_not_in_rv3", **ids)
        to_rv3 = Heal(direction=HealDirection.to_rv3, reason="missing_in_rv3")
        return Rv3Finding(kind=Kind.missing_local, reason="not_in_rv3", values=linked.values, heal=to_rv3, **ids)
    if cancelled:
        return Rv3Finding(kind=Kind.matched, reason="cancelled_on_both_sides", **ids)
    # Hard-deleted in RV3 and not swept: the capture cancels it as the sweep would.
    heal = recapture = None
    if linked.snapshot is not None:
        heal = Heal(direction=HealDirection.to_ghl, reason="deleted_in_rv3")
        recapture = linked.snapshot.model_copy(update={"deleted": True})
    estado = {"rv3": GONE, "ghl": linked.values.status.value}
    return Rv3Finding(
        kind=Kind.cancelled_one_side, reason="deleted_in_rv3", estado=estado, heal=heal, recapture=recapture, **ids
    )


def _rv3_status_value(snapshot: Rv3Snapshot, context: Rv3Context) -> str:
    if snapshot.deleted:
        return GONE
    status = context.rules.statuses.status_of(snapshot.status)
    return status.value if status is not None else f"unknown:{snapshot.status}"


def _values_diff(rv3: SyncedAppointment, ghl: SyncedAppointment) -> FieldDiffs:
    mine, theirs = rv3.model_dump(mode="json"), ghl.model_dump(mode="json")
    return {name: {"rv3": mine[name], "ghl": theirs[name]} for name in mine if mine[name] != theirs[name]}


def _compare_rv3(
    snapshot: Rv3Snapshot, linked: LinkedAppointment, context: Rv3Context, ids: dict[str, Any]
) -> Rv3Finding:
    """An RV3 change the capture did not take (RV3's row is not what the sync last saw) goes to GHL, as the
    capture would send it; otherwise RV3 lacks the sync's date, hour or status: a lost write-back."""
    plan = plan_change(linked.snapshot, snapshot, linked.values, context.rules)
    estado = {"rv3": _rv3_status_value(snapshot, context), "ghl": linked.values.status.value}
    if plan.kind in (PlanKind.update, PlanKind.cancel, PlanKind.rebook):
        return _missed_rv3_change(plan, snapshot, linked, estado, ids)
    return _missed_writeback(snapshot, linked.values, context, estado, ids)


def _missed_rv3_change(
    plan: Rv3Plan, snapshot: Rv3Snapshot, linked: LinkedAppointment, estado: dict[str, str], ids: dict[str, Any]
) -> Rv3Finding:
    found = {"heal": Heal(direction=HealDirection.to_ghl, reason="changed_in_rv3"), "recapture": snapshot, **ids}
    if plan.kind is PlanKind.rebook:
        assert linked.snapshot is not None
        campos: FieldDiffs = {"patient_id": {"rv3": str(snapshot.patient_id), "ghl": str(linked.snapshot.patient_id)}}
        return Rv3Finding(kind=Kind.out_of_sync, reason="patient_changed_in_rv3", campos=campos, **found)
    assert plan.values is not None
    campos = _values_diff(plan.values, linked.values)
    if plan.kind is PlanKind.cancel:
        reason = "deleted_in_rv3" if snapshot.deleted else "cancelled_in_rv3"
        return Rv3Finding(kind=Kind.cancelled_one_side, reason=reason, estado=estado, campos=campos, **found)
    return Rv3Finding(kind=Kind.out_of_sync, reason="changed_in_rv3", campos=campos, **found)


def _missed_writeback(
    snapshot: Rv3Snapshot,
    stored: SyncedAppointment,
    context: Rv3Context,
    estado: dict[str, str],
    ids: dict[str, Any],
) -> Rv3Finding:
    rv3_cancelled = estado["rv3"] in (AppointmentStatus.cancelled.value, GONE)
    ghl_cancelled = stored.status is AppointmentStatus.cancelled
    if rv3_cancelled and ghl_cancelled:
        return Rv3Finding(kind=Kind.matched, reason="cancelled_on_both_sides", **ids)
    if snapshot.deleted:
        # Deleted in RV3 as the sync last saw it, yet live in the sync: no write can bring a deleted row back,
        # and the capture has nothing new to send. Listed for a person.
        return Rv3Finding(kind=Kind.cancelled_one_side, reason="deleted_in_rv3", estado=estado, **ids)
    target = writeback_target(stored, context.rules.timezone, context.rules.statuses)
    # A status RV3 has no row for is not held either, though no write can set it yet (the mapping can).
    lacking = unwritable_status(snapshot, target, context.rules.statuses) is not None
    if holds(snapshot, target) and not lacking:
        return Rv3Finding(kind=Kind.matched, reason="same", **ids)
    campos: FieldDiffs = {}
    if (snapshot.day, snapshot.hour) != (target.day, target.hour):
        start = rv3_start(snapshot, context.rules.timezone)
        rv3_side = stored.model_copy(update={"start": start}).model_dump(mode="json")["start"] if start else None
        campos["start"] = {"rv3": rv3_side, "ghl": stored.model_dump(mode="json")["start"]}
    if lacking or not status_holds(snapshot, target):
        campos["status"] = dict(estado)
    to_rv3 = Heal(direction=HealDirection.to_rv3, reason="changed_in_ghl")
    if rv3_cancelled != ghl_cancelled:
        reason = "cancelled_in_rv3" if rv3_cancelled else "cancelled_in_ghl"
        return Rv3Finding(kind=Kind.cancelled_one_side, reason=reason, estado=estado, campos=campos, heal=to_rv3, **ids)
    return Rv3Finding(kind=Kind.out_of_sync, reason="writeback_missing", campos=campos, heal=to_rv3, **ids)
