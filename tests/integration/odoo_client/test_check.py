"""`python -m shared.odoo check`: whether the configured user reaches Odoo, whether the x_ fields and the mapped
stages exist, the fields created when the user may, and exactly what to ask the administrator for otherwise.
Exit 0 ready, 1 not ready, 2 cannot connect; no secret is ever printed."""

from __future__ import annotations

import httpx
import pytest

from shared.odoo.__main__ import main
from tools.odoo_sandbox import DEMO_ADMIN_KEY, DEMO_ADMIN_LOGIN, DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, SandboxServer
from tools.ports import free_port

from .conftest import PROTOCOLS


@pytest.fixture
def odoo_settings(clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer) -> pytest.MonkeyPatch:
    for name, value in {
        "ODOO_URL": sandbox.url,
        "ODOO_DB": DEMO_DB,
        "ODOO_USERNAME": DEMO_API_LOGIN,
        "ODOO_API_KEY": DEMO_API_KEY,
    }.items():
        clean_settings.setenv(name, value)
    return clean_settings


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    out = capsys.readouterr().out
    assert DEMO_API_KEY not in out and DEMO_ADMIN_KEY not in out
    return code, out


def drop_custom_fields(sandbox: SandboxServer) -> None:
    """The database as a fresh Odoo has it: without the integration's x_ fields."""
    headers = {"Authorization": f"bearer {DEMO_ADMIN_KEY}"}
    custom = [f["id"] for f in sandbox.admin.records("ir.model.fields") if f["state"] == "manual"]
    httpx.post(f"{sandbox.url}/json/2/ir.model.fields/unlink", json={"ids": custom}, headers=headers).raise_for_status()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_demo_database_is_ready_with_its_stages(
    odoo_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    odoo_settings.setenv("ODOO_PROTOCOL", protocol)
    code, out = check(capsys, "--stages", "Nuevo, Calificado")
    assert code == 0, out
    assert f"protocolo {protocol}" in out
    assert "OK Odoo 19.0 responde" in out
    assert "OK campo res.partner.x_manychat_id (char)." in out
    assert "OK campo crm.lead.x_campaign_id (integer)." in out
    assert "OK etapas del CRM: Nuevo, Calificado." in out
    assert out.rstrip().endswith("Resultado: LISTO")


def test_an_administrator_gets_the_missing_fields_created(
    odoo_settings: pytest.MonkeyPatch, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    drop_custom_fields(sandbox)
    odoo_settings.setenv("ODOO_USERNAME", DEMO_ADMIN_LOGIN)
    odoo_settings.setenv("ODOO_API_KEY", DEMO_ADMIN_KEY)
    code, out = check(capsys)
    assert code == 0, out
    assert "CREADO campo crm.lead.x_manychat_id (char)." in out
    created = {
        (f["model"], f["name"], f["ttype"], f["state"])
        for f in sandbox.admin.records("ir.model.fields")
        if f["name"].startswith("x_")
    }
    assert created == {
        ("res.partner", "x_manychat_id", "char", "manual"),
        ("crm.lead", "x_manychat_id", "char", "manual"),
        ("crm.lead", "x_campaign_id", "integer", "manual"),
    }
    assert check(capsys)[0] == 0  # and the next run finds them


def test_the_api_user_is_told_exactly_what_to_ask_the_administrator_for(
    odoo_settings: pytest.MonkeyPatch, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    drop_custom_fields(sandbox)
    code, out = check(capsys, "--stages", "Nuevo,Cita agendada")
    assert code == 1, out
    assert "ERROR falta el campo res.partner.x_manychat_id y el usuario no puede crearlo." in out
    assert "Pida al administrador de Odoo:" in out
    assert (
        "crear en Ajustes > Técnico > Campos (modo desarrollador) el campo «x_campaign_id» en el modelo crm.lead "
        "(Iniciativa/Oportunidad), tipo Entero (integer), etiqueta «ID de campaña (ManyChat)»"
    ) in out
    assert "crear en CRM > Configuración > Etapas las etapas «Cita agendada»" in out
    assert "el grupo «Administración / Ajustes»" in out and DEMO_API_LOGIN in out
    assert out.rstrip().endswith("Resultado: NO LISTO")


def test_a_wrong_key_is_not_ready_and_names_the_setting(
    odoo_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    odoo_settings.setenv("ODOO_API_KEY", "0" * 40)
    code, out = check(capsys)
    assert code == 1
    assert "ODOO_API_KEY" in out and "0" * 40 not in out


def test_an_unreachable_odoo_exits_2(odoo_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    odoo_settings.setenv("ODOO_URL", f"http://127.0.0.1:{free_port()}")
    code, out = check(capsys)
    assert code == 2
    assert "no se pudo conectar con Odoo" in out and out.rstrip().endswith("Resultado: SIN CONEXIÓN")


def test_without_odoo_url_the_integration_is_sql_only(
    clean_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(capsys)
    assert code == 1
    assert "ODOO_URL no está configurada" in out


def test_settings_left_half_done_are_named(
    clean_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_settings.setenv("ODOO_URL", "http://127.0.0.1:8069")
    code, out = check(capsys)
    assert code == 1
    assert "ODOO_DB" in out and "ODOO_API_KEY" in out
