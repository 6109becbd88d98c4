"""Telemetry: structured JSON logs, OpenTelemetry spans and metrics, and alert events, exported to Application
Insights when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set and to nothing (no cost, no error) when it is not.

One correlation id follows a change from the HTTP request through the queue to the GHL call: it is the
OpenTelemetry trace id, carried in queue messages (`correlation_id`, and `traceparent` for the exact parent).
OpenTelemetry is imported on first use, never when `function_app` is imported (cold start).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.lazy import serial_imports

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

TRACER_NAME = "rv3sync"
LOGGER_NAME = "rv3sync"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_configured = False
_configure_lock = threading.Lock()

# Attributes a log line may carry (from `extra=`); anything else a caller passes is dropped, so a careless
# `extra={"patient": ...}` cannot put personal data into the logs.
LOG_FIELDS = (
    "operation",
    "success",
    "duration_ms",
    "location_id",
    "appointment_id",
    "event_id",
    "op_id",
    "queue",
    "status_code",
    "error_code",
    "trace_id",
    "event",
    "alert",
    "detail",
    "outcome",
    "count",
    "drift",
    "headroom",
    "run_id",
    "attempt",
    "heal",
    "counts",
    "actor",
    "role",
)


class StructuredRecords(logging.Filter):
    """Renders each record of our loggers as one JSON object, whatever handler prints or ships it.

    The Functions worker forwards only the message text to the host (and Application Insights), so the
    structure has to be in the message: time, level, logger, message, the allowed `extra` fields and the
    correlation id. The fields also stay on the record for the Azure Monitor exporter's customDimensions.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_structured", False):
            return True
        entry: dict[str, Any] = {"message": record.getMessage(), "logger": record.name, "level": record.levelname}
        for field in LOG_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        corr = correlation.get()
        if corr:
            entry["correlation_id"] = corr
            record.correlation_id = corr
        record.msg = json.dumps(entry, ensure_ascii=False, default=str)
        record.args = ()
        record._structured = True
        return True


_structured = StructuredRecords()


def get_logger(name: str) -> logging.Logger:
    """The logger of one part of the app (`rv3sync.<name>`), emitting structured JSON lines."""
    logger = logging.getLogger(f"{LOGGER_NAME}.{name}")
    if _structured not in logger.filters:
        logger.addFilter(_structured)
    return logger


def configure() -> None:
    """Once per process: the Azure Monitor exporter when APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    global _configured  # noqa: PLW0603 - process-wide, idempotent
    if _configured:
        return
    with _configure_lock:
        if not _configured:
            _configure_exporter()
            _configured = True


def warm() -> None:
    """Configure telemetry and load what a span needs ahead of a paced API call: loading it inside the first
    call of a process (~100 ms) would send that call later than its rate-budget slot, past the pacing's slack."""
    configure()
    _tracer()


def _configure_exporter() -> None:
    with serial_imports:
        from shared.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError:
        return  # the first HTTP call reports the configuration error; telemetry must not hide it
    secret = settings.applicationinsights_connection_string
    if secret is None:
        return
    with serial_imports:
        from azure.monitor.opentelemetry import configure_azure_monitor

    options: dict[str, Any] = {"connection_string": secret.get_secret_value(), "logger_name": LOGGER_NAME}
    if settings.azure_client_id:  # App Insights with local auth disabled accepts Entra tokens only
        with serial_imports:
            from azure.identity import ManagedIdentityCredential

        options["credential"] = ManagedIdentityCredential(client_id=settings.azure_client_id)
    configure_azure_monitor(**options)


def _tracer() -> Any:
    with serial_imports:
        from opentelemetry import trace

    return trace.get_tracer(TRACER_NAME)


def _parent(traceparent: str | None, correlation_id: str | None) -> Context | None:
    """The parent context of work that continues a trace: the exact span when known, else the trace id."""
    with serial_imports:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if traceparent:
        context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
    if correlation_id and _TRACE_ID.match(correlation_id):
        remote = trace.SpanContext(
            trace_id=int(correlation_id, 16),
            span_id=int.from_bytes(os.urandom(8), "big") or 1,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(remote))
    return None


@contextmanager
def span(
    name: str,
    *,
    kind: str = "internal",
    traceparent: str | None = None,
    correlation_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span (HTTP request, queue message, GHL call, SQL transaction) that also sets the correlation id."""
    configure()
    with serial_imports:
        from opentelemetry.trace import SpanKind, Status, StatusCode

    kinds = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "consumer": SpanKind.CONSUMER}
    parent = _parent(traceparent, correlation_id) if (traceparent or correlation_id) else None
    started = time.perf_counter()
    failed = False
    with _tracer().start_as_current_span(
        name, context=parent, kind=kinds.get(kind, SpanKind.INTERNAL), attributes=dict(attributes or {})
    ) as current:
        context = current.get_span_context()
        token = correlation.set(
            f"{context.trace_id:032x}" if context.is_valid else (correlation_id or correlation.get())
        )
        try:
            yield current
        except Exception as exc:
            failed = True
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            correlation.reset(token)
            # Span names are bounded (handler, queue, GHL path template, "sql.transaction"): safe as a dimension.
            _instrument("histogram", DURATION_METRIC, "ms").record(
                (time.perf_counter() - started) * 1000, {"operation": name, "success": not failed}
            )


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to put in a queue message (None when nothing is traced)."""
    with serial_imports:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def current_correlation_id() -> str | None:
    return correlation.get()


def log_operation(
    logger: logging.Logger, operation: str, *, success: bool, started: float, level: int | None = None, **fields: Any
) -> None:
    """One structured line per unit of work: operation, success, duration_ms and the ids given."""
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.log(
        level if level is not None else (logging.INFO if success else logging.WARNING),
        "%s %s",
        operation,
        "ok" if success else "failed",
        extra={"operation": operation, "success": success, "duration_ms": duration_ms, **fields},
    )


def alert(kind: str, message: str, **dimensions: Any) -> None:
    """A structured warning event `alert.<kind>` (the Azure Monitor alert rules in infra/ query these), also
    counted in the `rv3sync.alerts` metric."""
    configure()
    get_logger("alerts").warning(
        "alert.%s: %s", kind, message, extra={"event": f"alert.{kind}", "alert": kind, **dimensions}
    )
    _instrument("counter", ALERTS_METRIC, "{alert}").add(1, {"alert": kind})


def validation_rejected(source: str, error_code: str, *, operation: str) -> None:
    """A change refused as invalid — by our API (`source="api"`) or by GHL (`"ghl"`) — as a structured warning
    event `validation.rejected` and the `rv3sync.validation.rejected` metric. One is the front desk's typo; many
    in a short time (a broken client, a GHL-side rule change) is the `validation_spike` alert rule in infra/.
    Only the code is recorded: the rejected values can be patient data."""
    configure()
    get_logger("validation").warning(
        "validation.rejected: %s %s",
        source,
        error_code,
        extra={"event": "validation.rejected", "detail": source, "error_code": error_code, "operation": operation},
    )
    _instrument("counter", VALIDATION_METRIC, "{rejection}").add(1, {"source": source, "error_code": error_code})


DURATION_METRIC = "rv3sync.operation.duration"
ALERTS_METRIC = "rv3sync.alerts"
VALIDATION_METRIC = "rv3sync.validation.rejected"
_instruments: dict[str, Any] = {}
_instruments_lock = threading.Lock()


def _instrument(kind: str, name: str, unit: str) -> Any:
    """An OpenTelemetry instrument, created once. Without a meter provider (no connection string) the API's
    no-op meter records nothing at no cost; the Azure Monitor distro installs a real one."""
    instrument = _instruments.get(name)
    if instrument is None:
        with _instruments_lock:
            instrument = _instruments.get(name)
            if instrument is None:
                with serial_imports:
                    from opentelemetry import metrics

                meter = metrics.get_meter(TRACER_NAME)
                factory = meter.create_histogram if kind == "histogram" else meter.create_counter
                instrument = _instruments[name] = factory(name, unit=unit)
    return instrument
