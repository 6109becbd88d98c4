"""The `reconcile` queue worker: one location's run, walked under a lease and checkpointed after every GHL slice
and RV3 day, on the worker kernel (`shared.worker`: its retries, and the poison queue for a malformed message).

A crash or a redelivered message resumes from the checkpoint; a run longer than `RUN_BUDGET_S` hands over to a
new message; one that cannot finish is marked failed (`runs.fail`) once retrying is used up or cannot help.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import Any

from shared import telemetry
from shared.ghl.errors import GhlError
from shared.http import ApiError
from shared.queues import GHL_TO_RV3, RECONCILE, QueueUnavailable
from shared.rv3.port import Rv3Unavailable
from shared.services import dispatch, locations, rv3_capture
from shared.services.reconcile import compare, runs
from shared.services.reconcile.progress import RUN_LEASE, Lease, LeaseLost, Run
from shared.services.reconcile.runs import ReconcileMessage
from shared.services.reconcile.walk import walk_ghl
from shared.services.webhook_intake import WebhookMessage
from shared.store import appointments as appointment_repo
from shared.store import locations as location_repo
from shared.store import outbox, reports
from shared.store import reconciliation as stored
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, later_for, run
from sync_core.models import ConflictPolicy
from sync_core.reconcile import Kind, ReconciliationReport, SlicePlan
from sync_core.retry import ErrorKind
from sync_core.rv3_reconcile import rv3_days

log = telemetry.get_logger("reconcile")

# A run hands over to a fresh message after this long, well inside the host's functionTimeout (10 min).
RUN_BUDGET_S = 240.0
MAX_HOLDER_WAITS = 20  # a copy of a message whose run another worker holds comes back at most this often
# The calendar refresh reports GHL's failures as the API would; these two pass.
API_RETRIES = {"ghl_rate_limited": ErrorKind.rate_limited, "ghl_unavailable": ErrorKind.connection}


def process(raw: dict[str, Any], work: Work | None = None, *, dequeue_count: int = 1) -> Result:
    """Handle one `reconcile` message: run (or resume) the location's reconciliation (see `shared.worker.run`)."""
    return run(JOB, raw, work or Work.current(), dequeue_count=dequeue_count)


def _handle(work: Work, message: ReconcileMessage) -> Result:
    now = work.now()
    with work.transaction() as conn:
        location = location_repo.find_location(conn, message.location_id)
        row = reports.find(conn, message.run_id, message.location_id)
    if location is None:
        return Result(Outcome.failed, "location not configured")
    if row is None:
        row = runs.adopt(work, message, now)
    if row.status not in reports.OPEN:
        return Result(Outcome.duplicate, f"run already {row.status}")
    until = now + RUN_LEASE
    with work.transaction() as conn:
        claimed = reports.claim(conn, row.id, now, until)
    if not claimed:
        return _wait_for_holder(message, row, now)
    result = _run_claimed(work, message, location, row, Lease(work, row.id, until))
    if result.outcome is Outcome.continued:
        following = message.model_copy(update={"attempt": 1})
        work.queues.send(RECONCILE, following.model_dump(mode="json", exclude_none=True))
    return result


def _run_claimed(
    work: Work,
    message: ReconcileMessage,
    location: location_repo.LocationRecord,
    row: reports.RunRecord,
    lease: Lease,
) -> Result:
    """Walk under our lease; what may pass (rate limits, outages) resumes later from the checkpoint."""
    try:
        return _walk(work, message, location, row, lease)
    except LeaseLost:
        return Result(Outcome.skipped, "another worker took the run over")
    except (GhlError, ApiError, Rv3Unavailable) as exc:
        return _after_failure(work, message, exc)
    finally:
        if lease.held:
            with work.transaction() as conn:
                reports.release(conn, row.id, lease.until)


def _after_failure(work: Work, message: ReconcileMessage, exc: GhlError | ApiError | Rv3Unavailable) -> Result:
    """Rate limits and outages (GHL, RV3's database; SQL's the kernel's own) come back later as `Later`, and
    resume from the checkpoint; what retrying cannot help (auth, scope, an unknown calendar) fails the run."""
    if isinstance(exc, Rv3Unavailable):
        raise Later(ErrorKind.connection, "rv3_unavailable") from exc
    if isinstance(exc, ApiError):
        if exc.code not in API_RETRIES:
            return _failed(work, message, exc.code)
        raise Later(API_RETRIES[exc.code], exc.code) from exc
    if exc.retry is None:
        return _failed(work, message, f"ghl_{exc.code}")
    raise later_for(exc, note=f"ghl_{exc.code}") from exc


def _plan_calendars(work: Work, location: location_repo.LocationRecord, window: tuple[datetime, datetime]) -> list[str]:
    """Every calendar the sync knows in the location (GHL's list, cached) and every calendar the stored
    appointments of the window are booked on."""
    known = {calendar.ghl_calendar_id for calendar in locations.cached_calendars(work, location)}
    with work.transaction() as conn:
        known.update(stored.calendars_in_window(conn, location.id, *window))
    return sorted(known)


def _walk(
    work: Work,
    message: ReconcileMessage,
    location: location_repo.LocationRecord,
    row: reports.RunRecord,
    lease: Lease,
) -> Result:
    deadline = time.monotonic() + RUN_BUDGET_S
    calendars = row.calendar_ids
    if calendars is None:
        calendars = _plan_calendars(work, location, (message.desde, message.hasta))
        with work.transaction() as conn:
            if not reports.start(conn, row.id, lease.until, calendars, work.now()):
                lease.held = False
                raise LeaseLost(f"reconciliation report {row.id}")
        row = dataclasses.replace(row, calendar_ids=calendars, calendar_index=0, checkpoint=message.desde)
    run = Run(
        work=work,
        message=message,
        location=location,
        row=row,
        lease=lease,
        report=ReconciliationReport.model_validate(row.report),
        calendars=calendars,
        policy=ConflictPolicy(work.settings.conflict_policy),
    )
    plan = SlicePlan(max_events=message.max_events)
    index, position = row.calendar_index, row.checkpoint or message.desde
    while index < len(calendars):
        calendar_id = calendars[index]
        with work.transaction() as conn:
            expected = stored.count_in_slice(conn, location.id, calendar_id, position, message.hasta)
        slices = walk_ghl(
            run.fetch(calendar_id), position, message.hasta, plan, tz=location.timezone, expected=expected
        )
        for ghl_slice in slices:
            compare.reconcile_slice(run, calendar_id, ghl_slice)
            done = ghl_slice.end >= message.hasta
            _checkpoint(run, index + 1 if done else index, message.desde if done else ghl_slice.end)
            if time.monotonic() > deadline and not (done and index + 1 == len(calendars)):
                return Result(Outcome.continued, "time budget used; a new message continues the run")
        index, position = index + 1, message.desde
    context = run.rv3 = compare.rv3_context(work, location)
    if context is not None:
        for day in rv3_days(position, message.hasta, location.timezone):
            compare.reconcile_rv3_day(run, context, day)
            _checkpoint(run, len(calendars), day.end)
            if time.monotonic() > deadline and day.end < message.hasta:
                return Result(Outcome.continued, "time budget used; a new message continues the run")
    _complete(run)
    return Result(Outcome.applied, f"drift {run.report.drift}")


def _checkpoint(run: Run, calendar_index: int, position: datetime) -> None:
    """Store the report and the position in one transaction with the outbox entries of the slice's fixes;
    hand the fixes to the queues after the commit (a lost GHL → RV3 fix is found again by the next run)."""
    now = run.work.now()
    entries: list[outbox.OutboxEntry] = []
    messages: list[WebhookMessage] = []
    until = now + RUN_LEASE
    # RV3 rows the capture never took are applied with their patients, read from RV3 before the transaction.
    unlinked = [f.recapture.patient_id for f in run.rv3_fixes if f.recapture is not None and f.appointment_id is None]
    patients = rv3_capture.new_patients(run.work, run.location, unlinked) if unlinked else {}
    with run.work.transaction() as conn:
        for finding, heal in run.to_ghl:
            assert finding.rv3 is not None
            record = appointment_repo.get(conn, int(finding.rv3.id))
            assert record is not None
            entry = dispatch.record_change(
                conn,
                appointment_id=record.id,
                operation="reconcile",
                version=record.version,
                now=now,
                correlation_id=run.message.run_id,
            )
            run.report.add_action(finding, heal, entry.op_id)
            entries.append(entry)
        for finding, heal in run.to_rv3:
            message = compare.heal_message(run.message.run_id, run.location.ghl_location_id, finding, now)
            run.report.add_action(finding, heal, message.dedupe_key)
            messages.append(message)
        for rv3_finding in run.rv3_fixes:
            reference, sent = compare.heal_rv3(conn, run, rv3_finding, patients, now)
            run.report.record_action(rv3_finding.action(reference))
            entries.extend(sent)
        saved = reports.save_checkpoint(
            conn,
            run.row.id,
            run.lease.until,
            calendar_index=calendar_index,
            checkpoint=position,
            report=run.report.model_dump(mode="json"),
            drift=run.report.drift,
            until=until,
        )
        if not saved:
            run.lease.held = False
            raise LeaseLost(f"reconciliation report {run.row.id}")
    run.lease.until = until
    run.to_ghl.clear()
    run.to_rv3.clear()
    run.rv3_fixes.clear()
    for entry in entries:
        dispatch.send(run.work, entry)
    for message in messages:
        try:
            run.work.queues.send(GHL_TO_RV3, message.model_dump(mode="json"))
        except QueueUnavailable:
            log.warning("reconciliation fix not enqueued (storage unavailable); the next run finds it again")


def _complete(run: Run) -> None:
    now = run.work.now()
    run.report.fecha = now
    report = run.report
    with run.work.transaction() as conn:
        if not reports.finish(
            conn, run.row.id, run.lease.until, report=report.model_dump(mode="json"), drift=report.drift, now=now
        ):
            run.lease.held = False
            raise LeaseLost(f"reconciliation report {run.row.id}")
    run.lease.held = False
    counts = {kind.value: report.totales.get(kind.value, 0) for kind in Kind}
    dimensions = {"run_id": run.message.run_id, "location_id": run.location.ghl_location_id, "heal": run.message.heal}
    log.info(
        "reconciliation.completed",
        extra={
            "event": "reconciliation.completed",
            **dimensions,
            "counts": counts,
            "drift": report.drift,
            "count": report.totales.get("acciones", 0),
            "duration_ms": round((now - (run.row.started_at or run.row.created_at)).total_seconds() * 1000),
        },
    )
    if report.drift:
        telemetry.alert(
            "reconciliation_drift",
            f"reconciliation found {report.drift} differences between RV3 and GHL",
            drift=report.drift,
            **dimensions,
        )


def _wait_for_holder(message: ReconcileMessage, row: reports.RunRecord, now: datetime) -> Result:
    """Another worker holds the run. Come back when its lease ends, in case it died (its own message may come
    back before that); once the bound is used up the holder is evidently alive, and this copy is dropped."""
    if message.requeues >= MAX_HOLDER_WAITS:
        return Result(Outcome.duplicate, "run held by a live worker")
    held = row.lease_until or now
    delay = max(1.0, (held - now).total_seconds() + 1)
    raise Later(ErrorKind.rate_limited, "run held by another worker", retry_after=delay)


def _failed(work: Work, message: ReconcileMessage, error: str) -> Result:
    """Retrying is used up or cannot help: the run is marked failed."""
    runs.fail(work, message, error)
    return Result(Outcome.failed, error)


JOB = Job(
    queue=RECONCILE,
    model=ReconcileMessage,
    handle=_handle,
    exhausted=_failed,
    subject=lambda message: {"run_id": message.run_id, "location_id": message.location_id},
)
