"""`python -m tools.odoo_sandbox`: its options, and the settings it prints to point the app at it."""

from __future__ import annotations

from tools.odoo_sandbox import DEMO_API_LOGIN
from tools.odoo_sandbox.__main__ import describe, load_config, parse_args
from tools.odoo_sandbox.sandbox import Sandbox


def test_the_options_override_the_defaults() -> None:
    config = load_config(parse_args(["--port", "8070", "--db", "clinica"]))
    assert (config.port, config.db, config.host) == (8070, "clinica", "127.0.0.1")


def test_it_prints_the_app_settings_for_its_api_user() -> None:
    config = load_config(parse_args(["--db", "clinica"]))
    lines = describe(Sandbox(config), "http://127.0.0.1:8069").splitlines()
    assert "  ODOO_URL=http://127.0.0.1:8069" in lines
    assert "  ODOO_DB=clinica" in lines
    assert f"  ODOO_USERNAME={DEMO_API_LOGIN}" in lines
