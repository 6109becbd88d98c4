"""Reconciliation triggers (SPEC §8): the daily timer, the `reconcile` queue worker, on-demand runs, reports."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports
from shared.setting_defaults import RECONCILE_SCHEDULE, schedule

bp = func.Blueprint()
TAG = "reconciliation"
RUN_RESPONSES: dict[int, str | None] = {
    202: "ReconciliationRun",
    404: "ErrorResponse",
    409: "ErrorResponse",
    422: "ErrorResponse",
}


@bp.timer_trigger(arg_name="timer", schedule=schedule("RECONCILE_SCHEDULE", RECONCILE_SCHEDULE))
def reconciliation_timer(timer: func.TimerRequest) -> None:
    with serial_imports:
        from shared.services.reconcile import runs
        from shared.work import Work

    runs.scheduled_run(Work.current())


@bp.queue_trigger(arg_name="msg", queue_name="reconcile", connection="AzureWebJobsStorage")
def reconcile_location(msg: func.QueueMessage) -> None:
    with serial_imports:
        from shared.services.reconcile import worker
        from shared.triggers import run_queue_message

    deliveries = msg.dequeue_count or 1
    run_queue_message("reconcile", msg, lambda data: worker.process(data, dequeue_count=deliveries))


def _start(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import has_body, parse_body, parse_query
        from shared.api.schemas import ReconciliationRunIn, ReconciliationRunQuery
        from shared.services.reconcile import runs
        from shared.work import Work

    request = parse_body(req, ReconciliationRunIn) if has_body(req) else parse_query(req, ReconciliationRunQuery)
    return json_response(runs.start_run(Work.current(), request).model_dump(mode="json"), status=202)


@api_route(
    bp,
    "reconciliation/run",
    methods=["POST"],
    summary="Reconcile now (one location or every active one); the reports fill in as the queue runs",
    tag=TAG,
    body="ReconciliationRunIn",
    body_required=False,
    responses=RUN_RESPONSES,
)
def reconciliation_run(req: func.HttpRequest) -> func.HttpResponse:
    return _start(req)


@api_route(
    bp,
    "reconciliation/reports",
    methods=["POST"],
    summary="Same as POST /api/reconciliation/run (the route RV3's integration used)",
    tag=TAG,
    body="ReconciliationRunIn",
    body_required=False,
    responses=RUN_RESPONSES,
)
def reconciliation_reports_create(req: func.HttpRequest) -> func.HttpResponse:
    return _start(req)


@api_route(
    bp,
    "reconciliation/reports",
    methods=["GET"],
    summary="Reconciliation reports, newest first (filters: location_id, run_id, status)",
    tag=TAG,
    query="ReportsQuery",
    responses={200: "ReconciliationReportList"},
)
def reconciliation_reports(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.api.schemas import ReportsQuery
        from shared.services.reconcile import reports
        from shared.work import Work

    return json_response(reports.list_reports(Work.current(), parse_query(req, ReportsQuery)).model_dump(mode="json"))


@api_route(
    bp,
    "reconciliation/reports/{id:int}",
    methods=["GET"],
    summary="One reconciliation report: the differences found, their totals and the fixes sent",
    tag=TAG,
    responses={200: "ReconciliationReportOut"},
)
def reconciliation_report(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import route_id
        from shared.services.reconcile import reports
        from shared.work import Work

    return json_response(reports.get_report(Work.current(), route_id(req)).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/metrics/reconciliation",
    methods=["GET"],
    summary="Last run and last successful run per location; `stale` flags a missed or failed daily run",
    tag="metrics",
    responses={200: "ReconciliationMetrics"},
)
def metrics_reconciliation(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services.reconcile import reports
        from shared.work import Work

    return json_response(reports.metrics(Work.current()).model_dump(mode="json"))
