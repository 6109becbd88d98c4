"""Metrics endpoints of SPEC §3 (success, failures and durations per operation over a time window)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.work import Work

bp = func.Blueprint()
TAG = "metrics"


def _metrics(req: func.HttpRequest, compute: Callable[["Work", int], "BaseModel"]) -> func.HttpResponse:
    with serial_imports:
        from shared.api.requests import parse_query
        from shared.api.schemas import MetricsQuery
        from shared.work import Work

    return json_response(compute(Work.current(), parse_query(req, MetricsQuery).hours).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/metrics/webhooks",
    methods=["GET"],
    summary="GHL webhooks per event type (counts, success rate, mean and p95 duration) and their health",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "WebhookMetrics"},
)
def metrics_webhooks(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import metrics

    return _metrics(req, metrics.webhook_metrics)


@api_route(
    bp,
    "ghl/metrics",
    methods=["GET"],
    summary="System metrics: GHL and Odoo calls, webhooks per operation, health, queue and poison depths, sync states",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "SystemMetrics"},
)
def metrics_system(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import metrics

    return _metrics(req, metrics.system_metrics)


@api_route(
    bp,
    "ghl/metrics/ghl",
    methods=["GET"],
    summary="GHL calls per operation (counts, success rate, mean and p95 duration), responses, rate budget",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "GhlMetrics"},
)
def metrics_ghl(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import metrics

    return _metrics(req, metrics.ghl_metrics)


@api_route(
    bp,
    "ghl/metrics/odoo",
    methods=["GET"],
    summary="Odoo calls per model and method (counts, success rate, mean and p95 duration) and their responses",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "OdooMetrics"},
)
def metrics_odoo(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.services import metrics

    return _metrics(req, metrics.odoo_metrics)
