"""The console's sign-in and protections: Easy Auth's principal, app roles, anti-forgery tokens, same-site checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

from shared import settings as settings_module
from shared.console import auth
from shared.http import ApiError
from shared.settings import SettingsError, app_setting_names, load_settings

KEY = b"k" * 32
OID = "00000000-0000-0000-0000-0000000000aa"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in [*app_setting_names(), "WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_AUTH_ENABLED"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings_module, "LOCAL_SETTINGS_FILE", tmp_path / "local.settings.json")
    yield


def _principal_header(*roles: str, name: str = "Carla Ruiz") -> str:
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": OID},
        {"typ": "name", "val": name},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return base64.b64encode(json.dumps(body).encode()).decode()


def _request(method: str = "GET", headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method, "https://app.example/api/console/citas", headers=headers or {}, body=b"")


def test_easy_auth_principal_gives_the_user_and_the_app_role() -> None:
    principal = auth.read_client_principal(_principal_header(auth.OPERATOR_ROLE))
    assert principal is not None
    assert (principal.user_id, principal.name, principal.role, principal.may_act) == (
        OID,
        "Carla Ruiz",
        "operator",
        True,
    )
    viewer = auth.read_client_principal(_principal_header(auth.VIEWER_ROLE))
    assert viewer is not None and (viewer.role, viewer.may_act) == ("viewer", False)
    nobody = auth.read_client_principal(_principal_header())
    assert nobody is not None and nobody.role is None


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"[1, 2]").decode(), "x" * 40_000])
def test_a_malformed_principal_is_nobody(value: str) -> None:
    assert auth.read_client_principal(value) is None


def test_in_azure_the_principal_header_is_trusted_only_when_app_service_authentication_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    monkeypatch.setenv("SQL_URL", "mssql+pyodbc://@server/db")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "acct")
    settings = load_settings()
    forged = _request(headers={auth.PRINCIPAL_HEADER: _principal_header(auth.OPERATOR_ROLE)})
    with pytest.raises(ApiError) as refused:
        auth.signed_in(forged, settings)
    assert (refused.value.status, refused.value.code) == (503, "console_sign_in_unavailable")

    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    principal = auth.signed_in(forged, settings)
    assert principal is not None and principal.role == "operator"
    assert auth.signed_in(_request(), settings) is None
    assert auth.sign_in_url("/api/console/citas").startswith("/.auth/login/aad?post_login_redirect_uri=/api/console")


def test_the_development_sign_in_is_refused_in_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    with pytest.raises(SettingsError) as refused:
        load_settings(CONSOLE_DEV_SIGNIN=True, SQL_URL="mssql+pyodbc://@s/d", AzureWebJobsStorage__accountName="a")
    assert [key for key, _ in refused.value.problems] == ["CONSOLE_DEV_SIGNIN"]


def test_locally_the_principal_header_is_ignored_and_the_dev_cookie_is_read() -> None:
    settings = load_settings(CONSOLE_DEV_SIGNIN=True, CONSOLE_SIGNING_KEY="s" * 32)
    forged = _request(headers={auth.PRINCIPAL_HEADER: _principal_header(auth.OPERATOR_ROLE)})
    assert auth.signed_in(forged, settings) is None
    principal = auth.dev_principal("Víctor", "viewer")
    value = auth.dev_cookie_value(auth.signing_key(settings), principal)
    assert auth.signed_in(_request(headers={"cookie": f"{auth.DEV_COOKIE}={value}"}), settings) == principal
    tampered = value.replace(value[:8], base64.urlsafe_b64encode(b"{}\n     ").decode()[:8])
    assert auth.signed_in(_request(headers={"cookie": f"{auth.DEV_COOKIE}={tampered}"}), settings) is None
    with pytest.raises(ApiError) as off:
        auth.signed_in(_request(), load_settings())
    assert off.value.code == "console_sign_in_unavailable"


def test_an_anti_forgery_token_is_bound_to_its_user_and_expires() -> None:
    token = auth.issue_token(KEY, "user-a", now=1_000_000)
    assert auth.token_valid(KEY, "user-a", token, now=1_000_060)
    assert not auth.token_valid(KEY, "user-b", token, now=1_000_060)
    assert not auth.token_valid(b"o" * 32, "user-a", token, now=1_000_060)
    assert not auth.token_valid(KEY, "user-a", token, now=1_000_000 + auth.TOKEN_TTL_S + 1)
    assert not auth.token_valid(KEY, "user-a", "", now=1_000_060)
    assert not auth.token_valid(KEY, "user-a", "１２３.abc", now=1_000_060)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"origin": "https://app.example", "host": "app.example"}, True),
        ({"origin": "https://evil.example", "host": "app.example"}, False),
        ({"origin": "null", "host": "app.example"}, False),
        ({"referer": "https://evil.example/page", "host": "app.example"}, False),
        ({"sec-fetch-site": "cross-site", "host": "app.example"}, False),
        ({"sec-fetch-site": "same-origin", "origin": "https://app.example", "host": "app.example"}, True),
    ],
)
def test_only_requests_from_the_console_s_own_site_may_change_anything(headers: dict[str, str], allowed: bool) -> None:
    assert auth.same_site(_request("POST", headers)) is allowed


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/api/console", "/api/other", None])
def test_after_sign_in_the_console_never_sends_staff_to_another_site(target: str | None) -> None:
    assert auth.safe_next(target) == "/api/console/"
