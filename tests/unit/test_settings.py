"""Settings: safe defaults, local.settings.json Values, and start-up errors that name the key, never the value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import settings as settings_module
from shared.settings import SettingsError, app_setting_names, load_settings

SPEC_SETTINGS = {
    "AzureWebJobsStorage",
    "FUNCTIONS_WORKER_RUNTIME",
    "SQL_URL",
    "SQL_AUTH",
    "GHL_BASE_URL",
    "GHL_CLIENT_ID",
    "GHL_CLIENT_SECRET",
    "GHL_REDIRECT_URI",
    "GHL_PRIVATE_TOKEN",
    "GHL_LOCATION_ID",
    "GHL_WEBHOOK_ED25519_KEY",
    "GHL_WEBHOOK_RSA_KEY",
    "GHL_WEBHOOK_VERIFY",
    "TIMEZONE",
    "WORKING_HOURS",
    "MIN_DURATION_MIN",
    "VALIDATION_MODE",
    "CONFLICT_POLICY",
    "RECONCILE_SCHEDULE",
    "RECONCILE_WINDOW_HOURS",
    "RECONCILE_AUTOHEAL",
    "RV3_SQL_URL",
    "DEFAULT_DURATION_MIN",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in [*app_setting_names(), "WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"]:
        monkeypatch.delenv(name, raising=False)
    local = tmp_path / "local.settings.json"
    monkeypatch.setattr(settings_module, "LOCAL_SETTINGS_FILE", local)
    yield local


def test_every_spec_setting_is_read() -> None:
    assert app_setting_names() >= SPEC_SETTINGS


def test_defaults_run_locally_without_any_configuration() -> None:
    s = load_settings()
    assert s.sql_url.get_secret_value().startswith("sqlite:///")
    assert s.storage_connection_string == "UseDevelopmentStorage=true"
    assert s.timezone == "America/Lima"
    assert (s.validation_mode, s.conflict_policy) == ("strict", "latest_wins")
    assert s.reconcile_schedule == "0 0 6 * * *"
    assert (s.reconcile_window_hours, s.reconcile_autoheal, s.default_duration_min) == (24, False, 60)
    assert s.ghl_base_url == "https://services.leadconnectorhq.com"
    assert s.ghl_webhook_verify is True
    assert s.ghl_mode == "oauth"


def test_local_settings_values_are_read_and_environment_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env.write_text(
        json.dumps({"IsEncrypted": False, "Values": {"VALIDATION_MODE": "flexible", "TIMEZONE": "America/Bogota"}})
    )
    monkeypatch.setenv("TIMEZONE", "America/Lima")
    s = load_settings()
    assert s.validation_mode == "flexible"
    assert s.timezone == "America/Lima"


def test_an_empty_environment_variable_hides_the_local_settings_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # func start puts a Values entry into the environment only when the variable is not set at all, so a variable
    # set empty means "unset" and the file's value must not come back through the settings themselves.
    clean_env.write_text(json.dumps({"Values": {"GHL_REDIRECT_URI": "http://127.0.0.1:7071/api/ghl/oauth/callback"}}))
    monkeypatch.setenv("GHL_REDIRECT_URI", "")
    assert load_settings().ghl_redirect_uri is None


def test_local_settings_file_is_ignored_in_azure(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env.write_text(json.dumps({"Values": {"VALIDATION_MODE": "flexible"}}))
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    monkeypatch.setenv("SQL_URL", "mssql+pyodbc://@srv.database.windows.net/db?driver=ODBC+Driver+18+for+SQL+Server")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "rv3sync")
    assert load_settings().validation_mode == "strict"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SQL_AUTH", "kerberos", "'password' or 'entra'"),
        ("MIN_DURATION_MIN", "quince", "valid integer"),
        ("WORKING_HOURS", "20:00-08:00", "HH:MM-HH:MM"),
        ("TIMEZONE", "Lima/Peru", "IANA time zone"),
        ("RECONCILE_SCHEDULE", "0 6 * * *", "6 fields"),
        ("CONFLICT_POLICY", "newest", "'latest_wins', 'rv3_wins' or 'ghl_wins'"),
        ("GHL_BASE_URL", "services.leadconnectorhq.com", "http(s) URL"),
        ("GHL_WEBHOOK_VERIFY", "maybe", "valid boolean"),
    ],
)
def test_invalid_value_stops_start_up_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert key in message
    assert expected in message


def test_error_never_prints_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHL_PRIVATE_TOKEN", "pit-super-secret-token")
    monkeypatch.setenv("SQL_URL", "postgresql://admin:hunter2@db/app")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "GHL_LOCATION_ID" in message
    assert "pit-super-secret-token" not in message and "hunter2" not in message


def test_settings_repr_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHL_CLIENT_SECRET", "client-secret-value")
    monkeypatch.setenv("SQL_URL", "postgresql://admin:hunter2@db/app")
    shown = repr(load_settings())
    assert "client-secret-value" not in shown and "hunter2" not in shown


def test_webhook_verification_cannot_be_disabled_in_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    monkeypatch.setenv("GHL_WEBHOOK_VERIFY", "false")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "GHL_WEBHOOK_VERIFY" in str(error.value)
    assert "SQL_URL" in str(error.value)  # and the embedded SQLite default is local only
    assert "AzureWebJobsStorage" in str(error.value)


def test_identity_based_storage_has_no_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "rv3sync")
    s = load_settings()
    assert s.storage_connection_string is None
    assert s.storage_service_uri("queue") == "https://rv3sync.queue.core.windows.net"
