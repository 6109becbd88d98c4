"""Metrics endpoints of SPEC §3 (success, failures and durations per operation over a time window)."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response

bp = func.Blueprint()
TAG = "metrics"


@api_route(
    bp,
    "ghl/metrics/webhooks",
    methods=["GET"],
    summary="GHL webhooks per event type (counts, success rate, mean and p95 duration) and their health",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "WebhookMetrics", 400: "ErrorResponse"},
)
def metrics_webhooks(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api.requests import parse_query
    from shared.api.schemas import MetricsQuery
    from shared.services import metrics

    query = parse_query(req, MetricsQuery)
    return json_response(metrics.webhook_metrics(query.hours).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/metrics",
    methods=["GET"],
    summary="System metrics: GHL calls and webhooks per operation, health, queue and poison depths, sync states",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "SystemMetrics", 400: "ErrorResponse"},
)
def metrics_system(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api.requests import parse_query
    from shared.api.schemas import MetricsQuery
    from shared.services import metrics

    query = parse_query(req, MetricsQuery)
    return json_response(metrics.system_metrics(query.hours).model_dump(mode="json"))


@api_route(
    bp,
    "ghl/metrics/ghl",
    methods=["GET"],
    summary="GHL calls per operation (counts, success rate, mean and p95 duration), responses, rate budget",
    tag=TAG,
    query="MetricsQuery",
    responses={200: "GhlMetrics", 400: "ErrorResponse"},
)
def metrics_ghl(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api.requests import parse_query
    from shared.api.schemas import MetricsQuery
    from shared.services import metrics

    query = parse_query(req, MetricsQuery)
    return json_response(metrics.ghl_metrics(query.hours).model_dump(mode="json"))
