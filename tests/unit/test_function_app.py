"""The deployed entry point: one FunctionApp, thin triggers, and an import that stays small for cold starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import azure.functions as func

import function_app
from tests.fixtures.functions import app_functions

APP_DIR = Path(__file__).resolve().parents[2]
ANONYMOUS_ROUTES = {"health", "ping", "webhooks/ghl", "ghl/oauth/callback", "{*path}"}
FUNCTIONS = app_functions()


def _http_bindings() -> list[dict[str, object]]:
    bindings = []
    for fn in FUNCTIONS:
        trigger = fn.get_trigger()
        if trigger is not None and trigger.get_binding_name() == "httpTrigger":
            bindings.append(trigger.get_dict_repr())
    return bindings


def test_importing_the_app_loads_no_heavy_sdk() -> None:
    probe = (
        "import sys, function_app; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_settings', 'sqlalchemy', 'alembic', 'httpx', 'msal', 'pyodbc', 'cryptography', "
        "'opentelemetry') or m.startswith(('azure.storage', 'azure.data', 'azure.identity', 'azure.monitor'))]; "
        "print(','.join(sorted(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=APP_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_the_webhook_oauth_callback_liveness_and_the_console_are_anonymous() -> None:
    """MiaSalud's routes are anonymous for the host because the app checks their X-API-KEY itself; the console's
    because it checks the signed-in principal itself (no function key may reach a browser)."""
    from shared.api.routing import OPERATIONS
    from shared.console.routing import CONSOLE_ROUTES

    keyed = {op.route for op in OPERATIONS if op.api_key}
    assert keyed and all(route.startswith("v1/") for route in keyed)
    assert CONSOLE_ROUTES and all(route.split("/")[0] == "console" for route in CONSOLE_ROUTES)
    for binding in _http_bindings():
        expected = "anonymous" if binding["route"] in ANONYMOUS_ROUTES | keyed | set(CONSOLE_ROUTES) else "function"
        level = binding["authLevel"]
        assert getattr(level, "value", level) == expected, binding["route"]


def test_health_is_served_by_a_native_http_function() -> None:
    routes = {b["route"] for b in _http_bindings()}
    assert {"health", "ghl/health"} <= routes


def test_the_app_is_the_single_function_app_the_worker_indexes() -> None:
    apps = [v for v in vars(function_app).values() if isinstance(v, func.FunctionApp)]
    assert apps == [function_app.app]
