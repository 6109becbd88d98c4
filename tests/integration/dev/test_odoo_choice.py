"""Which Odoo `python -m tools.dev` points the app at: the one configured when it is complete, else the sandbox,
started on its port with the app settings of its API user (the key never printed)."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from tools.dev import ServiceChoice, choose_odoo, start_odoo_sandbox
from tools.odoo_sandbox import DEMO_API_LOGIN, DEMO_DB
from tools.ports import free_port

SANDBOX_PORT = 8069
JSONRPC = {"ODOO_URL": "https://miasalud.odoo.com", "ODOO_DB": "miasalud-prod", "ODOO_USERNAME": "api@miasalud.mx",
           "ODOO_API_KEY": "a-real-key-0000"}  # fmt: skip
FALLBACK = "using the built-in Odoo sandbox instead"


def choose(environ: dict[str, str] | None = None, values: dict[str, str] | None = None) -> ServiceChoice:
    return choose_odoo(environ or {}, values or {}, SANDBOX_PORT)


def test_nothing_configured_uses_the_sandbox_without_a_warning() -> None:
    assert choose() == ServiceChoice(None)


def test_a_complete_configuration_in_local_settings_is_used() -> None:
    assert choose(values=JSONRPC) == ServiceChoice("https://miasalud.odoo.com")


def test_json2_needs_no_username() -> None:
    environ = {**JSONRPC, "ODOO_PROTOCOL": "json2", "ODOO_USERNAME": ""}
    assert choose(environ) == ServiceChoice("https://miasalud.odoo.com")


def test_jsonrpc_without_a_username_falls_back_to_the_sandbox_naming_it() -> None:
    environ = {k: v for k, v in JSONRPC.items() if k != "ODOO_USERNAME"}
    assert choose(environ).warning == (
        f"ODOO_URL, ODOO_DB and ODOO_API_KEY are set but ODOO_USERNAME is not: {FALLBACK}; set it to use yours"
    )


def test_credentials_without_a_url_fall_back_naming_the_url() -> None:
    environ = {k: v for k, v in JSONRPC.items() if k != "ODOO_URL"}
    choice = choose(environ)
    assert choice.url is None
    assert choice.warning and choice.warning.endswith(f"are set but ODOO_URL is not: {FALLBACK}; set it to use yours")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8069", "http://localhost:8069/"])
def test_the_sandbox_address_is_the_sandbox(url: str) -> None:
    assert choose({**JSONRPC, "ODOO_URL": url}) == ServiceChoice(None)


def test_a_warning_names_settings_never_their_values() -> None:
    warning = choose({"ODOO_URL": "http://127.0.0.1:9000", "ODOO_API_KEY": "a-real-key-0000"}).warning
    assert warning and FALLBACK in warning and "a-real-key-0000" not in warning


def test_the_sandbox_started_for_the_app_answers_as_its_api_user() -> None:
    port = free_port()
    with ExitStack() as stack:
        url, env = start_odoo_sandbox(stack, port)
        assert url == f"http://127.0.0.1:{port}" == env["ODOO_URL"]
        assert (env["ODOO_DB"], env["ODOO_USERNAME"]) == (DEMO_DB, DEMO_API_LOGIN)
        args = [env["ODOO_DB"], env["ODOO_USERNAME"], env["ODOO_API_KEY"], {}]
        call = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": "common", "method": "authenticate", "args": args},
        }
        assert httpx.post(f"{url}/jsonrpc", json=call, timeout=5).json()["result"] == 6
