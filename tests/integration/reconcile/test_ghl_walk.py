"""The GHL side's walk over a window in time slices (GET /calendars/events has no paging): each event once, in
id order per slice, and a busy slice fetched again narrower so no response grows with the calendar."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from shared.services.reconcile.walk import walk_ghl
from sync_core.reconcile import SlicePlan

START = datetime(2030, 3, 4, 5, tzinfo=UTC)
DAY = timedelta(days=1)
PLAN = SlicePlan(longest=DAY, shortest=timedelta(minutes=1), max_events=10)


class FakeGhl:
    """GHL's events endpoint over a fixed list: every event overlapping the requested range, in start order."""

    def __init__(self, starts: Sequence[datetime], minutes: int = 60) -> None:
        self.events = [
            (f"ev{i:05d}"[::-1], start, start + timedelta(minutes=minutes)) for i, start in enumerate(starts)
        ]
        self.requests: list[tuple[datetime, datetime, int]] = []

    def __call__(self, start: datetime, end: datetime) -> Sequence[Mapping[str, object]]:
        found = [
            {"id": event_id, "calendarId": "cal1", "startTime": s.isoformat(), "endTime": e.isoformat()}
            for event_id, s, e in self.events
            if s < end and e > start
        ]
        self.requests.append((start, end, len(found)))
        return found


def test_each_event_is_yielded_once_in_the_slice_holding_its_start_in_id_order() -> None:
    ghl = FakeGhl([START + timedelta(minutes=7 * i) for i in range(200)], minutes=90)
    slices = list(walk_ghl(ghl, START, START + DAY, PLAN, tz="America/Lima"))
    seen = [record.id for part in slices for record in part.records]
    assert sorted(seen) == sorted(event_id for event_id, _, _ in ghl.events)
    for part in slices:
        assert [r.id for r in part.records] == sorted(r.id for r in part.records)
        assert all(part.start <= r.fields.start < part.end for r in part.records)
    assert [(a.end, b.start) for a, b in itertools.pairwise(slices) if a.end != b.start] == []


def test_a_busy_slice_is_fetched_again_half_as_long_until_fewer_than_the_limit_start_in_it() -> None:
    busy_hour = [START + timedelta(hours=10, minutes=2 * i) for i in range(30)]
    ghl = FakeGhl([*busy_hour, START + timedelta(hours=20)], minutes=1)
    slices = list(walk_ghl(ghl, START, START + DAY, PLAN, tz="America/Lima"))
    assert max(len(part.records) for part in slices) < PLAN.max_events
    assert ghl.requests[0] == (START, START + DAY, 31)  # first try: the whole day
    assert ghl.requests[1][:2] == (START, START + DAY / 2)  # too many: half as long
    assert sum(len(part.records) for part in slices) == 31


def test_sparse_slices_grow_back_so_an_empty_calendar_costs_one_call_per_day() -> None:
    ghl = FakeGhl([])
    list(walk_ghl(ghl, START, START + 3 * DAY, PLAN, tz="America/Lima"))
    assert len(ghl.requests) == 3


def test_the_first_slice_is_sized_from_the_stored_appointments_expected() -> None:
    ghl = FakeGhl([START + timedelta(minutes=i) for i in range(1000)], minutes=1)
    list(walk_ghl(ghl, START, START + DAY, PLAN, tz="America/Lima", expected=1000))
    assert ghl.requests[0][2] < PLAN.max_events  # no first fetch of the whole busy day
    assert all(found <= 2 * PLAN.max_events for _, _, found in ghl.requests)


def test_an_event_without_times_is_counted_as_unreadable_not_compared() -> None:
    def fetch(start: datetime, end: datetime) -> Sequence[Mapping[str, object]]:
        return [{"id": "evBroken", "calendarId": "cal1"}]

    (part,) = list(walk_ghl(fetch, START, START + DAY, PLAN, tz="America/Lima"))
    assert (part.records, part.unreadable) == ([], 1)
