"""The reconciliation HTTP API, the daily timer and the metrics that show a missed or failed run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blueprints import reconcile as endpoints
from shared import runtime
from shared.queues import RECONCILE, Queues, QueueUnavailable
from shared.services.reconcile import runs, worker
from shared.store import locations as location_repo
from shared.store import reports
from shared.store.schema import reconciliation_reports
from shared.work import Work
from tests.fixtures.app import LOCATION, seed_location

from .conftest import DAY, Sides, drain

# The HTTP layer, the timer and the metrics read what the run tests check on both engines: SQLite suffices here.
pytestmark = [pytest.mark.azurite, pytest.mark.parametrize("db", ["sqlite"], indirect=True)]


def queued_messages() -> list[dict[str, Any]]:
    client = runtime.queues().client(RECONCILE)
    return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]


def test_an_on_demand_run_is_accepted_and_queued_per_location(sides: Sides) -> None:
    response = sides.app.call(
        endpoints.reconciliation_run,
        "POST",
        "reconciliation/run",
        body={"location_id": LOCATION, "desde": "2030-03-04", "hasta": "2030-03-05", "heal": True},
    )
    assert response.status == 202
    assert response.body["heal"] is True
    (report,) = response.body["reports"]
    # Whole days in Lima (UTC-5), `hasta` included.
    assert report["window"] == {"desde": "2030-03-04T05:00:00Z", "hasta": "2030-03-06T05:00:00Z"}
    assert report["status"] == "queued"
    (message,) = queued_messages()
    assert (message["run_id"], message["location_id"], message["heal"]) == (response.body["run_id"], LOCATION, True)


def test_a_run_without_a_body_reconciles_every_active_location_over_the_configured_window(sides: Sides) -> None:
    with sides.app.db.transaction() as conn:
        location_repo.insert_location(
            conn,
            {"ghl_location_id": "loc_closed", "name": "Cerrada", "timezone": "America/Lima", "is_active": False},
            datetime.now(UTC),
        )
    response = sides.app.call(endpoints.reconciliation_run, "POST", "reconciliation/run", params={"code": "key"})
    assert response.status == 202
    (report,) = response.body["reports"]
    assert report["location_id"] == LOCATION
    window = report["window"]
    span = datetime.fromisoformat(window["hasta"]) - datetime.fromisoformat(window["desde"])
    assert span == timedelta(hours=24)
    assert response.body["heal"] is False  # RECONCILE_AUTOHEAL defaults to false


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"desde": "2030-03-05", "hasta": "2030-03-04"}, 422, "invalid_range"),
        ({"desde": "2030-01-01", "hasta": "2030-03-04"}, 422, "window_too_long"),
        ({"location_id": "loc_unknown"}, 404, "location_not_found"),
        ({"desde": "ayer"}, 400, "validation_error"),
    ],
)
def test_a_run_that_cannot_be_done_is_refused_with_a_reason(
    sides: Sides, body: dict[str, Any], status: int, code: str
) -> None:
    response = sides.app.call(endpoints.reconciliation_run, "POST", "reconciliation/run", body=body)
    assert (response.status, response.body["error"]["code"]) == (status, code)
    assert queued_messages() == []


def test_a_run_that_cannot_be_queued_answers_503_and_is_recorded_as_failed(
    sides: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: Queues, queue: str, message: dict[str, Any], *, delay_s: float = 0) -> None:
        raise QueueUnavailable("storage down")

    monkeypatch.setattr(Queues, "send", unavailable)
    response = sides.app.call(endpoints.reconciliation_run, "POST", "reconciliation/run", body={})
    assert (response.status, response.body["error"]["code"]) == (503, "queue_unavailable")
    listed = sides.app.call(endpoints.reconciliation_reports, "GET", "reconciliation/reports")
    assert [r["status"] for r in listed.body["results"]] == ["failed"]


def test_reports_are_listed_newest_first_and_served_in_full(sides: Sides) -> None:
    sides.ghl("evBooked", DAY + 15 * timedelta(hours=1))
    first = sides.run()
    second = sides.run()
    listed = sides.app.call(
        endpoints.reconciliation_reports, "GET", "reconciliation/reports", params={"location_id": LOCATION}
    )
    assert listed.status == 200
    assert [r["id"] for r in listed.body["results"]] == [second, first]
    assert listed.body["results"][0]["drift"] == 1
    detail = sides.app.call(
        endpoints.reconciliation_report, "GET", f"reconciliation/reports/{first}", route={"id": str(first)}
    )
    assert detail.status == 200
    assert {key for key in detail.body} >= {
        "fecha", "location_id", "window", "faltantes_local", "faltantes_ghl", "canceladas_no_actualizadas",
        "desincronizadas", "totales", "acciones",
    }  # fmt: skip
    assert [e["ghl_event_id"] for e in detail.body["faltantes_local"]] == ["evBooked"]
    missing = sides.app.call(endpoints.reconciliation_report, "GET", "reconciliation/reports/999", route={"id": "999"})
    assert (missing.status, missing.body["error"]["code"]) == (404, "report_not_found")


def test_post_on_the_reports_route_starts_a_run_like_the_run_route(sides: Sides) -> None:
    response = sides.app.call(endpoints.reconciliation_reports_create, "POST", "reconciliation/reports", body={})
    assert response.status == 202
    assert len(queued_messages()) == 1


def metrics(sides: Sides) -> dict[str, Any]:
    response = sides.app.call(endpoints.metrics_reconciliation, "GET", "ghl/metrics/reconciliation")
    assert response.status == 200
    return dict(response.body)


def test_metrics_flag_a_location_without_a_successful_run_in_26_hours(sides: Sides) -> None:
    never = metrics(sides)
    assert never["healthy"] is False
    assert never["locations"][0]["stale"] is True
    assert never["locations"][0]["last_success"] is None

    report_id = sides.run()
    fresh = metrics(sides)["locations"][0]
    assert (fresh["stale"], fresh["last_success"]["report_id"], fresh["last_run"]["status"]) == (
        False,
        report_id,
        "completed",
    )
    assert fresh["hours_since_success"] < 1

    with sides.app.db.transaction() as conn:
        conn.execute(reconciliation_reports.update().values(finished_at=datetime.now(UTC) - timedelta(hours=27)))
    old = metrics(sides)
    assert old["healthy"] is False
    assert old["locations"][0]["stale"] is True
    assert old["locations"][0]["hours_since_success"] > 26


def test_the_timer_queues_every_active_location_and_flags_a_missed_run(
    sides: Sides, caplog: pytest.LogCaptureFixture
) -> None:
    sides.run()
    seed_location(sides.app.db, ghl_location_id="loc_norte")  # new: no run yet, nothing missed
    with sides.app.db.transaction() as conn:
        conn.execute(reconciliation_reports.update().values(finished_at=datetime.now(UTC) - timedelta(hours=30)))
    with caplog.at_level(logging.INFO, logger="rv3sync.reconcile"):
        started = runs.scheduled_run(Work.current())
    assert started is not None
    assert sorted(r.location_id for r in started.reports) == ["loc_demo", "loc_norte"]
    assert sorted(m["location_id"] for m in queued_messages()) == ["loc_demo", "loc_norte"]
    missed = [r for r in caplog.records if getattr(r, "event", None) == "alert.reconciliation_missed"]
    assert [(r.location_id, r.detail) for r in missed] == [("loc_demo", "no_recent_success")]  # type: ignore[attr-defined]


def test_the_timer_function_runs_the_scheduled_fan_out(sides: Sides) -> None:
    endpoints.reconciliation_timer(None)
    assert [m["location_id"] for m in queued_messages()] == [LOCATION]
    drain(RECONCILE, worker.process)
    with runtime.database().transaction() as conn:
        latest = reports.latest(conn, LOCATION)
    assert latest is not None and latest.status == "completed"


@pytest.mark.parametrize("raw", [b"\x0b", b"\x0c", b" \x0b ", b"\xff"])
def test_a_body_that_is_not_json_is_400_even_when_python_calls_it_blank(sides: Sides, raw: bytes) -> None:
    response = sides.app.call(endpoints.reconciliation_run, "POST", "reconciliation/run", raw=raw)
    assert (response.status, response.body["error"]["code"]) == (400, "invalid_json")
    assert queued_messages() == []
