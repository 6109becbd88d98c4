"""A run's life on the `reconcile` queue: checkpoints after each slice, a crash or a redelivery resumes instead of
starting over or duplicating the report, one worker at a time, long runs continue in a new message, and a run
that cannot finish is marked failed and raises the missed-run alert."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared import runtime
from shared.api.schemas import ReconciliationRunIn
from shared.queues import MAX_DEQUEUE_COUNT, POISON_SUFFIX, RECONCILE
from shared.services.reconcile import reports as reconciliation
from shared.services.reconcile import runs, worker
from shared.store import reports
from shared.store.schema import reconciliation_reports
from shared.work import Work

from .conftest import DAY, Sides, drain

pytestmark = pytest.mark.azurite

H = timedelta(hours=1)
SLICE_LIMIT = 3  # many small slices, so there is something to resume


@pytest.fixture
def busy_day(sides: Sides) -> Iterator[Sides]:
    """Twelve synced appointments over the day and three differences."""
    for i in range(12):
        sides.ghl(f"ev{i:02d}", DAY + (8 + i) * H)
        sides.sql(DAY + (8 + i) * H, event_id=f"ev{i:02d}")
    sides.ghl("evBooked", DAY + 9 * H + 30 * timedelta(minutes=1))
    sides.sql(DAY + 21 * H)
    sides.ghl("evRetitled", DAY + 22 * H, title="Otro")
    sides.sql(DAY + 22 * H, event_id="evRetitled")
    yield sides


def queued_run(**request: Any) -> tuple[dict[str, Any], int]:
    """Start a run for 2030-03-04 and take its message off the queue, as a worker would; (message, report id)."""
    body = {"desde": "2030-03-04", "hasta": "2030-03-04", "max_events_per_slice": SLICE_LIMIT, **request}
    started = runs.start_run(Work.current(), ReconciliationRunIn.model_validate(body))
    (message,) = list(runtime.queues().client(RECONCILE).receive_messages(max_messages=1, visibility_timeout=60))
    runtime.queues().client(RECONCILE).delete_message(message)
    return json.loads(message.content), started.reports[0].id


def row(report_id: int) -> reports.RunRecord:
    with runtime.database().transaction() as conn:
        found = reports.get(conn, report_id)
    assert found is not None
    return found


def differences(report: dict[str, Any]) -> dict[str, Any]:
    kinds = ("faltantes_local", "faltantes_ghl", "canceladas_no_actualizadas", "desincronizadas", "totales")
    return {kind: report[kind] for kind in kinds}


class CountingEvents:
    """Counts GHL event listings; crashes the worker (an unexpected error) on the call numbered `crash_at`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, crash_at: int | None = None) -> None:
        self.calls = 0
        self.crash_at = crash_at
        client = runtime.ghl()
        self._list = client.list_events
        monkeypatch.setattr(client, "list_events", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("worker died mid-run")
        return self._list(*args, **kwargs)


def test_a_run_that_crashes_resumes_from_its_last_checkpoint_with_the_same_report(
    busy_day: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = CountingEvents(monkeypatch)
    reference = busy_day.report(busy_day.run(max_events_per_slice=SLICE_LIMIT))
    listings_of_a_whole_run = full.calls

    message, report_id = queued_run()
    crashing = CountingEvents(monkeypatch, crash_at=listings_of_a_whole_run // 2)
    with pytest.raises(RuntimeError):
        worker.process(message, dequeue_count=1)
    interrupted = row(report_id)
    assert interrupted.status == "running"
    assert interrupted.lease_until is None  # released: the redelivery need not wait for it
    assert interrupted.checkpoint is not None and interrupted.checkpoint > interrupted.window_start
    assert interrupted.report["totales"]["rv3"] > 0

    crashing.crash_at = None
    calls_before = crashing.calls
    assert worker.process(message, dequeue_count=2).result == "applied"
    assert crashing.calls - calls_before < listings_of_a_whole_run  # resumed, not started over
    assert differences(busy_day.report(report_id)) == differences(reference)


def test_a_redelivered_message_of_a_finished_run_changes_nothing(busy_day: Sides) -> None:
    message, report_id = queued_run()
    assert worker.process(message).result == "applied"
    before = busy_day.report(report_id)
    assert worker.process(message, dequeue_count=2).result == "duplicate"
    assert busy_day.report(report_id) == before
    with runtime.database().transaction() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(reconciliation_reports)
            .where(reconciliation_reports.c.run_id == message["run_id"])
        ).scalar_one()
    assert count == 1


def test_a_run_held_by_another_worker_is_retried_later_then_taken_over_when_its_lease_expires(
    busy_day: Sides,
) -> None:
    message, report_id = queued_run()
    now = datetime.now(UTC)
    with runtime.database().transaction() as conn:
        assert reports.claim(conn, report_id, now, now + timedelta(seconds=60))  # another worker
    outcome = worker.process(message)
    assert outcome.result == "requeued"
    assert runtime.queues().depth(RECONCILE) == 1  # comes back after the other worker's lease
    worn_out = {**message, "requeues": worker.MAX_HOLDER_WAITS}
    assert worker.process(worn_out).result == "duplicate"  # the holder is evidently alive
    assert row(report_id).status in ("queued", "running")
    with runtime.database().transaction() as conn:
        conn.execute(
            reconciliation_reports.update()
            .where(reconciliation_reports.c.id == report_id)
            .values(lease_until=now - timedelta(seconds=1))  # that worker died
        )
    assert worker.process(message, dequeue_count=2).result == "applied"


def test_a_long_run_hands_over_to_a_new_message_and_ends_with_the_same_report(
    busy_day: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = busy_day.report(busy_day.run(max_events_per_slice=SLICE_LIMIT))
    monkeypatch.setattr(worker, "RUN_BUDGET_S", 0.0)  # one slice per message
    started = runs.start_run(
        Work.current(), ReconciliationRunIn(desde=DAY.date(), hasta=DAY.date(), max_events_per_slice=SLICE_LIMIT)
    )
    outcomes: list[str] = []
    drain(RECONCILE, lambda body, **kw: outcomes.append(worker.process(body, **kw).result))
    assert outcomes[-1] == "applied"
    assert outcomes.count("continued") >= 5
    assert differences(busy_day.report(started.reports[0].id)) == differences(reference)


def test_a_run_whose_ghl_access_is_refused_fails_visibly(
    busy_day: Sides, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    message, report_id = queued_run()
    monkeypatch.setenv("GHL_PRIVATE_TOKEN", "pit-revoked")
    runtime.reset()
    with caplog.at_level(logging.INFO, logger="rv3sync.reconcile"):
        assert worker.process(message).result == "failed"
    failed = row(report_id)
    assert (failed.status, failed.error) == ("failed", "ghl_auth_expired")
    (alert,) = [r for r in caplog.records if getattr(r, "event", None) == "alert.reconciliation_missed"]
    assert (alert.alert, alert.location_id) == ("reconciliation_missed", "loc_demo")  # type: ignore[attr-defined]
    (state,) = reconciliation.metrics(Work.current()).locations
    assert state.last_run is not None and state.last_run.status == "failed"
    assert state.stale


def test_a_ghl_outage_resumes_later_and_gives_up_after_its_retries(busy_day: Sides) -> None:
    message, report_id = queued_run()
    busy_day.sandbox.admin.start_outage(seconds=60)
    try:
        outcome = worker.process(message)
        assert outcome.result == "requeued"
        assert row(report_id).status in ("queued", "running")
        last = {**message, "attempt": worker.JOB.max_attempts}
        assert worker.process(last).result == "failed"
    finally:
        busy_day.sandbox.admin.end_outage()
    assert row(report_id).status == "failed"


def test_the_last_delivery_of_a_crashing_run_marks_it_failed_before_the_poison_queue(
    busy_day: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    message, report_id = queued_run()
    CountingEvents(monkeypatch, crash_at=1)
    with pytest.raises(RuntimeError):
        worker.process(message, dequeue_count=MAX_DEQUEUE_COUNT)
    assert (row(report_id).status, row(report_id).error) == ("failed", "RuntimeError")


def test_a_malformed_message_goes_straight_to_the_poison_queue(sides: Sides) -> None:
    poison = runtime.queues().client(RECONCILE + POISON_SUFFIX)
    poison.clear_messages()
    assert worker.process({"run_id": "x"}).result == "malformed"
    assert [json.loads(m.content) for m in poison.peek_messages(max_messages=32)] == [{"run_id": "x"}]
    assert runtime.queues().depth(RECONCILE) == 0
