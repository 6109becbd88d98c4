"""Health endpoints: liveness and readiness of SQL and storage (200 ready / 503 with the failing part)."""

import azure.functions as func

from shared.http import http_endpoint, json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_endpoint
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.health import readiness

    report = readiness()
    return json_response(report.as_dict(), status=200 if report.ok else 503)


@bp.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    """Bare liveness: the worker answers, nothing else is touched (load balancers, latency baselines)."""
    return func.HttpResponse("pong", mimetype="text/plain")


@bp.route(route="ghl/health", methods=["GET"])
@http_endpoint
def ghl_health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.health import readiness

    report = readiness()
    return json_response(report.as_dict(), status=200 if report.ok else 503)
