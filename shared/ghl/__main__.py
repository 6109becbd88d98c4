"""Connection check: `python -m shared.ghl check [--location ID]` says in Spanish what works or what to fix."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from shared.ghl.client import GhlClient
from shared.ghl.errors import AuthExpired, Forbidden, GhlError, NotFound, RateLimited, Unavailable
from shared.ghl.rate_budget import MemoryRateBudget
from shared.settings import Settings, SettingsError, load_settings


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def advice(error: GhlError, settings: Settings, location_id: str) -> str:
    """What the operator should do about `error`, in Spanish."""
    private = settings.ghl_mode == "private"
    if isinstance(error, AuthExpired):
        fix = "revise GHL_PRIVATE_TOKEN" if private else "reinstale la app desde /api/ghl/oauth/authorize"
        return f"Token inválido o vencido: {fix}."
    if isinstance(error, Forbidden):
        return (
            f"El token no tiene acceso a la sede {location_id}: revise GHL_LOCATION_ID o los permisos (scopes) "
            "de la integración."
        )
    if isinstance(error, NotFound):
        return f"La sede {location_id} no existe en GHL: revise GHL_LOCATION_ID o --location."
    if isinstance(error, RateLimited):
        return f"GHL está limitando las solicitudes: espere {error.retry_after:.0f} s y vuelva a intentar."
    if isinstance(error, Unavailable):
        return f"No se pudo conectar con GHL en {settings.ghl_base_url}: revise GHL_BASE_URL y la red ({error})."
    return f"GHL respondió un error inesperado (HTTP {error.status}, traceId {error.trace_id}): revise los registros."


def check_location(client: GhlClient, settings: Settings, location_id: str) -> Verdict:
    try:
        location = client.get_location(location_id)
        calendars = client.list_calendars(location_id)
    except GhlError as error:
        return Verdict(False, [f"ERROR sede {location_id}: {advice(error, settings, location_id)}"])
    active = sum(1 for c in calendars if c.isActive)
    lines = [
        f"OK sede {location_id}: «{location.name or 'sin nombre'}», zona horaria {location.timezone or 'no indicada'}; "
        f"{len(calendars)} calendarios ({active} activos)."
    ]
    limits = client.last_rate_limit(location_id)
    if limits is not None and limits.present:
        window = f"{limits.interval_ms / 1000:g} s" if limits.interval_ms else "la ventana"
        lines.append(
            f"   Margen de uso: quedan {limits.remaining}/{limits.max_requests} solicitudes en {window} y "
            f"{limits.daily_remaining}/{limits.daily_limit} hoy."
        )
    return Verdict(True, lines)


def locations_to_check(settings: Settings, requested: str | None) -> list[str]:
    if requested:
        return [requested]
    if settings.ghl_mode == "private":
        return [settings.ghl_location_id] if settings.ghl_location_id else []
    from shared.ghl.tables import TOKENS_TABLE, table_client
    from shared.ghl.token_store import TokenStore

    return TokenStore(table_client(settings, TOKENS_TABLE)).locations()


def run_check(settings: Settings, requested: str | None) -> Verdict:
    """Check each location (the requested one, GHL_LOCATION_ID, or every installed one)."""
    from shared.ghl import rate_limits, token_provider

    try:
        location_ids = locations_to_check(settings, requested)
    except Unavailable as error:
        return Verdict(False, [f"ERROR: no se pudo leer las instalaciones OAuth del almacenamiento ({error})."])
    if not location_ids:
        return Verdict(
            False,
            [
                "ERROR: no hay sede que revisar: use --location ID, defina GHL_PRIVATE_TOKEN y GHL_LOCATION_ID, "
                "o instale la app desde /api/ghl/oauth/authorize."
            ],
        )
    # A few calls: an in-memory budget keeps the check independent of storage in private-token mode.
    budget = MemoryRateBudget(rate_limits(settings))
    with GhlClient(settings.ghl_base_url, token_provider(settings), budget, attempts=1) as client:
        verdicts = [check_location(client, settings, location_id) for location_id in location_ids]
    return Verdict(all(v.ok for v in verdicts), [line for v in verdicts for line in v.lines])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.ghl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="verifica la conexión con GHL")
    check.add_argument("--location", help="id de la sede (location) de GHL a revisar")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"ERROR: configuración inválida: {error}")
        return 1
    mode = "token de integración privada" if settings.ghl_mode == "private" else "OAuth (marketplace)"
    print(f"GHL en {settings.ghl_base_url}, autenticación por {mode}.")
    try:
        verdict = run_check(settings, args.location)
    except SettingsError as error:
        print(f"ERROR: configuración incompleta: {error}")
        return 1
    for line in verdict.lines:
        print(line)
    print("Resultado: OK" if verdict.ok else "Resultado: FALLÓ")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
