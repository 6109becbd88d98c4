"""Readiness of what the app depends on: the SQL database (and its schema) and Azure Storage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import telemetry

log = telemetry.get_logger("health")


@dataclass
class Check:
    ok: bool
    detail: str


@dataclass
class HealthReport:
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
        }


def run_check(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; a failure is reported by kind only (no connection string or host name leaks out)."""
    try:
        return Check(ok=True, detail=probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by kind
        log.warning("health check %s failed: %s", name, type(exc).__name__)
        return Check(ok=False, detail=f"no disponible ({type(exc).__name__})")


def sql_probe() -> str:
    from shared import runtime

    status = runtime.database().schema_status()
    if not status.up_to_date:
        raise SchemaBehind(f"revision {status.revision}, expected {status.head}")
    return f"ok (schema {status.revision})"


def storage_probe() -> str:
    from shared import runtime

    runtime.queues().ping()
    return "ok"


class SchemaBehind(RuntimeError):
    """The database is reachable but its migrations are not applied (run `python -m shared.store migrate`)."""


def readiness() -> HealthReport:
    """Settings first: with an invalid setting nothing else can be judged, and the report names the keys."""
    from shared.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:
        keys = ", ".join(key for key, _ in exc.problems)
        return HealthReport(checks={"settings": Check(ok=False, detail=f"configuración inválida: {keys}")})
    return HealthReport(
        checks={
            "settings": Check(ok=True, detail="ok"),
            "sql": run_check("sql", sql_probe),
            "storage": run_check("storage", storage_probe),
        }
    )
