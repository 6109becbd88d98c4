"""Structured logs and alert events: what the Azure Monitor alert rules in infra/ query is what the app emits."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from shared import telemetry

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
