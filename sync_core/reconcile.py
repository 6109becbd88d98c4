"""Reconciliation rules: merge-join RV3's and GHL's appointments, classify each difference, decide a fix, report it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import FieldDiffs, SyncedFields, compare_fields, synced_fields_from_ghl
from sync_core.models import AppointmentStatus, UtcDatetime

CANCELLED = AppointmentStatus.cancelled.value
# Each list of a report names at most this many appointments; `totales` always counts all of them, so a
# first run over a badly drifted location stays a bounded document (the rest: `totales.no_listadas`).
MAX_LISTED = 1000

T = TypeVar("T")


class UnsortedStream(ValueError):
    """An input of `merge_join` is out of order or repeats a key: the join would silently mismatch."""


class Rv3Record(BaseModel):
    """RV3's side of one appointment, normalised: what it holds and what the sync last agreed with GHL."""

    model_config = ConfigDict(frozen=True)

    id: str
    ghl_event_id: str | None
    fields: SyncedFields
    in_flight: bool = False  # a change of it is still on its way to GHL (open outbox entry)

    @property
    def cancelled(self) -> bool:
        return self.fields.status == CANCELLED


class GhlRecord(BaseModel):
    """GHL's side of one appointment: the event as read, and its shared fields in RV3's vocabulary."""

    model_config = ConfigDict(frozen=True)

    appointment: GhlAppointment
    fields: SyncedFields

    @classmethod
    def of(cls, appointment: GhlAppointment) -> GhlRecord:
        """Raises ValueError for an event without start or end (it cannot be compared)."""
        return cls(appointment=appointment, fields=synced_fields_from_ghl(appointment))

    @property
    def id(self) -> str:
        return self.appointment.id

    @property
    def date_updated(self) -> datetime | None:
        return self.appointment.date_updated

    @property
    def cancelled(self) -> bool:
        return self.fields.status == CANCELLED


@dataclass(frozen=True)
class Pair:
    """One step of the merge-join: both sides of an appointment, or the one side that has it."""

    rv3: Rv3Record | None
    ghl: GhlRecord | None


def _rv3_key(record: Rv3Record) -> tuple[int, str]:
    return (0, "") if record.ghl_event_id is None else (1, record.ghl_event_id)


def _ghl_key(record: GhlRecord) -> tuple[int, str]:
    return (1, record.id)


def _checked(records: Iterable[T], key: Callable[[T], tuple[int, str]], side: str) -> Iterator[T]:
    previous: tuple[int, str] | None = None
    for record in records:
        current = key(record)
        if previous is not None and (current < previous or (current == previous and current[0] == 1)):
            raise UnsortedStream(f"{side} stream out of order at key {current[1]!r}")
        previous = current
        yield record


def merge_join(rv3: Iterable[Rv3Record], ghl: Iterable[GhlRecord]) -> Iterator[Pair]:
    """Pair two sorted streams by GHL event id, reading each exactly once and holding one record of each.

    `rv3`: records without a GHL event id first, then by `ghl_event_id` ascending; `ghl`: by event id
    ascending. Ascending is Python's string order (code points: a binary collation in SQL). A record
    out of order or a repeated id raises `UnsortedStream`.
    """
    rv3_records = _checked(rv3, _rv3_key, "rv3")
    ghl_records = _checked(ghl, _ghl_key, "ghl")
    left = next(rv3_records, None)
    right = next(ghl_records, None)
    while left is not None or right is not None:
        if right is None or (left is not None and _rv3_key(left) < _ghl_key(right)):
            assert left is not None
            yield Pair(left, None)
            left = next(rv3_records, None)
        elif left is None or _rv3_key(left) > _ghl_key(right):
            yield Pair(None, right)
            right = next(ghl_records, None)
        else:
            yield Pair(left, right)
            left, right = next(rv3_records, None), next(ghl_records, None)


class Kind(StrEnum):
    """What comparing one appointment found; the drift kinds are the report's lists."""

    matched = "coincidentes"
    in_flight = "en_curso"
    ignored = "ignoradas"
    missing_local = "faltantes_local"
    missing_ghl = "faltantes_ghl"
    cancelled_one_side = "canceladas_no_actualizadas"
    out_of_sync = "desincronizadas"


DRIFT_KINDS = (Kind.missing_local, Kind.missing_ghl, Kind.cancelled_one_side, Kind.out_of_sync)


class Finding(BaseModel):
    """The outcome of comparing one appointment; `campos` lists differing fields with both values."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    reason: str
    rv3: Rv3Record | None = None
    ghl: GhlRecord | None = None
    campos: FieldDiffs = Field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return self.kind in DRIFT_KINDS


def classify(rv3: Rv3Record | None, ghl: GhlRecord | None) -> Finding:
    """Compare the two sides of one appointment. `ghl=None` means GHL does not have the event at all
    (looked up, not merely outside a time slice); `rv3=None` means RV3 has no appointment for the event."""
    if rv3 is not None and rv3.in_flight:
        return Finding(kind=Kind.in_flight, reason="sync_pending", rv3=rv3, ghl=ghl)
    if rv3 is None:
        if ghl is None:
            raise ValueError("nothing to compare")
        if ghl.cancelled:
            return Finding(kind=Kind.ignored, reason="cancelled_only_in_ghl", ghl=ghl)
        return Finding(kind=Kind.missing_local, reason="not_in_rv3", ghl=ghl)
    if ghl is None:
        return _only_in_rv3(rv3)
    return _compare(rv3, ghl)


def _only_in_rv3(rv3: Rv3Record) -> Finding:
    if rv3.cancelled:
        return Finding(kind=Kind.ignored, reason="cancelled_not_in_ghl", rv3=rv3)
    if rv3.ghl_event_id is None:
        return Finding(kind=Kind.missing_ghl, reason="never_sent", rv3=rv3)
    return Finding(kind=Kind.cancelled_one_side, reason="deleted_in_ghl", rv3=rv3)


def _compare(rv3: Rv3Record, ghl: GhlRecord) -> Finding:
    if rv3.cancelled and ghl.cancelled:
        return Finding(kind=Kind.matched, reason="cancelled_on_both_sides", rv3=rv3, ghl=ghl)
    campos = compare_fields(rv3.fields, ghl.fields)
    if rv3.cancelled != ghl.cancelled:
        reason = "cancelled_in_rv3" if rv3.cancelled else "cancelled_in_ghl"
        return Finding(kind=Kind.cancelled_one_side, reason=reason, rv3=rv3, ghl=ghl, campos=campos)
    if not campos:
        return Finding(kind=Kind.matched, reason="same", rv3=rv3, ghl=ghl)
    return Finding(kind=Kind.out_of_sync, reason="fields_differ", rv3=rv3, ghl=ghl, campos=campos)


class HealDirection(StrEnum):
    """How a difference is fixed: GHL's state is taken through the sync protocol (which keeps the newest edit
    and sends GHL the local state when that is the one), RV3 takes a state, or GHL is sent RV3's."""

    newest = "conciliar"
    to_rv3 = "aplicar_en_rv3"
    to_ghl = "enviar_a_ghl"


class Heal(BaseModel):
    model_config = ConfigDict(frozen=True)

    direction: HealDirection
    reason: str


def decide_heal(finding: Finding) -> Heal | None:
    """How auto-heal fixes a difference, or None when there is nothing to fix.

    An appointment GHL never received is sent. Every other difference shows a state of GHL the sync did not
    know (a webhook GHL never delivered) or that it did not act on: it is handed to the sync protocol as GHL's
    state read now, exactly as the missed webhook would have been, so the newest edit stands on both sides,
    whichever side made it, and a heal can never bring an older state back (`sync_core.protocol.observe`).
    """
    if not finding.drift:
        return None
    rv3, ghl = finding.rv3, finding.ghl
    if rv3 is not None and ghl is None and rv3.ghl_event_id is None:
        return Heal(direction=HealDirection.to_ghl, reason="missing_in_ghl")
    if rv3 is None:
        return Heal(direction=HealDirection.newest, reason="missing_in_rv3")
    return Heal(direction=HealDirection.newest, reason="deleted_in_ghl" if ghl is None else "differs")


# --- time slices of the GHL walk -----------------------------------------------------------------------------


class SlicePlan(BaseModel):
    """How GHL's events are read: `GET /calendars/events` has no paging, only a time range, so the window is
    walked in slices, halved while a slice returns `max_events` or more (down to `shortest`)."""

    model_config = ConfigDict(frozen=True)

    longest: timedelta = timedelta(days=1)
    shortest: timedelta = timedelta(minutes=1)
    max_events: int = Field(200, ge=2)  # ~120 KB of JSON per response


def first_slice(span: timedelta, expected: int, plan: SlicePlan) -> timedelta:
    """The first slice for a calendar expecting about `expected` events over `span`: sized for half the
    limit at that density, so a busy calendar is not first fetched whole."""
    if expected <= 0:
        return plan.longest
    sized = span * (plan.max_events / 2) / expected
    return max(plan.shortest, min(plan.longest, sized))


def next_slice(length: timedelta, returned: int, plan: SlicePlan) -> tuple[bool, timedelta]:
    """After a slice of `length` returned `returned` events: (accept it?, length of the next try).

    Too many: retry half as long, unless already the shortest. Sparse (under a quarter of the limit):
    accept and grow back toward the longest slice. Otherwise accept and keep the length.
    """
    if returned >= plan.max_events and length > plan.shortest:
        return False, max(plan.shortest, length / 2)
    if returned < plan.max_events / 4:
        return True, min(plan.longest, length * 2)
    return True, length


# --- the report ----------------------------------------------------------------------------------------------


# What `totales` counts: records each stream held (`rv3_tabla`: rows of RV3's own table, with RV3_SQL_URL), the
# outcome of each comparison, the differences, the fixes sent, differences counted but not listed (over
# MAX_LISTED) and GHL events without a readable time.
TOTALS = (
    "rv3",
    "ghl",
    "rv3_tabla",
    *(kind.value for kind in Kind),
    "drift",
    "acciones",
    "no_listadas",
    "ghl_ilegibles",
)


class ReportWindow(BaseModel):
    desde: UtcDatetime
    hasta: UtcDatetime


class ReconciliationReport(BaseModel):
    """SPEC §8's report, filled while the streams are walked (and stored at each checkpoint to resume)."""

    fecha: UtcDatetime
    location_id: str
    window: ReportWindow
    faltantes_local: list[dict[str, Any]] = Field(default_factory=list)
    faltantes_ghl: list[dict[str, Any]] = Field(default_factory=list)
    canceladas_no_actualizadas: list[dict[str, Any]] = Field(default_factory=list)
    desincronizadas: list[dict[str, Any]] = Field(default_factory=list)
    totales: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(TOTALS, 0))
    acciones: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(self.totales.get(kind.value, 0) for kind in DRIFT_KINDS)

    def _count(self, name: str, by: int = 1) -> None:
        self.totales[name] = self.totales.get(name, 0) + by

    def _listed(self, items: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        if len(items) < MAX_LISTED:
            items.append(entry)
        else:
            self._count("no_listadas")

    def seen(self, pair: Pair) -> None:
        """Count the records the two streams held (lookups outside the window are not counted)."""
        self._count("rv3", pair.rv3 is not None)
        self._count("ghl", pair.ghl is not None)

    def unreadable(self, count: int = 1) -> None:
        """GHL events that could not be compared (no start or end time)."""
        if count:
            self._count("ghl_ilegibles", count)

    def seen_rv3_row(self) -> None:
        """Count a row of RV3's own table compared with the sync (see `sync_core.rv3_reconcile`)."""
        self._count("rv3_tabla")

    def add(self, finding: Finding) -> None:
        self.record(finding.kind, report_entry(finding) if finding.drift else {})

    def record(self, kind: Kind, entry: dict[str, Any]) -> None:
        """Count one comparison's outcome; a difference is also listed, as `entry`."""
        self._count(kind.value)
        if kind in DRIFT_KINDS:
            self._count("drift")
            self._listed(getattr(self, kind.value), entry)

    def add_action(self, finding: Finding, heal: Heal, reference: str) -> None:
        """A fix sent through the normal sync path; `reference` is its outbox op id or webhook dedupe key."""
        self.record_action(
            {
                "tipo": heal.direction.value,
                "hallazgo": finding.kind.value,
                "motivo": heal.reason,
                "id": finding.rv3.id if finding.rv3 else None,
                "ghl_event_id": _event_id(finding),
                "referencia": reference,
            }
        )

    def record_action(self, entry: dict[str, Any]) -> None:
        self._count("acciones")
        self._listed(self.acciones, entry)


def _event_id(finding: Finding) -> str | None:
    if finding.ghl is not None:
        return finding.ghl.id
    return finding.rv3.ghl_event_id if finding.rv3 is not None else None


def _described(fields: SyncedFields) -> dict[str, Any]:
    data = fields.model_dump(mode="json")
    return {name: data[name] for name in ("calendar_id", "contact_id", "start", "end", "status", "title")}


def report_entry(finding: Finding) -> dict[str, Any]:
    """How a difference is listed in the report (ids to find it on both sides, and what differs)."""
    rv3, ghl = finding.rv3, finding.ghl
    if finding.kind is Kind.missing_local:
        assert ghl is not None
        return {"ghl_event_id": ghl.id, **_described(ghl.fields)}
    assert rv3 is not None
    if finding.kind is Kind.missing_ghl:
        return {"id": rv3.id, "ghl_event_id": rv3.ghl_event_id, **_described(rv3.fields)}
    entry: dict[str, Any] = {"id": rv3.id, "ghl_event_id": _event_id(finding)}
    if finding.kind is Kind.cancelled_one_side:
        entry.update(
            cancelada_en="rv3" if rv3.cancelled else "ghl",
            motivo=finding.reason,
            estado={"rv3": rv3.fields.status, "ghl": ghl.fields.status if ghl is not None else "eliminada"},
        )
    entry["campos"] = finding.campos
    return entry
