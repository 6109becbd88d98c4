"""GHL's events of one calendar over a window, in time slices: its events endpoint has no paging."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared import telemetry
from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.reconcile import GhlRecord, SlicePlan, first_slice, next_slice

log = telemetry.get_logger("reconcile")


@dataclass(frozen=True)
class GhlSlice:
    """GHL's events of one calendar starting in [start, end), sorted by event id, ready for `merge_join`."""

    start: datetime
    end: datetime
    records: list[GhlRecord]
    unreadable: int


def walk_ghl(
    fetch: Callable[[datetime, datetime], Sequence[Mapping[str, object]]],
    start: datetime,
    end: datetime,
    plan: SlicePlan,
    *,
    tz: str,
    expected: int = 0,
) -> Iterator[GhlSlice]:
    """Walk [start, end) in time slices through `fetch(slice_start, slice_end)` (GHL's events overlapping it).

    A slice in which `plan.max_events` or more events start is fetched again half as long, so a response
    holds about the limit at most (plus the few events overlapping from before, which belong to an earlier
    slice and are dropped: each event is yielded once, in the slice holding its start). `expected`, the
    events expected over the whole span, sizes the first slice.
    """
    length = first_slice(end - start, expected, plan)
    position = start
    while position < end:
        stop = min(end, position + length)
        records, unreadable = _read_slice(fetch(position, stop), position, stop, tz)
        accepted, length = next_slice(stop - position, len(records) + unreadable, plan)
        if not accepted:
            continue
        if len(records) >= plan.max_events:
            log.warning("reconciliation: %d GHL events start in one %s slice", len(records), stop - position)
        yield GhlSlice(position, stop, [records[key] for key in sorted(records)], unreadable)
        position = stop


def _read_slice(
    events: Sequence[Mapping[str, object]], start: datetime, stop: datetime, tz: str
) -> tuple[dict[str, GhlRecord], int]:
    """The events starting in [start, stop) by id, and how many events could not be read."""
    records: dict[str, GhlRecord] = {}
    unreadable = 0
    for raw in events:
        try:
            record = GhlRecord.of(parse_ghl_appointment(raw, tz=tz))
        except ValueError:  # GhlShapeError too: no id, or no readable start or end
            unreadable += 1
            continue
        if start <= record.fields.start < stop:
            records[record.id] = record
    return records, unreadable
