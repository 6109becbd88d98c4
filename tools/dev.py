"""`python -m tools.dev`: run the whole app locally — Azurite, the GHL sandbox (or your GHL), the Functions host.

With `GHL_BASE_URL` and a private token with its location, or an OAuth client, configured (environment or
`local.settings.json`), the app talks to exactly that GHL — GHL itself or a stand-in of yours on any URL — and
no sandbox is started. Otherwise the GHL sandbox serves a demo location on :8090 and sends signed webhooks to
the app, and a configuration left half-done is named at start-up. Ctrl-C stops everything.
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
# The app settings this runner provides itself (storage, and the sandbox's when it is used).
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


# With GHL_BASE_URL, either pair is a GHL the app can talk to.
CREDENTIALS = (("GHL_PRIVATE_TOKEN", "GHL_LOCATION_ID"), ("GHL_CLIENT_ID", "GHL_CLIENT_SECRET"))
GHL_CHOICE_SETTINGS = ("GHL_BASE_URL", *(name for pair in CREDENTIALS for name in pair))


@dataclass(frozen=True)
class GhlChoice:
    """The GHL the app is pointed at: `url` as configured, or the built-in sandbox when it is None."""

    url: str | None
    warning: str | None = None  # what a half-done configuration lacks; names settings, never their values


def choose_ghl(environ: Mapping[str, str], values: Mapping[str, str], sandbox_port: int) -> GhlChoice:
    """The configured GHL when it is complete, else the sandbox (naming what is missing). A setting comes from
    `environ` or, when it is not there, local.settings.json `values`, as the host reads them."""
    configured = {name: environ[name] if name in environ else values.get(name, "") for name in GHL_CHOICE_SETTINGS}
    url = configured["GHL_BASE_URL"]
    if url.rstrip("/") in (f"http://127.0.0.1:{sandbox_port}", f"http://localhost:{sandbox_port}"):
        return GhlChoice(None)  # as in local.settings.json.example: the sandbox this runner starts
    complete = any(all(configured[name] for name in pair) for pair in CREDENTIALS)
    if url and complete:
        return GhlChoice(url)
    present = [name for name, value in configured.items() if value]
    if not present:
        return GhlChoice(None)
    missing = [] if url else ["GHL_BASE_URL"]
    if not complete:
        missing.append(_missing_credentials(configured))
    return GhlChoice(
        None,
        f"{_listed(present)} {_be(present)} set but {_listed(missing)} {_be(missing)} not: using the built-in GHL "
        f"sandbox instead; set {'it' if len(missing) == 1 else 'them'} to use yours",
    )


def _missing_credentials(configured: Mapping[str, str]) -> str:
    """The other half of each pair begun, or either pair when none is."""
    halves = [
        " and ".join(name for name in pair if not configured[name])
        for pair in CREDENTIALS
        if any(configured[name] for name in pair)
    ]
    return " or ".join(halves) or "GHL_PRIVATE_TOKEN with GHL_LOCATION_ID (or GHL_CLIENT_ID with GHL_CLIENT_SECRET)"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=HOST_PORT, help="HTTP port of the Functions host")
    parser.add_argument("--sandbox-port", type=int, default=SANDBOX_PORT)
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
                if exc.errno != errno.EADDRINUSE:
                    raise
                print(
                    f"Cannot start the GHL sandbox: :{args.sandbox_port} is in use; stop what listens there or run "
                    "with --sandbox-port PORT.",
                    file=sys.stderr,
                )
                return 1
            env.update(sandbox_env)
            location = env["GHL_LOCATION_ID"]
            print(f"GHL: the built-in sandbox at {sandbox_url} (location {location}), webhooks to {webhook_url}")
        if not (os.environ.get("MANYCHAT_API_KEYS") or values.get("MANYCHAT_API_KEYS")):
            env["MANYCHAT_API_KEYS"] = DEV_MANYCHAT_KEY
            print(f"MiaSalud (ManyChat): MANYCHAT_API_KEYS is not set; the development key {DEV_MANYCHAT_KEY} is used")
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
