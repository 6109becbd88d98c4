"""Starting and recording reconciliation runs: their windows and messages, their rows, failures and alerts.

A run has one row per location, created with it (or adopted from a message that has none, replayed by hand);
a run that cannot finish is marked failed and raises the missed-run alert.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from pydantic import Field

from shared import telemetry
from shared.api.schemas import ReconciliationRun, ReconciliationRunIn, ReconciliationRunReport, ReportWindowOut
from shared.http import ApiError
from shared.queues import RECONCILE, QueueMessage, QueueUnavailable
from shared.services.reconcile.reports import location_states
from shared.store import locations as location_repo
from shared.store import reports
from shared.work import Work
from sync_core.models import UtcDatetime
from sync_core.reconcile import ReconciliationReport, ReportWindow, SlicePlan
from sync_core.times import local_bound

log = telemetry.get_logger("reconcile")

MAX_WINDOW = timedelta(days=31)


class ReconcileMessage(QueueMessage):
    """One location's run on the `reconcile` queue; redelivered or continued, it resumes the same report."""

    run_id: str
    location_id: str
    desde: UtcDatetime
    hasta: UtcDatetime
    heal: bool = False
    max_events: int = Field(SlicePlan().max_events, ge=2, le=5000)


def run_window(
    location: location_repo.LocationRecord,
    desde: datetime | date | None,
    hasta: datetime | date | None,
    *,
    now: datetime,
    hours: int,
) -> tuple[datetime, datetime]:
    """[desde, hasta) in UTC: dates are whole local days (`hasta` included); default the last `hours`."""
    end = local_bound(hasta, location.timezone, end=True) if hasta is not None else now
    start = local_bound(desde, location.timezone, end=False) if desde is not None else end - timedelta(hours=hours)
    if start >= end:
        raise ApiError(422, "invalid_range", "La fecha 'desde' debe ser anterior a 'hasta'.", details=["desde"])
    if end - start > MAX_WINDOW:
        raise ApiError(422, "window_too_long", "La ventana de conciliación no puede superar 31 días.")
    return start, end


def _empty_report(location_id: str, window: tuple[datetime, datetime], now: datetime) -> ReconciliationReport:
    return ReconciliationReport(
        fecha=now, location_id=location_id, window=ReportWindow(desde=window[0], hasta=window[1])
    )


def start_run(work: Work, request: ReconciliationRunIn, *, now: datetime | None = None) -> ReconciliationRun:
    """Queue one `reconcile` message per location (the one named, else every active one) under a new run id."""
    moment = now or work.now()
    settings = work.settings
    with work.transaction() as conn:
        if request.location_id:
            found = location_repo.find_location(conn, request.location_id)
            if found is None:
                raise ApiError(404, "location_not_found", f"La sede {request.location_id} no está configurada.")
            if not found.is_active:
                raise ApiError(409, "location_inactive", "La sede está desactivada.")
            targets = [found]
        else:
            targets = location_repo.list_locations(conn, active_only=True)
    if not targets:
        raise ApiError(409, "no_active_locations", "No hay sedes activas que conciliar.")
    run_id = str(uuid.uuid4())
    heal = settings.reconcile_autoheal if request.heal is None else request.heal
    windows = {
        t.ghl_location_id: run_window(
            t, request.desde, request.hasta, now=moment, hours=settings.reconcile_window_hours
        )
        for t in targets
    }
    messages: list[ReconcileMessage] = []
    refs: list[ReconciliationRunReport] = []
    with work.transaction() as conn:
        for location_id, window in windows.items():
            report_id = reports.create(
                conn,
                run_id=run_id,
                location_id=location_id,
                window=window,
                heal=heal,
                report=_empty_report(location_id, window, moment).model_dump(mode="json"),
                now=moment,
            )
            refs.append(
                ReconciliationRunReport(
                    id=report_id,
                    location_id=location_id,
                    window=ReportWindowOut(desde=window[0], hasta=window[1]),
                    status="queued",
                )
            )
            messages.append(
                ReconcileMessage(
                    run_id=run_id,
                    location_id=location_id,
                    desde=window[0],
                    hasta=window[1],
                    heal=heal,
                    max_events=request.max_events_per_slice or SlicePlan().max_events,
                )
            )
    try:
        for message in messages:
            work.queues.send(RECONCILE, message.model_dump(mode="json", exclude_none=True))
    except QueueUnavailable:
        with work.transaction() as conn:
            for ref in refs:
                reports.fail(conn, ref.id, "queue_unavailable", work.now())
        _alert_missed(run_id, None, "queue_unavailable")
        raise ApiError(
            503, "queue_unavailable", "No se pudo encolar la conciliación; reintente en unos minutos."
        ) from None
    log.info(
        "reconciliation.started",
        extra={"event": "reconciliation.started", "run_id": run_id, "locations": len(refs), "heal": heal},
    )
    return ReconciliationRun(run_id=run_id, heal=heal, reports=refs)


def scheduled_run(work: Work, now: datetime | None = None) -> ReconciliationRun | None:
    """The timer's run: first flag locations whose last successful run is too old (a missed or failed run:
    timers are not retried), then fan out over every active location."""
    moment = now or work.now()
    for state in location_states(work, moment):
        if state.stale and (state.last_run is not None):
            _alert_missed(state.last_run.run_id, state.location_id, "no_recent_success")
    try:
        return start_run(work, ReconciliationRunIn(), now=moment)
    except ApiError as exc:
        if exc.code == "no_active_locations":
            log.info("reconciliation skipped: no active locations")
            return None
        raise


def _alert_missed(run_id: str, location_id: str | None, reason: str) -> None:
    telemetry.alert(
        "reconciliation_missed",
        f"reconciliation run {run_id} did not complete ({reason})",
        run_id=run_id,
        location_id=location_id,
        detail=reason,
    )


def adopt(work: Work, message: ReconcileMessage, now: datetime) -> reports.RunRecord:
    """The run row of a message whose row is missing (enqueued by hand or replayed from the poison queue)."""
    window = (message.desde, message.hasta)
    try:
        with work.transaction() as conn:
            reports.create(
                conn,
                run_id=message.run_id,
                location_id=message.location_id,
                window=window,
                heal=message.heal,
                report=_empty_report(message.location_id, window, now).model_dump(mode="json"),
                now=now,
            )
    except sa.exc.IntegrityError:
        pass  # created concurrently by a redelivery of the same message
    with work.transaction() as conn:
        row = reports.find(conn, message.run_id, message.location_id)
    assert row is not None
    return row


def fail(work: Work, message: ReconcileMessage, error: str) -> None:
    """The run cannot finish: marked failed (the reports and metrics show it) and the missed-run alert raised."""
    with work.transaction() as conn:
        row = reports.find(conn, message.run_id, message.location_id)
        failed = row is not None and reports.fail(conn, row.id, error, work.now())
    if failed:
        _alert_missed(message.run_id, message.location_id, error)
