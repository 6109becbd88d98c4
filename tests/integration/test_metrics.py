"""Metrics and GHL health as operations reads them: computed from what really happened (SQL, storage, GHL)."""

from __future__ import annotations

from typing import Any

from blueprints import citas as citas_api
from blueprints import health as health_api
from blueprints import locations as locations_api
from blueprints import metrics as api
from shared import runtime
from shared.queues import APP_QUEUES
from tests.fixtures.app import App


def _get(app: App, function: Any) -> Any:
    response = app.call(function, "GET", "ghl/metrics", params={"hours": "24"})
    assert response.status == 200, response.body
    return response.body


def test_ghl_metrics_count_each_call_by_operation_and_show_the_rate_budget(app_with_ghl: tuple[App, Any]) -> None:
    app, sandbox = app_with_ghl
    for _ in range(3):
        app.call(locations_api.locations_sync_calendars, "POST", "x", route={"id": str(app.location_pk)})
    sandbox.admin.start_outage(30)
    app.call(locations_api.locations_sync_calendars, "POST", "x", route={"id": str(app.location_pk)})
    body = _get(app, api.metrics_ghl)
    calendars = body["ghl_operations"]["list_calendars"]
    assert calendars["success_count"] == 3
    assert calendars["failed_count"] >= 1
    assert calendars["total_count"] == calendars["success_count"] + calendars["failed_count"]
    assert 0 < body["ghl_health_percentage"] < 100
    assert body["responses"]["200"] == 3
    budget = body["rate_budget"]["loc_demo"]
    assert (budget["max_requests"], budget["daily_limit"]) == (100, 200_000)
    assert budget["used_today"] >= 4 and budget["reported_remaining"] is not None
    # Hour by hour for the charts: 24 hours, oldest first, the calls all in the last one.
    timeline = body["timeline"]
    assert len(timeline) == 24 and timeline == sorted(timeline, key=lambda hour: hour["start"])
    assert sum(hour["total_count"] for hour in timeline) == body["totals"]["total_count"]
    assert timeline[-1]["failed_count"] >= 1 and timeline[-1]["success_rate"] < 100
    assert all(hour["total_count"] == 0 for hour in timeline[:-2])


def test_system_metrics_show_queues_sync_states_and_overall_health(app: App) -> None:
    app.call(
        citas_api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Cita",
            "contact_id": "c1",
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    body = _get(app, api.metrics_system)
    assert body["sync_states"] == {"pending": 1}
    assert body["queues"]["rv3-to-ghl"]["depth"] >= 1
    assert set(body["queues"]) == set(APP_QUEUES)  # both wings' queues
    assert set(body["system_health"]) == {"ghl_health_percentage", "webhook_health_percentage", "overall_health"}


def test_ghl_health_fails_for_a_location_whose_token_ghl_rejected(
    app_with_ghl: tuple[App, Any], monkeypatch: Any
) -> None:
    app, _sandbox = app_with_ghl
    healthy = app.call(health_api.ghl_health, "GET", "ghl/health")
    assert healthy.status == 200 and healthy.body["checks"]["ghl:loc_demo"]["ok"] is True

    monkeypatch.setenv("GHL_PRIVATE_TOKEN", "pit-revoked")
    runtime.reset()
    app.call(locations_api.locations_sync_calendars, "POST", "x", route={"id": str(app.location_pk)})
    broken = app.call(health_api.ghl_health, "GET", "ghl/health")
    assert broken.status == 503
    assert "GHL rechazó el token" in broken.body["checks"]["ghl:loc_demo"]["detail"]
    assert "pit-revoked" not in str(broken.body)
