"""Readiness of what the app depends on: the SQL database (and its schema) and Azure Storage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import telemetry
from shared.lazy import serial_imports

log = telemetry.get_logger("health")


@dataclass
class Check:
    ok: bool
    detail: str
    blocking: bool = True  # informational checks show a problem without making the app "not ready"


@dataclass
class HealthReport:
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values() if check.blocking)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
        }


def run_check(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; a failure is reported by kind only (no connection string or host name leaks out)."""
    try:
        return Check(ok=True, detail=probe())
    except TokenMissing as exc:
        return Check(ok=False, detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by kind
        log.warning("health check %s failed: %s", name, type(exc).__name__)
        return Check(ok=False, detail=f"no disponible ({type(exc).__name__})")


def sql_probe() -> str:
    with serial_imports:
        from shared import runtime

    status = runtime.database().schema_status()
    if not status.up_to_date:
        raise SchemaBehind(f"revision {status.revision}, expected {status.head}")
    return f"ok (schema {status.revision})"


def storage_probe() -> str:
    with serial_imports:
        from shared import runtime

    runtime.queues().ping()
    return "ok"


class SchemaBehind(RuntimeError):
    """The database is reachable but its migrations are not applied (run `python -m shared.store migrate`)."""


AUTH_ERRORS = ("auth_expired", "token_rejected", "forbidden")


def ghl_token_probe(location_id: str) -> Callable[[], str]:
    """Whether the app can act for a location in GHL, without spending its rate budget: a token is there (the
    private token for its location, or the OAuth tokens of an install) and GHL did not reject it last time."""

    def probe() -> str:
        with serial_imports:
            import sqlalchemy as sa

            from shared import runtime
            from shared.store.schema import sync_attempts

        settings = runtime.settings()
        if settings.ghl_mode == "private":
            if location_id != settings.ghl_location_id:
                raise TokenMissing("el token privado configurado es de otra sede")
        else:
            with serial_imports:
                from shared.ghl.tables import TOKENS_TABLE, table_client
                from shared.ghl.token_store import TokenStore

            if TokenStore(table_client(settings, TOKENS_TABLE)).get(location_id) is None:
                raise TokenMissing("la app no está instalada en esta sede (falta el token OAuth)")
        calls = runtime.call_log()
        if calls is not None:
            calls.flush()  # this process's last calls, not written yet
        with runtime.database().transaction() as conn:
            last = conn.execute(
                sa.select(sync_attempts.c.error_code)
                .where(sync_attempts.c.location_id == location_id)
                .order_by(sync_attempts.c.attempted_at.desc(), sync_attempts.c.id.desc())
                .limit(1)
            ).first()
        if last is not None and last.error_code in AUTH_ERRORS:
            raise TokenMissing("GHL rechazó el token en la última llamada: reinstale la app o revise el token")
        return "ok"

    return probe


class TokenMissing(RuntimeError):
    """The location has no usable GHL token."""


def _active_locations() -> list[str]:
    with serial_imports:
        from shared import runtime
        from shared.store import locations

    with runtime.database().transaction() as conn:
        return [loc.ghl_location_id for loc in locations.list_locations(conn, active_only=True)]


def readiness(*, ghl: bool = False) -> HealthReport:
    """Settings first: with an invalid setting nothing else can be judged, and the report names the keys.

    With `ghl`, also the GHL token of every active location (`ghl:<location id>`)."""
    with serial_imports:
        from shared.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:
        keys = ", ".join(key for key, _ in exc.problems)
        return HealthReport(checks={"settings": Check(ok=False, detail=f"configuración inválida: {keys}")})
    report = HealthReport(
        checks={
            "settings": Check(ok=True, detail="ok"),
            "sql": run_check("sql", sql_probe),
            "storage": run_check("storage", storage_probe),
        }
    )
    if ghl and report.checks["sql"].ok:
        for location_id in _active_locations():
            report.checks[f"ghl:{location_id}"] = run_check(f"ghl:{location_id}", ghl_token_probe(location_id))
        report.checks["reconciliation"] = reconciliation_check()
    return report


def reconciliation_check() -> Check:
    """The daily reconciliation is the safety net and timers are not retried: show a missed or failed run."""
    with serial_imports:
        from shared.services.reconcile import reports
        from shared.work import Work

    stale = [state for state in reports.location_states(Work.current()) if state.stale]
    if not stale:
        return Check(ok=True, detail="ok", blocking=False)
    described = ", ".join(
        f"{s.location_id} ({'nunca' if s.hours_since_success is None else f'hace {s.hours_since_success:.0f} h'})"
        for s in stale
    )
    return Check(ok=False, detail=f"sin conciliación exitosa reciente: {described}", blocking=False)
