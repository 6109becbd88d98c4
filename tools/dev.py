"""`python -m tools.dev`: run the app locally — Azurite, the GHL and Odoo sandboxes (or yours), the Functions host.

With `GHL_BASE_URL` and a private token with its location, or an OAuth client, configured (environment or
`local.settings.json`), the app talks to exactly that GHL — GHL itself or a stand-in of yours on any URL — and
no sandbox is started. Otherwise the GHL sandbox serves a demo location on :8090 and sends signed webhooks to
the app. Odoo likewise: with `ODOO_URL`, `ODOO_DB` and `ODOO_API_KEY` (and `ODOO_USERNAME` over JSON-RPC) the app
uses that Odoo; otherwise the Odoo sandbox serves its demo database on :8069 and the app is pointed at it as its
API user. A configuration left half-done is named at start-up. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from shared.settings import DEV_MANYCHAT_KEY
from tools.azurite import Azurite, AzuriteError, AzuritePorts

APP_DIR = Path(__file__).resolve().parent.parent
LOCAL = APP_DIR / ".local"
SANDBOX_PORT = 8090
ODOO_SANDBOX_PORT = 8069
# The app settings this runner provides itself (storage, and the sandboxes' when they are used).
ADDED_SETTINGS = {
    "AzureWebJobsStorage",
    "GHL_BASE_URL",
    "GHL_MARKETPLACE_URL",
    "GHL_PRIVATE_TOKEN",
    "GHL_LOCATION_ID",
    "GHL_CLIENT_ID",
    "GHL_CLIENT_SECRET",
    "GHL_WEBHOOK_ED25519_KEY",
    "GHL_WEBHOOK_RSA_KEY",
    "MANYCHAT_API_KEYS",
    "ODOO_URL",
    "ODOO_DB",
    "ODOO_USERNAME",
    "ODOO_API_KEY",
}
HOST_PORT = 7071


def local_values() -> dict[str, str]:
    """`local.settings.json` Values (created from the example on first run), as `func start` reads them."""
    target = APP_DIR / "local.settings.json"
    if not target.exists():
        shutil.copy(APP_DIR / "local.settings.json.example", target)
        print(f"created {target.name} from local.settings.json.example")
    values = json.loads(target.read_text(encoding="utf-8")).get("Values", {})
    return {k: str(v) for k, v in values.items() if v not in (None, "")}


@dataclass(frozen=True)
class Service:
    """An outside system the app talks to: the setting with its URL, and the sets of credentials (any one
    complete set works) that make a configured one usable."""

    name: str
    url: str
    credentials: tuple[tuple[str, ...], ...]

    @property
    def settings(self) -> tuple[str, ...]:
        return (self.url, *(name for group in self.credentials for name in group))


# With GHL_BASE_URL, either pair is a GHL the app can talk to.
GHL = Service("GHL", "GHL_BASE_URL", (("GHL_PRIVATE_TOKEN", "GHL_LOCATION_ID"), ("GHL_CLIENT_ID", "GHL_CLIENT_SECRET")))


def odoo_service(environ: Mapping[str, str], values: Mapping[str, str]) -> Service:
    """Odoo needs its database and API key, and the user's login too over JSON-RPC (the default protocol)."""
    protocol = _configured(environ, values, "ODOO_PROTOCOL") or "jsonrpc"
    needed = ("ODOO_DB", "ODOO_API_KEY") if protocol == "json2" else ("ODOO_DB", "ODOO_USERNAME", "ODOO_API_KEY")
    return Service("Odoo", "ODOO_URL", (needed,))


@dataclass(frozen=True)
class ServiceChoice:
    """The system the app is pointed at: `url` as configured, or the built-in sandbox when it is None."""

    url: str | None
    warning: str | None = None  # what a half-done configuration lacks; names settings, never their values


def choose(service: Service, environ: Mapping[str, str], values: Mapping[str, str], sandbox_port: int) -> ServiceChoice:
    """The configured system when it is complete, else the sandbox (naming what is missing). A setting comes from
    `environ` or, when it is not there, local.settings.json `values`, as the host reads them."""
    configured = {name: _configured(environ, values, name) for name in service.settings}
    url = configured[service.url]
    if url.rstrip("/") in (f"http://127.0.0.1:{sandbox_port}", f"http://localhost:{sandbox_port}"):
        return ServiceChoice(None)  # as in local.settings.json.example: the sandbox this runner starts
    complete = any(all(configured[name] for name in group) for group in service.credentials)
    if url and complete:
        return ServiceChoice(url)
    present = [name for name, value in configured.items() if value]
    if not present:
        return ServiceChoice(None)
    missing = [] if url else [service.url]
    if not complete:
        missing += _missing_credentials(service, configured)
    return ServiceChoice(
        None,
        f"{_listed(present)} {_be(present)} set but {_listed(missing)} {_be(missing)} not: using the built-in "
        f"{service.name} sandbox instead; set {'it' if len(missing) == 1 else 'them'} to use yours",
    )


def choose_ghl(environ: Mapping[str, str], values: Mapping[str, str], sandbox_port: int) -> ServiceChoice:
    return choose(GHL, environ, values, sandbox_port)


def choose_odoo(environ: Mapping[str, str], values: Mapping[str, str], sandbox_port: int) -> ServiceChoice:
    return choose(odoo_service(environ, values), environ, values, sandbox_port)


def _configured(environ: Mapping[str, str], values: Mapping[str, str], name: str) -> str:
    return environ[name] if name in environ else values.get(name, "")


def _missing_credentials(service: Service, configured: Mapping[str, str]) -> list[str]:
    """The rest of each set begun, or every set when none is."""
    if len(service.credentials) == 1:
        return [name for name in service.credentials[0] if not configured[name]]
    halves = [
        " and ".join(name for name in group if not configured[name])
        for group in service.credentials
        if any(configured[name] for name in group)
    ]
    if halves:
        return [" or ".join(halves)]
    first, *others = (" with ".join(group) for group in service.credentials)
    return [first + "".join(f" (or {other})" for other in others)]


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _be(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def wait_for(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def start_sandbox(stack: ExitStack, port: int, webhook_url: str) -> tuple[str, dict[str, str]]:
    """The demo GHL sandbox on `port`, and the app settings that point the app at it."""
    from tools.ghl_sandbox import DEMO_SEED, SandboxConfig, SandboxServer
    from tools.ghl_sandbox.config import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        DEMO_LOCATION_ID,
        DEMO_PRIVATE_TOKEN,
    )

    config = SandboxConfig(seed=DEMO_SEED, key_dir=LOCAL / "ghl-sandbox" / "keys")
    config.webhooks.url = webhook_url
    server = stack.enter_context(SandboxServer(config, port=port))
    keys = server.public_keys
    env = {
        "GHL_BASE_URL": server.url,
        "GHL_MARKETPLACE_URL": server.url,
        "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": DEMO_LOCATION_ID,
        "GHL_CLIENT_ID": DEMO_CLIENT_ID,
        "GHL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "GHL_WEBHOOK_ED25519_KEY": keys.ed25519_pem,
        "GHL_WEBHOOK_RSA_KEY": keys.rsa_pem,
    }
    return server.url, env


def start_odoo_sandbox(stack: ExitStack, port: int) -> tuple[str, dict[str, str]]:
    """The Odoo sandbox's demo database on `port`, and the app settings that point the app at it as its API user."""
    from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, SandboxConfig, SandboxServer

    server = stack.enter_context(SandboxServer(SandboxConfig(port=port), port=port))
    env = {"ODOO_URL": server.url, "ODOO_DB": server.db, "ODOO_USERNAME": DEMO_API_LOGIN, "ODOO_API_KEY": DEMO_API_KEY}
    return server.url, env


def in_use(exc: OSError, what: str, port: int, option: str) -> bool:
    """Say so when `port` is taken (then the caller stops); False for any other failure."""
    if exc.errno != errno.EADDRINUSE:
        return False
    print(
        f"Cannot start the {what}: :{port} is in use; stop what listens there or run with {option} PORT.",
        file=sys.stderr,
    )
    return True


def use_odoo(stack: ExitStack, env: dict[str, str], values: Mapping[str, str], port: int) -> bool:
    """Point the app at the configured Odoo, or at the sandbox started on `port`; False when it cannot start."""
    choice = choose_odoo(os.environ, values, port)
    if choice.warning:
        print(choice.warning, file=sys.stderr)
    protocol = _configured(os.environ, values, "ODOO_PROTOCOL") or "jsonrpc"
    if choice.url:
        db = _configured(os.environ, values, "ODOO_DB")
        print(
            f"Odoo: {choice.url} (database {db}, {protocol}), as configured (the built-in Odoo sandbox is not started)"
        )
        return True
    try:
        url, odoo_env = start_odoo_sandbox(stack, port)
    except OSError as exc:
        if in_use(exc, "Odoo sandbox", port, "--odoo-port"):
            return False
        raise
    env.update(odoo_env)
    print(
        f"Odoo: the built-in sandbox at {url} (database {odoo_env['ODOO_DB']}, user {odoo_env['ODOO_USERNAME']}, "
        f"{protocol}; calls and faults at {url}/_sandbox/)"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=HOST_PORT, help="HTTP port of the Functions host")
    parser.add_argument("--sandbox-port", type=int, default=SANDBOX_PORT, help="port of the GHL sandbox")
    parser.add_argument("--odoo-port", type=int, default=ODOO_SANDBOX_PORT, help="port of the Odoo sandbox")
    args = parser.parse_args(argv)

    values = local_values()
    with ExitStack() as stack:
        try:
            storage = stack.enter_context(
                Azurite(LOCAL / "azurite", AzuritePorts(blob=10000, queue=10001, table=10002))
            )
        except AzuriteError as exc:
            print(f"Cannot start: {exc}; stop the other ./scripts/run or Azurite first.", file=sys.stderr)
            return 1
        print(f"Azurite: queues :{storage.ports.queue}, tables :{storage.ports.table} (data in .local/azurite)")
        env = dict(os.environ)
        env["AzureWebJobsStorage"] = storage.connection_string
        choice = choose_ghl(os.environ, values, args.sandbox_port)
        if choice.warning:
            print(choice.warning, file=sys.stderr)
        if choice.url:
            print(f"GHL: {choice.url}, as configured (the built-in sandbox is not started)")
        else:
            webhook_url = f"http://127.0.0.1:{args.port}/api/webhooks/ghl"
            try:
                sandbox_url, sandbox_env = start_sandbox(stack, args.sandbox_port, webhook_url)
            except OSError as exc:
                if in_use(exc, "GHL sandbox", args.sandbox_port, "--sandbox-port"):
                    return 1
                raise
            env.update(sandbox_env)
            location = env["GHL_LOCATION_ID"]
            print(f"GHL: the built-in sandbox at {sandbox_url} (location {location}), webhooks to {webhook_url}")
        if not use_odoo(stack, env, values, args.odoo_port):
            return 1
        if not (os.environ.get("MANYCHAT_API_KEYS") or values.get("MANYCHAT_API_KEYS")):
            env["MANYCHAT_API_KEYS"] = DEV_MANYCHAT_KEY
            print(f"MiaSalud (ManyChat): MANYCHAT_API_KEYS is not set; the development key {DEV_MANYCHAT_KEY} is used")
        if not (os.environ.get("CONSOLE_DEV_SIGNIN") or values.get("CONSOLE_DEV_SIGNIN")):
            env["CONSOLE_DEV_SIGNIN"] = "true"  # locally only: the settings refuse it in Azure
        return run_host(args.port, env, values)


def check_settings(overrides: dict[str, str]) -> bool:
    """Validate the app settings as the app will read them (what this runner sets, then the environment, then
    local.settings.json), so an invalid value stops start-up with a message naming the key."""
    from shared.settings import SettingsError, load_settings

    try:
        load_settings(**overrides)
    except SettingsError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return False
    return True


def run_host(port: int, env: dict[str, str], values: dict[str, str]) -> int:
    """Run the Functions host until Ctrl-C (or until it exits), printing how to call the app once it is up."""
    if not check_settings({k: v for k, v in env.items() if k in ADDED_SETTINGS}):
        return 2
    host = subprocess.Popen(
        [sys.executable, "-m", "tools.functions_host", "--app-dir", str(APP_DIR), "--port", str(port)],
        cwd=APP_DIR,
        env=env,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    health = f"http://127.0.0.1:{port}/api/health"
    if wait_for(health, timeout=60):
        key = env.get("LOCAL_FUNCTION_KEY") or values.get("LOCAL_FUNCTION_KEY", "(printed by the host above)")
        print(f"\nReady: {health} answers 200.")
        print(f"Function key for the API: x-functions-key: {key}")
        print(f"Try: curl -H 'x-functions-key: {key}' http://127.0.0.1:{port}/api/ghl/calendars")
        print(f"     curl -H 'X-API-KEY: <MANYCHAT_API_KEYS>' http://127.0.0.1:{port}/api/v1/reports/health")
        print(f"Operations console (development sign-in): http://127.0.0.1:{port}/api/console/")
        print("Ctrl-C to stop.\n")
    else:
        print(f"The app did not become healthy at {health}; see the host output above.", file=sys.stderr)
    try:
        while not stopping and host.poll() is None:
            time.sleep(0.5)
    finally:
        if host.poll() is None:
            host.send_signal(signal.SIGTERM)
            try:
                host.wait(timeout=30)
            except subprocess.TimeoutExpired:
                host.kill()
    return 0 if stopping else (host.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
