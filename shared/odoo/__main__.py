"""Setup check: `python -m shared.odoo check [--stages "Nuevo,Calificado"]` says in Spanish whether the configured
user reaches Odoo, whether the x_ fields and the mapped stages exist, creates the missing fields when the user may
(administrator), and otherwise says exactly what to ask the Odoo administrator for.

Exit code 0: ready; 1: not ready (credentials, fields, stages, settings); 2: Odoo cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.odoo import rate_limits
from shared.odoo.client import OdooClient
from shared.odoo.errors import OdooAccessDenied, OdooAuthFailed, OdooError, OdooRateLimited, OdooUnavailable
from shared.rate_budget import MemoryRateBudget
from shared.settings import Settings, SettingsError, load_settings

READY, NOT_READY, UNREACHABLE = 0, 1, 2


@dataclass(frozen=True)
class CustomField:
    model: str
    name: str
    ttype: str
    label: str


# The fields the integration writes beside Odoo's own; uniqueness of x_manychat_id is ours to keep, not Odoo's.
CUSTOM_FIELDS = (
    CustomField("res.partner", "x_manychat_id", "char", "ManyChat ID"),
    CustomField("crm.lead", "x_manychat_id", "char", "ManyChat ID"),
    CustomField("crm.lead", "x_campaign_id", "integer", "ID de campaña (ManyChat)"),
)
# Odoo's own fields the integration writes (Odoo 19 has no res.partner.mobile: it is never written).
STANDARD_FIELDS = {
    "res.partner": ("name", "phone", "email"),
    "crm.lead": (
        "name",
        "type",
        "partner_id",
        "contact_name",
        "phone",
        "email_from",
        "stage_id",
        "user_id",
        "description",
    ),
}
TYPE_NAMES = {"char": "Texto (char)", "integer": "Entero (integer)"}
MODEL_NAMES = {"res.partner": "Contacto", "crm.lead": "Iniciativa/Oportunidad"}


@dataclass
class Verdict:
    code: int = READY
    lines: list[str] = field(default_factory=list)
    ask_admin: list[str] = field(default_factory=list)

    def fail(self, line: str, code: int = NOT_READY) -> None:
        self.lines.append(f"ERROR {line}")
        self.code = max(self.code, code)


def run_check(client: OdooClient, settings: Settings, stages: Sequence[str]) -> Verdict:
    verdict = Verdict()
    try:
        version = client.version()
    except OdooError as error:
        verdict.fail(f"no se pudo conectar con Odoo en {settings.odoo_url}: {error.reason}", UNREACHABLE)
        return verdict
    verdict.lines.append(f"OK Odoo {version.get('server_version', '?')} responde en {settings.odoo_url}.")
    fields = _fields(client, settings, verdict)
    if fields is None:
        return verdict
    _check_standard_fields(fields, verdict)
    _check_custom_fields(client, settings, fields, verdict)
    if stages:
        _check_stages(client, stages, verdict)
    if verdict.ask_admin:
        verdict.lines.append("Pida al administrador de Odoo:")
        verdict.lines += [f"  - {item}" for item in verdict.ask_admin]
        verdict.lines.append(
            f"  (o que dé al usuario {settings.odoo_username or 'de la clave API'} el grupo «Administración / Ajustes» "
            "y vuelva a ejecutar `python -m shared.odoo check`, que crea los campos que falten)"
        )
    return verdict


def _fields(client: OdooClient, settings: Settings, verdict: Verdict) -> dict[str, dict[str, dict[str, str]]] | None:
    """Each model's fields by name with their type; None (and the verdict says why) when they cannot be read."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for model in STANDARD_FIELDS:
        try:
            found[model] = client.fields_get(model, ["type", "string"])
        except OdooAuthFailed as error:
            user = settings.odoo_username or "de la clave API"
            verdict.fail(f"Odoo no acepta al usuario {user} en la base de datos {settings.odoo_db}: {error.reason}")
            return None
        except (OdooUnavailable, OdooRateLimited) as error:
            verdict.fail(f"Odoo dejó de responder al leer los campos de {model}: {error.reason}", UNREACHABLE)
            return None
        except OdooAccessDenied:
            verdict.fail(f"el usuario no puede leer {model}: pida para él el grupo «Ventas / Usuario» en Odoo.")
            return None
        except OdooError as error:
            verdict.fail(
                f"no se pudieron leer los campos de {model} (¿está instalada la aplicación CRM?): {error.reason}"
            )
            return None
    verdict.lines.append(f"OK el usuario {settings.odoo_username or 'de la clave API'} accede a {settings.odoo_db}.")
    return found


def _check_standard_fields(fields: dict[str, dict[str, dict[str, str]]], verdict: Verdict) -> None:
    for model, names in STANDARD_FIELDS.items():
        missing = [name for name in names if name not in fields[model]]
        if missing:
            verdict.fail(f"{model} no tiene los campos {', '.join(missing)} (¿versión o aplicaciones de Odoo?).")


def _check_custom_fields(
    client: OdooClient, settings: Settings, fields: dict[str, dict[str, dict[str, str]]], verdict: Verdict
) -> None:
    for custom in CUSTOM_FIELDS:
        existing = fields[custom.model].get(custom.name)
        where = f"{custom.model}.{custom.name}"
        if existing is not None:
            if existing.get("type") == custom.ttype:
                verdict.lines.append(f"OK campo {where} ({custom.ttype}).")
            else:
                verdict.fail(f"campo {where} es de tipo {existing.get('type')}, se esperaba {custom.ttype}.")
                verdict.ask_admin.append(f"cambiar el campo {where} a tipo {TYPE_NAMES[custom.ttype]}")
            continue
        try:
            _create_field(client, custom)
        except OdooAccessDenied:
            verdict.fail(f"falta el campo {where} y el usuario no puede crearlo.")
            verdict.ask_admin.append(
                f"crear en Ajustes > Técnico > Campos (modo desarrollador) el campo «{custom.name}» en el modelo "
                f"{custom.model} ({MODEL_NAMES[custom.model]}), tipo {TYPE_NAMES[custom.ttype]}, etiqueta "
                f"«{custom.label}»"
            )
        except OdooError as error:
            verdict.fail(f"falta el campo {where} y no se pudo crear: {error.reason}")
        else:
            verdict.lines.append(f"CREADO campo {where} ({custom.ttype}).")


def _create_field(client: OdooClient, custom: CustomField) -> None:
    models = client.search_read("ir.model", [("model", "=", custom.model)], ["id"], limit=1)
    if not models:
        raise OdooError(f"ir.model {custom.model} not found", model="ir.model", method="search_read")
    values = {
        "name": custom.name,
        "field_description": custom.label,
        "model_id": models[0]["id"],
        "ttype": custom.ttype,
        "state": "manual",
    }
    client.create("ir.model.fields", values)


def _check_stages(client: OdooClient, stages: Sequence[str], verdict: Verdict) -> None:
    try:
        found = client.search_read("crm.stage", [("name", "in", list(stages))], ["name"])
    except OdooError as error:
        verdict.fail(f"no se pudieron leer las etapas del CRM: {error.reason}")
        return
    present = {str(stage["name"]) for stage in found}
    missing = [name for name in stages if name not in present]
    if not missing:
        verdict.lines.append(f"OK etapas del CRM: {', '.join(stages)}.")
        return
    verdict.fail(f"faltan etapas del CRM: {', '.join(missing)} (el mapeo de estados las nombra).")
    verdict.ask_admin.append(
        f"crear en CRM > Configuración > Etapas las etapas {', '.join(f'«{name}»' for name in missing)}, o corregir "
        "el mapeo de estados de ManyChat para que nombre etapas existentes"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.odoo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="verifica la conexión y la configuración de Odoo")
    check.add_argument("--stages", default="", help="etapas del CRM que el mapeo nombra, separadas por comas")
    args = parser.parse_args(argv)
    stages = [name.strip() for name in args.stages.split(",") if name.strip()]

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"ERROR: configuración inválida: {error}")
        return NOT_READY
    if not settings.odoo_url:
        print("ERROR: ODOO_URL no está configurada: la integración guarda los eventos solo en SQL (sin Odoo).")
        return NOT_READY
    user = settings.odoo_username or "(el de la clave API)"
    where = f"Odoo en {settings.odoo_url}, base de datos {settings.odoo_db}"
    print(f"{where}, protocolo {settings.odoo_protocol}, usuario {user}.")
    # A few calls: an in-memory budget keeps the check independent of storage.
    budget = MemoryRateBudget(rate_limits(settings.odoo_rate_per_s))
    try:
        with OdooClient.from_settings(settings, rate_budget=budget, attempts=1) as client:
            verdict = run_check(client, settings, stages)
    except SettingsError as error:
        print(f"ERROR: configuración incompleta: {error}")
        return NOT_READY
    for line in verdict.lines:
        print(line)
    print(
        {READY: "Resultado: LISTO", NOT_READY: "Resultado: NO LISTO", UNREACHABLE: "Resultado: SIN CONEXIÓN"}[
            verdict.code
        ]
    )
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
