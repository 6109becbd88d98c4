"""RV3 → GHL under failure: injected GHL faults and a killed worker still give exactly one GHL event per
appointment, holding the appointment's latest state — compared row by row between SQL and the sandbox."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.store.schema import appointments, outbox
from sync_core.models import AppointmentStatus
from sync_core.status import to_ghl
from tests.fixtures.stack import Stack

CALENDARS = ("cal_demo_terapia", "cal_demo_reflexologia")
FAST_GHL = {"rate_interval_ms": 1000}  # GHL's 100 requests / 10 s, scaled to 100 / 1 s (same shape)


def _slot(i: int, *, moved: bool = False) -> tuple[str, str, str]:
    """A distinct, bookable slot per index: even hours for new bookings, the next odd hour when rescheduled."""
    calendar = CALENDARS[i % 2]
    day = datetime(2030, 3, 4) + timedelta(days=(i // 2) // 6)
    hour = 8 + 2 * ((i // 2) % 6) + (1 if moved else 0)
    start = day.replace(hour=hour)
    end = start + timedelta(minutes=45)
    return calendar, f"{start.isoformat()}-05:00", f"{end.isoformat()}-05:00"


def _body(i: int, *, moved: bool = False) -> dict[str, Any]:
    calendar, start, end = _slot(i, moved=moved)
    return {
        "title": f"Sesión {i}",
        "ghl_calendar_id": calendar,
        "patient": {"name": f"Paciente Número {i % 40}", "phone": f"98765{i % 40:04d}"},
        "start_time": start,
        "end_time": end,
    }


def make_changes(stack: Stack, creates: int, updates: int, cancels: int) -> int:
    """Create, then reschedule and cancel some, through the API as the front desk would. Returns changes made."""
    api = stack.api()
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda i: api.post("/ghl/citas", json=_body(i)), range(creates)))
    assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201][:3]
    ids = [r.json()["id"] for r in created]

    def reschedule(i: int) -> httpx.Response:
        return api.put(f"/ghl/citas/{ids[i]}", json=_body(i, moved=True))

    def cancel(i: int) -> httpx.Response:
        return api.post(f"/ghl/citas/{ids[i]}/cancel")

    with ThreadPoolExecutor(8) as pool:
        moved = list(pool.map(reschedule, range(updates)))
        cancelled = list(pool.map(cancel, range(creates - cancels, creates)))
    assert all(r.status_code == 200 for r in moved + cancelled)
    return creates + updates + cancels


def _all_settled(stack: Stack) -> bool:
    with stack.db.transaction() as conn:
        unsynced = conn.execute(
            sa.select(sa.func.count())
            .select_from(appointments)
            .where(appointments.c.sync_state.not_in(["synced", "local_only"]))
        ).scalar_one()
        open_entries = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status.in_(["pending", "dispatched"]))
        ).scalar_one()
    return unsynced == 0 and open_entries == 0


def assert_ghl_holds_exactly_sql(stack: Stack) -> None:
    with stack.db.transaction() as conn:
        rows = conn.execute(sa.select(appointments)).all()
    state = stack.sandbox.admin.state()
    events = {e["id"]: e for e in state["appointments"]}
    # Cancelled before its create was ever sent: GHL never needed to hear of it, and the appointment says so.
    never_sent = [r for r in rows if r.ghl_event_id is None]
    assert all(r.status == "cancelled" and r.sync_state == "local_only" for r in never_sent), "lost appointment"
    assert [r.id for r in rows if r.ghl_event_id is not None and r.sync_state != "synced"] == []
    in_ghl = [r for r in rows if r.ghl_event_id is not None]
    event_ids = [r.ghl_event_id for r in in_ghl]
    assert len(set(event_ids)) == len(in_ghl), "two appointments share one GHL event"
    assert set(events) == set(event_ids), f"{len(events) - len(in_ghl)} duplicate or stray events in GHL"
    for row in in_ghl:
        event = events[row.ghl_event_id]
        assert datetime.fromisoformat(event["startTime"]) == row.start_at, row.id
        assert datetime.fromisoformat(event["endTime"]) == row.end_at, row.id
        assert event["appointmentStatus"] == to_ghl(AppointmentStatus(row.status)), row.id
        assert (event["calendarId"], event["title"]) == (row.calendar_id, row.title), row.id
    patients = {r.patient_contact_id for r in in_ghl}
    assert len(state["contacts"]) == len(patients), "a patient got two GHL contacts"


@pytest.mark.slow
@pytest.mark.parametrize("stack", [FAST_GHL], indirect=True)
def test_500_changes_with_20_percent_ghl_faults_reach_ghl_exactly_once(stack: Stack) -> None:
    stack.sandbox.admin.configure(
        "faults",
        {
            "seed": random.randrange(1_000_000),
            "hang_seconds": 30,
            "all_endpoints": {
                "rate_limit": 0.06,
                "server_error": 0.06,
                "reset": 0.03,
                "timeout": 0.02,
                "applied_then_failed": 0.03,
                "applied_then_failed_outcome": "reset",
            },
        },
    )
    changes = make_changes(stack, creates=250, updates=150, cancels=100)
    assert changes == 500
    stack.wait_until(lambda: _all_settled(stack), timeout=300, what="all 500 changes synced")
    counts = stack.sandbox.admin.state()["counts"]
    assert sum(counts["by_outcome"].get(k, 0) for k in counts["by_outcome"] if k != "ok") > 0, "no fault injected"
    assert_ghl_holds_exactly_sql(stack)


@pytest.mark.parametrize("stack", [{**FAST_GHL, "message_lease_s": 10}], indirect=True)
def test_killing_the_worker_mid_batch_converges_after_restart(stack: Stack) -> None:
    stack.sandbox.admin.configure("faults", {"all_endpoints": {"latency_ms": 150}})  # keep messages in flight
    make_changes(stack, creates=60, updates=20, cancels=10)

    def some_synced() -> bool:
        with stack.db.transaction() as conn:
            return bool(
                conn.execute(
                    sa.select(sa.func.count()).select_from(appointments).where(appointments.c.ghl_event_id.isnot(None))
                ).scalar_one()
            )

    stack.wait_until(some_synced, what="the first appointments in GHL")
    stack.host.kill()
    assert not _all_settled(stack), "the kill came too late to interrupt anything"
    stack.sandbox.admin.configure("faults", {"all_endpoints": {}})
    stack.start_host()
    stack.wait_until(lambda: _all_settled(stack), timeout=180, what="convergence after the restart")
    assert_ghl_holds_exactly_sql(stack)
