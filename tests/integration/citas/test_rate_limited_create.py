"""A create GHL answers 429 is retried later as a plain create: GHL's budget is not spent looking it up."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from blueprints import citas as citas_api
from shared.queues import RV3_TO_GHL
from shared.services import outbound
from sync_core import protocol
from tests.fixtures.app import App

CREATE = "POST /calendars/events/appointments"


def _next_message(app: App) -> dict[str, Any]:
    """The next visible rv3-to-ghl message (a requeued one shows up after its delay, bounded wait)."""
    queue = QueueClient.from_connection_string(
        app.env["AzureWebJobsStorage"], RV3_TO_GHL, message_decode_policy=TextBase64DecodePolicy()
    )
    for _ in range(50):
        found = list(queue.receive_messages(max_messages=1, visibility_timeout=30))
        if found:
            queue.delete_message(found[0])
            data: dict[str, Any] = json.loads(found[0].content)
            return data
        time.sleep(0.1)
    raise AssertionError("no rv3-to-ghl message within 5 s")


def _book(app: App) -> None:
    """A new cita at the front desk, for a new patient (contact upsert, then create)."""
    created = app.call(
        citas_api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Consulta",
            "patient": {"name": "Lucía Ramos", "phone": "987111222"},
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    assert created.status == 201


def test_a_rate_limited_create_is_sent_again_without_a_lookup(app_with_ghl: tuple[App, Any]) -> None:
    app, sandbox = app_with_ghl
    QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], RV3_TO_GHL).clear_messages()
    sandbox.admin.configure("rate_limit", {"interval_ms": 1000})  # Retry-After: 1 s
    sandbox.admin.configure("faults", {"endpoints": {CREATE: {"rate_limit": 1.0}}})
    _book(app)

    assert outbound.process(_next_message(app)).result == "requeued"
    sandbox.admin.configure("faults", {})
    assert outbound.process(_next_message(app)).result == "applied"  # the same change, after Retry-After

    calls = sandbox.admin.counts()["by_endpoint"]
    assert "GET /calendars/events" not in calls  # no lookup: a 429 proves GHL created nothing
    assert len(sandbox.admin.state()["appointments"]) == 1


def test_a_lookup_met_by_a_ghl_outage_comes_back_later_and_adopts_the_event_once_ghl_answers(
    app_with_ghl: tuple[App, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the chaos run: the lookup's GHL error escaped the worker, the host retried the message five times
    # during the outage and moved it to the poison queue; the appointment stayed pending for good.
    app, sandbox = app_with_ghl
    monkeypatch.setattr(protocol, "MAX_REQUEST", timedelta(milliseconds=1))  # look up at once, not in 40 s
    QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], RV3_TO_GHL).clear_messages()
    sandbox.admin.configure(
        "faults", {"endpoints": {CREATE: {"applied_then_failed": 1.0, "applied_then_failed_outcome": "reset"}}}
    )
    _book(app)
    assert outbound.process(_next_message(app)).result == "requeued"  # made in GHL, but no answer: unknown
    sandbox.admin.configure("faults", {"all_endpoints": {"server_error": 1.0, "server_error_statuses": [503]}})
    assert outbound.process(_next_message(app)).result == "requeued"  # the lookup meets the outage
    sandbox.admin.configure("faults", {})
    assert outbound.process(_next_message(app)).result == "skipped"  # found and adopted: nothing left to send
    assert len(sandbox.admin.state()["appointments"]) == 1
    assert sandbox.admin.counts()["by_endpoint"][CREATE] == 1
