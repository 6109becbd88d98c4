"""Structured logs and alert events: what the Azure Monitor alert rules in infra/ query is what the app emits."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.http import ApiError, http_endpoint

ALERTS_BICEP = Path(__file__).resolve().parents[2] / "infra" / "app" / "alerts.bicep"


def _emitted(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(record.getMessage()) for record in caplog.records if record.name.startswith("rv3sync")]


def test_every_alert_kind_the_rules_watch_is_emitted_with_its_event_name(caplog: pytest.LogCaptureFixture) -> None:
    kinds = re.findall(r"kind: '(\w+)'", ALERTS_BICEP.read_text())
    assert {"poison_message", "webhook_failure", "token_refresh_failed", "rate_headroom_low"} <= set(kinds)
    with caplog.at_level(logging.INFO):
        for kind in kinds:
            telemetry.alert(kind, "test", headroom=3, drift=2)
    events = _emitted(caplog)
    assert [e["event"] for e in events] == [f"alert.{kind}" for kind in kinds]
    assert all(e["alert"] == kind for e, kind in zip(events, kinds, strict=True))
    assert all(e["level"] == "WARNING" for e in events)


def test_dimensions_the_alert_conditions_read_survive_into_the_log_line() -> None:
    dimensions = set(re.findall(r"customDimensions\.(\w+)", ALERTS_BICEP.read_text())) - {"event"}
    assert dimensions <= set(telemetry.LOG_FIELDS)


def test_fields_outside_the_allowed_list_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    log = telemetry.get_logger("test")
    with caplog.at_level(logging.INFO):
        log.info("booked", extra={"operation": "create", "patient_name": "María Quispe", "phone": "+51987654321"})
    [line] = _emitted(caplog)
    assert line["operation"] == "create"
    assert "María" not in json.dumps(line) and "+51987654321" not in json.dumps(line)


def test_a_log_line_carries_the_correlation_id_of_its_span(caplog: pytest.LogCaptureFixture) -> None:
    log = telemetry.get_logger("test")
    with caplog.at_level(logging.INFO), telemetry.span("unit", correlation_id="0af7651916cd43dd8448eb211c80319c"):
        log.info("inside")
    [line] = _emitted(caplog)
    assert line["correlation_id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def metric_reader() -> InMemoryMetricReader:
    """An SDK meter provider reading into memory: what the Azure Monitor distro's provider would export."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_every_span_records_its_duration_with_its_outcome(metric_reader: InMemoryMetricReader) -> None:
    with telemetry.span("sql.transaction"):
        pass
    with pytest.raises(RuntimeError), telemetry.span("sql.transaction"):
        raise RuntimeError("lost connection")
    points = [
        p for p in _points(metric_reader, telemetry.DURATION_METRIC) if p.attributes["operation"] == "sql.transaction"
    ]
    assert {p.attributes["success"]: p.count for p in points} == {True: 1, False: 1}


def test_alerts_and_refused_changes_are_counted_as_metrics(metric_reader: InMemoryMetricReader) -> None:
    before = {p.attributes["alert"]: p.value for p in _points(metric_reader, telemetry.ALERTS_METRIC)}
    telemetry.alert("poison_message", "test")
    telemetry.validation_rejected("ghl", "ghl_invalid", operation="sync.rv3_to_ghl")
    alerts = {p.attributes["alert"]: p.value for p in _points(metric_reader, telemetry.ALERTS_METRIC)}
    assert alerts["poison_message"] == before.get("poison_message", 0) + 1
    [refused] = [p for p in _points(metric_reader, telemetry.VALIDATION_METRIC) if p.attributes["source"] == "ghl"]
    assert (refused.attributes["error_code"], refused.value) == ("ghl_invalid", 1)


def _request() -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/ghl/citas", body=b"{}", headers={})


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        (ApiError(400, "invalid_phone", "Teléfono inválido.", details=[{"field": "phone", "value": "98765"}]), True),
        (ApiError(409, "schedule_conflict", "El horario se cruza con otra cita."), True),
        (ApiError(404, "not_found", "Cita no encontrada."), False),
        (ApiError(412, "version_mismatch", "La cita cambió."), False),
    ],
)
def test_a_refused_change_is_one_validation_event_with_its_code_and_never_its_values(
    error: ApiError, counted: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def citas_create(req: func.HttpRequest) -> func.HttpResponse:
        raise error

    with caplog.at_level(logging.INFO):
        response = http_endpoint(citas_create)(_request())
    assert response.status_code == error.status
    events = [e for e in _emitted(caplog) if e.get("event") == "validation.rejected"]
    if not counted:
        assert events == []
        return
    [event] = events
    assert (event["error_code"], event["detail"], event["operation"]) == (error.code, "api", "http.citas_create")
    assert "98765" not in caplog.text
