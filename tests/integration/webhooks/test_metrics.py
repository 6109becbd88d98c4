"""GET /api/ghl/metrics/webhooks: per event type counts, success rate, mean and p95 duration, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blueprints import metrics
from shared.store import inbox
from tests.fixtures.app import App, Response


def processed(app: App, event_type: str, durations: list[float], *, success: bool = True, hours_ago: float = 1) -> None:
    received = datetime.now(UTC) - timedelta(hours=hours_ago)
    with app.db.transaction() as conn:
        for n, duration in enumerate(durations):
            key = f"webhook:{event_type}-{success}-{hours_ago}-{n}"
            delivery = inbox.Delivery(key, key, "0" * 64, event_type, "loc_demo", None, received)
            result = inbox.Result(success, "create" if success else "failed", duration, received)
            if success:
                claim = inbox.claim(conn, delivery)
                assert claim is not None
                inbox.finish(conn, claim, result)
            else:
                inbox.record_failure(conn, delivery, result)


def get(app: App, params: dict[str, str] | None = None) -> Response:
    return app.call(metrics.metrics_webhooks, "GET", "ghl/metrics/webhooks", params=params)


def test_webhook_metrics_per_event_type_and_health(app: App) -> None:
    processed(app, "AppointmentCreate", [float(ms) for ms in range(1, 20)])  # 1..19 ms
    processed(app, "AppointmentCreate", [100.0], success=False)
    processed(app, "AppointmentUpdate", [4.0, 6.0])
    response = get(app)
    assert response.status == 200
    body = response.body
    assert body["webhooks"]["AppointmentCreate"] == {
        "success_count": 19,
        "failed_count": 1,
        "total_count": 20,
        "success_rate": 95.0,
        "avg_duration_ms": 14.5,
        "p95_duration_ms": 19.0,
    }
    assert body["webhooks"]["AppointmentUpdate"]["success_rate"] == 100.0
    assert body["totals"]["total_count"] == 22
    assert body["webhook_health_percentage"] == round(100 * 21 / 22, 2)
    assert body["window"]["hours"] == 24


def test_the_window_is_the_last_24_hours_unless_asked(app: App) -> None:
    processed(app, "AppointmentDelete", [5.0], hours_ago=30)
    assert get(app).body["webhooks"] == {}
    assert get(app, {"hours": "48"}).body["webhooks"]["AppointmentDelete"]["total_count"] == 1


def test_with_no_webhooks_the_health_is_full(app: App) -> None:
    body = get(app).body
    assert (body["webhooks"], body["webhook_health_percentage"], body["totals"]["total_count"]) == ({}, 100.0, 0)


def test_an_invalid_window_is_refused(app: App) -> None:
    response = get(app, {"hours": "0"})
    assert response.status == 400
    assert response.body["error"]["code"] == "invalid_query"
