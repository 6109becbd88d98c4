"""Health endpoints: liveness and readiness of SQL and storage (200 ready / 503 with the failing part)."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()
TAG = "health"


@api_route(
    bp,
    "health",
    methods=["GET"],
    summary="Liveness and readiness of SQL and storage (anonymous, for probes)",
    tag=TAG,
    anonymous=True,
    responses={200: "Health", 503: "Health"},
)
def health(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.health import readiness

    report = readiness()
    return json_response(report.as_dict(), status=200 if report.ok else 503)


@api_route(
    bp, "ping", methods=["GET"], summary="Bare liveness: text 'pong'", tag=TAG, anonymous=True, dependencies=False
)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    """Bare liveness: the worker answers, nothing else is touched (load balancers, latency baselines)."""
    return func.HttpResponse("pong", mimetype="text/plain")


@api_route(
    bp,
    "ghl/health",
    methods=["GET"],
    summary="Readiness of SQL, storage and the GHL token of every active location",
    tag=TAG,
    responses={200: "Health", 503: "Health"},
)
def ghl_health(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.health import readiness

    report = readiness(ghl=True)
    return json_response(report.as_dict(), status=200 if report.ok else 503)
