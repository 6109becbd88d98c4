"""`python -m shared.ghl check`: a clear Spanish verdict for the operator, and exit code 0 / 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from shared.ghl.__main__ import main
from shared.ghl.oauth import OAuthApp
from shared.ghl.tables import TOKENS_TABLE, table_client
from shared.ghl.token_store import TokenStore
from shared.settings import load_settings
from tools.ghl_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN, SandboxServer

from .conftest import REDIRECT, Azurite, consent

APP_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture
def private_token(clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer) -> pytest.MonkeyPatch:
    clean_settings.setenv("GHL_BASE_URL", sandbox.url)
    clean_settings.setenv("GHL_PRIVATE_TOKEN", DEMO_PRIVATE_TOKEN)
    clean_settings.setenv("GHL_LOCATION_ID", DEMO_LOCATION_ID)
    return clean_settings


@pytest.fixture
def oauth_mode(clean_settings: pytest.MonkeyPatch, sandbox: SandboxServer, azurite: Azurite) -> pytest.MonkeyPatch:
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(TOKENS_TABLE)
    for key, value in {
        "GHL_BASE_URL": sandbox.url,
        "GHL_MARKETPLACE_URL": sandbox.url,
        "GHL_CLIENT_ID": DEMO_CLIENT_ID,
        "GHL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "AzureWebJobsStorage": azurite.connection_string,
    }.items():
        clean_settings.setenv(key, value)
    return clean_settings


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_a_working_private_token_gets_ok_with_the_location_calendars_and_headroom(
    private_token: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(capsys)
    assert code == 0
    assert (
        "OK sede loc_demo: «Reflexo Perú - Sede Principal», zona horaria America/Lima; 3 calendarios (2 activos)" in out
    )
    assert "quedan 98/100 solicitudes en 10 s y 199998/200000 hoy" in out
    assert DEMO_PRIVATE_TOKEN not in out
    assert out.rstrip().endswith("Resultado: OK")


def test_a_rejected_token_says_to_check_the_private_token(
    private_token: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private_token.setenv("GHL_PRIVATE_TOKEN", "pit-revocado")
    code, out = check(capsys)
    assert code == 1
    assert "Token inválido o vencido: revise GHL_PRIVATE_TOKEN." in out
    assert "pit-revocado" not in out


def test_a_location_the_token_does_not_cover_is_named(
    private_token: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(capsys, "--location", "loc_ajena")
    assert code == 1
    assert "no tiene acceso a la sede loc_ajena" in out


def test_an_unreachable_ghl_names_the_url_to_check(
    private_token: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private_token.setenv("GHL_BASE_URL", "http://127.0.0.1:9")
    code, out = check(capsys)
    assert code == 1
    assert "No se pudo conectar con GHL en http://127.0.0.1:9: revise GHL_BASE_URL" in out


def test_oauth_mode_checks_every_installed_location(
    oauth_mode: pytest.MonkeyPatch, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    app = OAuthApp.from_settings(settings)
    TokenStore(table_client(settings, TOKENS_TABLE)).save(DEMO_LOCATION_ID, app.exchange_code(consent(app), REDIRECT))
    app.close()
    code, out = check(capsys)
    assert code == 0
    assert "autenticación por OAuth (marketplace)" in out
    assert "OK sede loc_demo" in out


def test_oauth_mode_without_installs_says_how_to_install(
    oauth_mode: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(capsys)
    assert code == 1
    assert "instale la app desde /api/ghl/oauth/authorize" in out


def test_the_check_runs_as_a_module(private_token: pytest.MonkeyPatch) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.ghl", "check"],
        cwd=APP_DIR,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Resultado: OK" in result.stdout
