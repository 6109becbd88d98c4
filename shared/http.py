"""The one place HTTP functions turn results and errors into responses (SPEC §3 error format)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func

from shared import telemetry
from shared.lazy import serial_imports

log = telemetry.get_logger("http")

JSON = "application/json"
# What the caller sent was refused as invalid (bad data, a schedule conflict, a GHL-side rejection relayed):
# counted for the validation-spike alert. Auth, not-found and concurrency (412) answers are not.
VALIDATION_STATUSES = frozenset({400, 409, 422})


class ApiError(Exception):
    """An error the API reports to its caller: status, English snake_case code, Spanish message for staff."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


def _default(value: Any) -> Any:
    with serial_imports:
        from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    text = json.dumps(body, ensure_ascii=False, default=_default)
    return func.HttpResponse(text, status_code=status, headers=dict(headers or {}), mimetype=JSON, charset="utf-8")


def error_response(error: ApiError) -> func.HttpResponse:
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    return json_response(body, status=error.status, headers=error.headers)


Render = Callable[[ApiError], func.HttpResponse]


def http_endpoint(
    handler: Callable[[func.HttpRequest], Any], *, render: Render = error_response
) -> Callable[[func.HttpRequest], Any]:
    """Wrap an HTTP function (sync, or async for one that waits on I/O without holding a function thread): a span
    and one structured log line per request, the correlation id echoed back; ApiError → its response; bad
    settings → 503; anything else → 500 without details. `render` shapes an error's response (the API's JSON by
    default; the console's pages render HTML)."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_wrapper(req: func.HttpRequest) -> func.HttpResponse:
            started = time.perf_counter()
            with _request_span(handler, req) as span:
                try:
                    response = await handler(req)
                except Exception as exc:  # noqa: BLE001 - mapped to its response below
                    response = _failure_response(handler, exc, render)
                return _finish(handler, span, response, started)

        return async_wrapper

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        started = time.perf_counter()
        with _request_span(handler, req) as span:
            try:
                response = handler(req)
            except Exception as exc:  # noqa: BLE001 - mapped to its response below
                response = _failure_response(handler, exc, render)
            return _finish(handler, span, response, started)

    return wrapper


def _request_span(handler: Callable[..., Any], req: func.HttpRequest) -> contextlib.AbstractContextManager[Any]:
    given = (req.headers.get("x-correlation-id") or "").strip().lower()
    return telemetry.span(
        f"HTTP {req.method} {handler.__name__}",
        kind="server",
        traceparent=req.headers.get("traceparent"),
        correlation_id=given or None,
        attributes={"http.method": req.method, "http.route": handler.__name__},
    )


def _finish(handler: Callable[..., Any], span: Any, response: func.HttpResponse, started: float) -> func.HttpResponse:
    span.set_attribute("http.status_code", response.status_code)
    telemetry.log_operation(
        log,
        f"http.{handler.__name__}",
        success=response.status_code < 500,
        started=started,
        status_code=response.status_code,
    )
    correlation = telemetry.current_correlation_id()
    if correlation:
        response.headers["x-correlation-id"] = correlation
    return response


def _failure_response(
    handler: Callable[..., Any], exc: Exception, render: Render = error_response
) -> func.HttpResponse:
    """The one place an error of an HTTP function becomes its response (a 500 hides the details)."""
    with serial_imports:
        from shared.settings import SettingsError

    if isinstance(exc, ApiError):
        if exc.status in VALIDATION_STATUSES:
            telemetry.validation_rejected("api", exc.code, operation=f"http.{handler.__name__}")
        return render(exc)
    if isinstance(exc, SettingsError):
        log.error("configuration error: %s", exc)
        keys = [key for key, _ in exc.problems]
        return render(ApiError(503, "configuration_error", "La configuración del servicio es inválida.", details=keys))
    if _database_unavailable(exc):
        # A failover or an outage, not a bug: nothing was saved, and the caller may simply try again.
        log.warning("database unavailable in %s", handler.__name__, extra={"error_code": type(exc).__name__})
        return render(
            ApiError(
                503,
                "database_unavailable",
                "La base de datos no está disponible en este momento; no se guardó nada. Intente de nuevo en"
                " unos segundos.",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            )
        )
    incident = uuid.uuid4().hex[:12]
    # Where it failed, not what the exception says: messages can carry request data (names, phones).
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unhandled %s in %s (incident %s)\n%s",
        type(exc).__name__,
        handler.__name__,
        incident,
        frames,
        extra={"error_code": type(exc).__name__, "detail": incident},
    )
    return render(ApiError(500, "internal_error", f"Error interno del servicio. Código de incidente: {incident}."))


DATABASE_RETRY_AFTER_S = 5


def _database_unavailable(exc: BaseException) -> bool:
    """SQLAlchemy's connection-level failures (server down or failing over, connection dropped, pool exhausted,
    SQLite busy), as opposed to a bad statement. sqlalchemy is only looked at if something already imported it."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None:
        return False
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    )
