"""The one settings object: app settings from the environment and, locally, `local.settings.json` Values."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared import setting_defaults
from shared.lazy import serial_imports

APP_ROOT = Path(__file__).resolve().parent.parent
LOCAL_SETTINGS_FILE = APP_ROOT / "local.settings.json"
DEFAULT_SQLITE_PATH = APP_ROOT / ".local" / "rv3-ghl-sync.db"
GHL_API_URL = "https://services.leadconnectorhq.com"
GHL_MARKETPLACE_URL = "https://marketplace.gohighlevel.com"

_NCRONTAB = re.compile(r"^\S+( \S+){5}$")
_API_KEY = re.compile(r"[A-Za-z0-9\-_.~+/=]{16,256}")
MAX_API_KEYS = 2
DEV_MANYCHAT_KEY = "local-manychat-key-0001"  # local.settings.json.example's, and ./scripts/run's default
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class SettingsError(RuntimeError):
    """An app setting is missing or invalid; the message names the key and what is expected, never the value."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{key}: {expected}" for key, expected in problems)
        super().__init__(f"Invalid app settings: {lines}")


def running_in_azure() -> bool:
    """True inside Azure Functions / App Service, where the platform sets these variables."""
    return bool(os.environ.get("WEBSITE_INSTANCE_ID") or os.environ.get("WEBSITE_SITE_NAME"))


class LocalSettingsJson(PydanticBaseSettingsSource):
    """`local.settings.json` `Values`, the way `func start` provides them; lowest priority, local only."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path is not None and path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            values = data.get("Values", {}) if isinstance(data, dict) else {}
            self._values = {k: v for k, v in values.items() if isinstance(k, str)}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        key = field.alias or field_name
        return self._values.get(key), key, False

    def __call__(self) -> dict[str, Any]:
        # As `func start` does: a variable set in the environment, even empty, hides the file's value.
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            key = field.alias or name
            if key in self._values and self._values[key] != "" and key not in os.environ:
                found[key] = self._values[key]
        return found


class Settings(BaseSettings):
    """Every app setting of SPEC §5 (plus the few the deployment needs), validated once at start-up."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    azure_webjobs_storage: SecretStr | None = Field(None, alias="AzureWebJobsStorage")
    # Identity-based storage connection (shared keys disabled in Azure), Azure's `<connection>__<part>` names.
    storage_account_name: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_queue_uri: str | None = Field(None, alias="AzureWebJobsStorage__queueServiceUri")
    storage_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")
    functions_worker_runtime: Literal["python"] = Field("python", alias="FUNCTIONS_WORKER_RUNTIME")
    sql_url: SecretStr = Field(SecretStr(f"sqlite:///{DEFAULT_SQLITE_PATH}"), alias="SQL_URL")
    sql_auth: Literal["password", "entra"] = Field("password", alias="SQL_AUTH")
    ghl_base_url: str = Field(GHL_API_URL, alias="GHL_BASE_URL")
    ghl_marketplace_url: str = Field(GHL_MARKETPLACE_URL, alias="GHL_MARKETPLACE_URL")
    ghl_client_id: str | None = Field(None, alias="GHL_CLIENT_ID")
    ghl_client_secret: SecretStr | None = Field(None, alias="GHL_CLIENT_SECRET")
    ghl_redirect_uri: str | None = Field(None, alias="GHL_REDIRECT_URI")
    ghl_private_token: SecretStr | None = Field(None, alias="GHL_PRIVATE_TOKEN")
    ghl_location_id: str | None = Field(None, alias="GHL_LOCATION_ID")
    ghl_webhook_ed25519_key: str | None = Field(None, alias="GHL_WEBHOOK_ED25519_KEY")
    ghl_webhook_rsa_key: str | None = Field(None, alias="GHL_WEBHOOK_RSA_KEY")
    ghl_webhook_verify: bool = Field(True, alias="GHL_WEBHOOK_VERIFY")
    # GHL's per-location limits (100 / 10 s, 200,000 / day); lower them to match a scaled sandbox.
    ghl_rate_limit_max: int = Field(100, ge=1, alias="GHL_RATE_LIMIT_MAX")
    ghl_rate_limit_interval_ms: int = Field(10_000, ge=1, alias="GHL_RATE_LIMIT_INTERVAL_MS")
    ghl_rate_limit_daily: int = Field(200_000, ge=1, alias="GHL_RATE_LIMIT_DAILY")
    timezone: str = Field("America/Lima", alias="TIMEZONE")
    working_hours: str = Field("08:00-20:00", alias="WORKING_HOURS")
    min_duration_min: int = Field(15, ge=1, le=24 * 60, alias="MIN_DURATION_MIN")
    validation_mode: Literal["strict", "flexible"] = Field("strict", alias="VALIDATION_MODE")
    conflict_policy: Literal["latest_wins", "rv3_wins", "ghl_wins"] = Field("latest_wins", alias="CONFLICT_POLICY")
    reconcile_schedule: str = Field(setting_defaults.RECONCILE_SCHEDULE, alias="RECONCILE_SCHEDULE")
    reconcile_window_hours: int = Field(24, ge=1, le=24 * 31, alias="RECONCILE_WINDOW_HOURS")
    reconcile_autoheal: bool = Field(False, alias="RECONCILE_AUTOHEAL")
    rv3_sql_url: SecretStr | None = Field(None, alias="RV3_SQL_URL")
    rv3_poll_schedule: str = Field(setting_defaults.RV3_POLL_SCHEDULE, alias="RV3_POLL_SCHEDULE")
    # How often RV3's linked rows are read again for what no `updated_at` shows (hard deletes, patient edits).
    rv3_sweep_seconds: int = Field(300, ge=1, le=24 * 3600, alias="RV3_SWEEP_SECONDS")
    default_duration_min: int = Field(60, ge=5, le=24 * 60, alias="DEFAULT_DURATION_MIN")
    # MiaSalud leads (ManyChat → SQL → Odoo): on when MANYCHAT_API_KEYS is set. One key, or two while rotating.
    manychat_api_keys: SecretStr | None = Field(None, alias="MANYCHAT_API_KEYS")
    manychat_timezone: str = Field("America/Mexico_City", alias="MANYCHAT_TIMEZONE")
    default_phone_region: str = Field("MX", alias="DEFAULT_PHONE_REGION")
    # Odoo (MiaSalud's CRM): without ODOO_URL the leads stay in SQL with odoo_sync_status pending.
    odoo_url: str | None = Field(None, alias="ODOO_URL")
    odoo_db: str | None = Field(None, alias="ODOO_DB")
    odoo_username: str | None = Field(None, alias="ODOO_USERNAME")
    odoo_api_key: SecretStr | None = Field(None, alias="ODOO_API_KEY")
    odoo_protocol: Literal["jsonrpc", "json2"] = Field("jsonrpc", alias="ODOO_PROTOCOL")
    odoo_sync: Literal["leads", "contacts", "both"] = Field("both", alias="ODOO_SYNC")
    odoo_rate_per_s: float = Field(5.0, gt=0, le=1000, alias="ODOO_RATE_PER_S")
    odoo_lead_type: Literal["lead", "opportunity"] = Field("opportunity", alias="ODOO_LEAD_TYPE")
    odoo_reconcile_schedule: str = Field(setting_defaults.ODOO_RECONCILE_SCHEDULE, alias="ODOO_RECONCILE_SCHEDULE")
    # The operations console (/api/console): signed by CONSOLE_SIGNING_KEY (anti-forgery tokens, the development
    # sign-in); locally, without it, a key made at start-up. The development sign-in is refused in Azure.
    console_signing_key: SecretStr | None = Field(None, alias="CONSOLE_SIGNING_KEY")
    console_dev_signin: bool = Field(False, alias="CONSOLE_DEV_SIGNIN")
    applicationinsights_connection_string: SecretStr | None = Field(None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING")
    azure_client_id: str | None = Field(None, alias="AZURE_CLIENT_ID")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        local = None if running_in_azure() else LOCAL_SETTINGS_FILE
        return init_settings, env_settings, LocalSettingsJson(settings_cls, local)

    @field_validator("timezone", "manychat_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("an IANA time zone such as America/Lima") from exc
        return value

    @field_validator("manychat_api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if not 1 <= len(keys) <= MAX_API_KEYS or not all(_API_KEY.fullmatch(key) for key in keys):
            raise ValueError(
                f"1 or {MAX_API_KEYS} comma-separated keys (two while rotating) of 16 to 256 letters, digits or -_.~+/="
            )
        return SecretStr(",".join(keys))

    @field_validator("default_phone_region")
    @classmethod
    def _phone_region(cls, value: str) -> str:
        with serial_imports:
            import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("a two-letter region phones are read in, e.g. MX")
        return region

    @field_validator("working_hours")
    @classmethod
    def _hours_range(cls, value: str) -> str:
        value = value.replace(" ", "")
        if not _HOURS.match(value) or value[:5] >= value[6:]:
            raise ValueError("HH:MM-HH:MM with the start before the end, e.g. 08:00-20:00")
        return value

    @field_validator("reconcile_schedule", "rv3_poll_schedule", "odoo_reconcile_schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        if not _NCRONTAB.match(value.strip()):
            raise ValueError("an NCRONTAB expression with 6 fields: {second} {minute} {hour} {day} {month} {dow}")
        return value.strip()

    @field_validator("ghl_base_url", "ghl_marketplace_url", "odoo_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _deployment_rules(self) -> Settings:
        problems: list[tuple[str, str]] = []
        in_azure = running_in_azure()
        if in_azure and not self.ghl_webhook_verify:
            problems.append(("GHL_WEBHOOK_VERIFY", "true in Azure (false is only allowed locally)"))
        if in_azure and self.sql_url.get_secret_value().startswith("sqlite"):
            problems.append(("SQL_URL", "an Azure SQL URL (mssql+pyodbc://...) in Azure; SQLite is local only"))
        if bool(self.ghl_private_token) != bool(self.ghl_location_id) and self.ghl_private_token:
            problems.append(("GHL_LOCATION_ID", "the location id that GHL_PRIVATE_TOKEN belongs to"))
        if in_azure and not (self.azure_webjobs_storage or self.storage_account_name or self.storage_queue_uri):
            problems.append(("AzureWebJobsStorage", "a connection string or AzureWebJobsStorage__accountName"))
        if self.odoo_url:
            needed = {"ODOO_DB": self.odoo_db, "ODOO_API_KEY": self.odoo_api_key}
            if self.odoo_protocol == "jsonrpc":
                needed["ODOO_USERNAME"] = self.odoo_username
            problems += [(key, "set with ODOO_URL") for key, value in needed.items() if not value]
        if in_azure and DEV_MANYCHAT_KEY in self.manychat_keys:
            problems.append(("MANYCHAT_API_KEYS", "a key of your own in Azure (the development key is public)"))
        if in_azure and self.console_dev_signin:
            problems.append(("CONSOLE_DEV_SIGNIN", "false in Azure (staff sign in with Entra ID there)"))
        if self.console_signing_key is not None and len(self.console_signing_key.get_secret_value()) < 32:
            problems.append(("CONSOLE_SIGNING_KEY", "at least 32 characters"))
        if problems:
            raise SettingsError(problems)
        return self

    @property
    def storage_connection_string(self) -> str | None:
        """The storage connection string, Azurite's development account when nothing is configured locally."""
        if self.azure_webjobs_storage:
            return self.azure_webjobs_storage.get_secret_value()
        if self.storage_account_name or self.storage_queue_uri:
            return None
        return "UseDevelopmentStorage=true"

    def storage_service_uri(self, service: Literal["queue", "table"]) -> str:
        """Endpoint of an identity-based storage connection."""
        explicit = self.storage_queue_uri if service == "queue" else self.storage_table_uri
        return explicit or f"https://{self.storage_account_name}.{service}.core.windows.net"

    @property
    def manychat_keys(self) -> tuple[str, ...]:
        """The keys ManyChat (and MiaSalud's staff) may send as X-API-KEY; none while the integration is off."""
        if self.manychat_api_keys is None:
            return ()
        return tuple(self.manychat_api_keys.get_secret_value().split(","))

    @property
    def ghl_mode(self) -> Literal["private", "oauth"]:
        """Private-integration token for one location, or marketplace OAuth tokens per location."""
        return "private" if self.ghl_private_token else "oauth"


def _describe(errors: list[Any]) -> list[tuple[str, str]]:
    problems = []
    for err in errors:
        key = str(err["loc"][0]) if err.get("loc") else "settings"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        problems.append((key, msg))
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise SettingsError naming each bad key (values are never echoed)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc.errors())) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use (kept off the import path for cold start)."""
    return load_settings()


def app_setting_names() -> set[str]:
    """The app setting names the product reads (the names infra must set)."""
    return {field.alias or name for name, field in Settings.model_fields.items()}
