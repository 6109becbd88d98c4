"""Health as an operator or a probe reads it: 200 when ready, 503 naming the part that is not."""

from __future__ import annotations

import pytest

from blueprints import health as api
from shared import runtime
from tests.fixtures.app import App


def _health(app: App) -> tuple[int, dict[str, dict[str, object]]]:
    response = app.call(api.health, "GET", "health")
    return response.status, response.body["checks"]


def test_ready_when_settings_sql_and_storage_are(app: App) -> None:
    status, checks = _health(app)
    assert status == 200
    assert all(check["ok"] for check in checks.values())
    assert set(checks) == {"settings", "sql", "storage"}


def test_an_invalid_setting_is_named_without_its_value(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLICT_POLICY", "el-mas-nuevo")
    runtime.reset()
    status, checks = _health(app)
    assert status == 503
    assert checks["settings"]["ok"] is False
    assert "CONFLICT_POLICY" in str(checks["settings"]["detail"])
    assert "el-mas-nuevo" not in str(checks)


def test_unreachable_storage_is_reported_without_its_address(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/x;"
    )
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    runtime.reset()
    status, checks = _health(app)
    assert status == 503
    assert (checks["storage"]["ok"], checks["sql"]["ok"]) == (False, True)
    assert "127.0.0.1" not in str(checks)


def test_an_unreachable_database_is_not_ready(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQL_URL", "postgresql+psycopg://postgres@127.0.0.1:9/none")
    runtime.reset()
    status, checks = _health(app)
    assert status == 503
    assert (checks["sql"]["ok"], checks["storage"]["ok"]) == (False, True)
    assert "127.0.0.1" not in str(checks)
