"""Entra ID token hand-off to pyodbc for Azure SQL: packing, caching, engine hook, credential choice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyodbc
import pytest
import requests
from sqlalchemy import create_engine

from shared.store.entra import (
    SQL_COPT_SS_ACCESS_TOKEN,
    AccessToken,
    CachedTokenSource,
    DeveloperLoginTokenSource,
    EntraTokenError,
    MsalTokenSource,
    install_entra_token,
    pack_access_token,
    strip_credentials,
    token_source_from_env,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
AZURE_SQL_URL = (
    "mssql+pyodbc://@rv3sync.database.windows.net:1433/rv3sync?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes"
)


class FakeEntra:
    """Hands out numbered tokens valid for one hour from the `now` it is asked at."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, now: datetime) -> AccessToken:
        self.calls += 1
        return AccessToken(token=f"token-{self.calls}", expires_on=now + timedelta(hours=1))


class CapturedConnect(Exception):
    """Stops the connection attempt once pyodbc.connect has been reached."""


@pytest.fixture
def pyodbc_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake_connect(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        raise CapturedConnect

    monkeypatch.setattr(pyodbc, "connect", fake_connect)
    return calls


def open_connection(engine: Any) -> None:
    with pytest.raises(CapturedConnect):
        engine.connect()


def test_token_is_packed_as_little_endian_length_then_utf16le_bytes() -> None:
    assert pack_access_token("abc") == b"\x06\x00\x00\x00a\x00b\x00c\x00"
    long_token = "x" * 200
    assert pack_access_token(long_token)[:4] == b"\x90\x01\x00\x00"
    assert pack_access_token(long_token)[4:] == long_token.encode("utf-16-le")


def test_token_is_reused_until_five_minutes_before_it_expires() -> None:
    entra = FakeEntra()
    tokens = CachedTokenSource(entra)

    first = tokens.get_token(T0)
    assert tokens.get_token(T0 + timedelta(minutes=54, seconds=59)) == first
    assert entra.calls == 1

    refreshed = tokens.get_token(T0 + timedelta(minutes=55))
    assert refreshed.token == "token-2"
    assert tokens.get_token(T0 + timedelta(minutes=56)) == refreshed
    assert entra.calls == 2


def test_connections_opened_while_a_token_is_being_fetched_share_that_token() -> None:
    release = threading.Event()
    others: list[threading.Thread] = []
    results: list[AccessToken] = []

    class SlowEntra(FakeEntra):
        def get_token(self, now: datetime) -> AccessToken:
            token = super().get_token(now)
            if self.calls == 1:
                for _ in range(4):
                    thread = threading.Thread(target=lambda: results.append(tokens.get_token(T0)))
                    thread.start()
                    others.append(thread)
                for thread in others:
                    thread.join(timeout=0.2)
                release.set()
            return token

    entra = SlowEntra()
    tokens = CachedTokenSource(entra)
    results.append(tokens.get_token(T0))
    for thread in others:
        thread.join()

    assert release.is_set()
    assert entra.calls == 1
    assert {token.token for token in results} == {"token-1"}
    assert len(results) == 5


def test_each_new_connection_logs_in_with_the_token_and_no_other_credential(
    pyodbc_calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    engine = create_engine(AZURE_SQL_URL)
    install_entra_token(engine, FakeEntra(), clock=lambda: T0)

    open_connection(engine)

    (args, kwargs) = pyodbc_calls[0]
    attributes = args[0].split(";")
    assert "DRIVER={ODBC Driver 18 for SQL Server}" in attributes
    assert "Server=rv3sync.database.windows.net,1433" in attributes
    assert "Database=rv3sync" in attributes
    assert "Encrypt=yes" in attributes
    assert not any(a.lower().startswith("trusted_connection") for a in attributes)
    assert kwargs["attrs_before"] == {SQL_COPT_SS_ACCESS_TOKEN: pack_access_token("token-1")}


def test_user_password_and_authentication_in_the_url_never_reach_the_driver(
    pyodbc_calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    engine = create_engine(
        "mssql+pyodbc://admin:s3cr3t@rv3sync.database.windows.net:1433/rv3sync"
        "?driver=ODBC+Driver+18+for+SQL+Server&authentication=ActiveDirectoryPassword"
    )
    install_entra_token(engine, FakeEntra(), clock=lambda: T0)

    open_connection(engine)

    connection_string = pyodbc_calls[0][0][0]
    assert "s3cr3t" not in connection_string
    assert "admin" not in connection_string
    assert "Authentication" not in connection_string
    assert SQL_COPT_SS_ACCESS_TOKEN in pyodbc_calls[0][1]["attrs_before"]


def test_connection_opened_near_expiry_gets_a_fresh_token(
    pyodbc_calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    now = [T0]
    engine = create_engine(AZURE_SQL_URL)
    install_entra_token(engine, FakeEntra(), clock=lambda: now[0])

    open_connection(engine)
    now[0] = T0 + timedelta(minutes=30)
    open_connection(engine)
    now[0] = T0 + timedelta(minutes=56)
    open_connection(engine)

    sent = [kwargs["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN] for _, kwargs in pyodbc_calls]
    assert sent == [pack_access_token("token-1"), pack_access_token("token-1"), pack_access_token("token-2")]


def test_credentials_are_stripped_without_breaking_braced_values() -> None:
    connection_string = (
        "DRIVER={ODBC Driver 18; for SQL Server};Server=tcp:s,1433;UID=bob;"
        "PWD={p;w}}d};Trusted_Connection=Yes;Authentication=ActiveDirectoryMsi;Encrypt=yes"
    )
    assert strip_credentials(connection_string) == (
        "DRIVER={ODBC Driver 18; for SQL Server};Server=tcp:s,1433;Encrypt=yes"
    )


def test_msal_result_becomes_a_token_that_expires_after_expires_in() -> None:
    source = MsalTokenSource(lambda: {"access_token": "eyJ0", "expires_in": 3599, "token_type": "Bearer"})
    assert source.get_token(T0) == AccessToken(token="eyJ0", expires_on=T0 + timedelta(seconds=3599))


def test_refused_token_request_reports_the_error_code_but_not_the_description() -> None:
    source = MsalTokenSource(
        lambda: {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided: s3cr3t",
            "correlation_id": "c0ffee",
        }
    )
    with pytest.raises(EntraTokenError) as refused:
        source.get_token(T0)
    assert "invalid_client" in str(refused.value)
    assert "c0ffee" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)
    assert refused.value.code == "sql_token_unavailable"


def test_network_failure_while_fetching_a_token_is_reported_without_its_text() -> None:
    def unreachable() -> dict[str, Any]:
        raise requests.ConnectionError("https://login.example/?client_secret=s3cr3t")

    with pytest.raises(EntraTokenError) as failed:
        MsalTokenSource(unreachable).get_token(T0)
    assert "s3cr3t" not in str(failed.value)
    assert failed.value.__cause__ is None


def test_token_repr_never_shows_the_token() -> None:
    assert "eyJ0" not in repr(AccessToken(token="eyJ0", expires_on=T0))


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A loopback stand-in for the App Service / Functions managed identity endpoint."""
    requests_seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests_seen.append(
                {"query": parse_qs(urlparse(self.path).query), "header": self.headers["X-IDENTITY-HEADER"]}
            )
            body = json.dumps(
                {
                    "access_token": "mi-token",
                    "expires_on": str(int(datetime.now(UTC).timestamp()) + 86_400),
                    "resource": "https://database.windows.net",
                    "token_type": "Bearer",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header-value")
    yield requests_seen
    server.shutdown()
    server.server_close()


def test_managed_identity_token_comes_from_the_functions_identity_endpoint(
    identity_endpoint: list[dict[str, Any]],
) -> None:
    source = token_source_from_env({"IDENTITY_ENDPOINT": "set", "AZURE_CLIENT_ID": "uami-client-id"})

    token = source.get_token(T0)

    assert token.token == "mi-token"
    assert token.expires_on > T0
    (request,) = identity_endpoint
    assert request["query"]["resource"] == ["https://database.windows.net"]
    assert request["query"]["client_id"] == ["uami-client-id"]
    assert request["header"] == "header-value"


def test_client_secret_selects_a_service_principal_and_names_missing_keys() -> None:
    secret_env = {"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t"}
    assert isinstance(token_source_from_env(secret_env), MsalTokenSource)

    with pytest.raises(EntraTokenError, match="AZURE_TENANT_ID"):
        token_source_from_env({"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_ID": "c"})


def test_without_identity_endpoint_or_secret_the_developer_login_is_used() -> None:
    assert isinstance(token_source_from_env({"AZURE_CLIENT_ID": "c"}), DeveloperLoginTokenSource)


def test_importing_the_module_does_not_load_msal_or_requests() -> None:
    code = "import sys, shared.store.entra; print(sorted({'msal', 'requests'} & set(sys.modules)))"
    repo_root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
