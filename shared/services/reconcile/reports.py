"""What the API reads of reconciliation: the reports, and per location its last and last successful run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.api.schemas import (
    ReconciliationLocationState,
    ReconciliationMetrics,
    ReconciliationReportList,
    ReconciliationReportOut,
    ReconciliationReportSummary,
    ReconciliationRunState,
    ReportsQuery,
    ReportWindowOut,
)
from shared.http import ApiError
from shared.store import locations as location_repo
from shared.store import reports
from shared.work import Work
from sync_core.reconcile import ReconciliationReport
from sync_core.times import zone

STALE_AFTER = timedelta(hours=26)  # daily schedule plus two hours of grace, as the heartbeat alert


def _summary_fields(row: reports.RunRecord) -> dict[str, Any]:
    report = ReconciliationReport.model_validate(row.report)
    return {
        "id": row.id,
        "run_id": row.run_id,
        "location_id": row.location_id,
        "status": row.status,
        "heal": row.heal,
        "fecha": row.finished_at or row.created_at,
        "window": ReportWindowOut(desde=row.window_start, hasta=row.window_end),
        "drift": report.drift,
        "totales": report.totales,
        "error": row.error,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def list_reports(work: Work, query: ReportsQuery) -> ReconciliationReportList:
    flt = reports.ListFilter(location_id=query.location_id, run_id=query.run_id, status=query.status)
    with work.transaction() as conn:
        rows, total = reports.page(conn, flt, offset=(query.page - 1) * query.page_size, limit=query.page_size)
    return ReconciliationReportList(
        count=total,
        page=query.page,
        page_size=query.page_size,
        results=[ReconciliationReportSummary(**_summary_fields(row)) for row in rows],
    )


def get_report(work: Work, report_id: int) -> ReconciliationReportOut:
    with work.transaction() as conn:
        row = reports.get(conn, report_id)
    if row is None:
        raise ApiError(404, "report_not_found", "El reporte de conciliación no existe.")
    report = ReconciliationReport.model_validate(row.report)
    return ReconciliationReportOut(
        **_summary_fields(row),
        faltantes_local=report.faltantes_local,
        faltantes_ghl=report.faltantes_ghl,
        canceladas_no_actualizadas=report.canceladas_no_actualizadas,
        desincronizadas=report.desincronizadas,
        acciones=report.acciones,
        checkpoint=row.checkpoint if row.status in reports.OPEN else None,
    )


def _state(row: reports.RunRecord | None) -> ReconciliationRunState | None:
    if row is None:
        return None
    return ReconciliationRunState(
        run_id=row.run_id,
        report_id=row.id,
        status=row.status,
        created_at=row.created_at,
        finished_at=row.finished_at,
        drift=row.drift_count,
        error=row.error,
    )


def location_states(work: Work, now: datetime | None = None) -> list[ReconciliationLocationState]:
    """Per active location: its last run, its last successful run, and whether that is too long ago."""
    moment = now or work.now()
    states = []
    with work.transaction() as conn:
        for location in location_repo.list_locations(conn, active_only=True):
            last = reports.latest(conn, location.ghl_location_id)
            success = reports.latest(conn, location.ghl_location_id, status=reports.COMPLETED)
            age = moment - success.finished_at if success is not None and success.finished_at else None
            states.append(
                ReconciliationLocationState(
                    location_id=location.ghl_location_id,
                    last_run=_state(last),
                    last_success=_state(success),
                    hours_since_success=round(age.total_seconds() / 3600, 2) if age is not None else None,
                    stale=age is None or age > STALE_AFTER,
                )
            )
    return states


def metrics(work: Work, now: datetime | None = None) -> ReconciliationMetrics:
    states = location_states(work, now)
    return ReconciliationMetrics(
        stale_after_hours=STALE_AFTER.total_seconds() / 3600,
        healthy=not any(state.stale for state in states),
        locations=states,
    )


@dataclass(frozen=True)
class DayCell:
    """One day compared for one location: its latest run (None: no run compared that day)."""

    day: date
    report_id: int | None = None
    status: str | None = None
    drift: int | None = None


@dataclass(frozen=True)
class LocationDays:
    location_id: str
    days: list[DayCell]


def drift_calendar(work: Work, days: int = 14, now: datetime | None = None) -> list[LocationDays]:
    """Per active location, the last `days` days it compares (each run's window start, in the location's zone),
    each with its latest run: drift at a glance, and the days no run compared."""
    moment = now or work.now()
    runs: dict[str, list[reports.RunDay]] = {}
    with work.transaction() as conn:
        active = location_repo.list_locations(conn, active_only=True)
        for run in reports.created_since(conn, moment - timedelta(days=days + 2)):
            runs.setdefault(run.location_id, []).append(run)
    calendar = []
    for location in active:
        tz = zone(location.timezone)
        first = moment.astimezone(tz).date() - timedelta(days=days - 1)
        latest = {run.window_start.astimezone(tz).date(): run for run in runs.get(location.ghl_location_id, [])}
        cells = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            found = latest.get(day)  # oldest first: the latest run of the day wins
            cells.append(DayCell(day, found.id, found.status, found.drift_count) if found else DayCell(day))
        calendar.append(LocationDays(location.ghl_location_id, cells))
    return calendar
