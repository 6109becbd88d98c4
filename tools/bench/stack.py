"""What the load benchmarks share: a throw-away PostgreSQL database, local Functions hosts with explicit
settings, the app's HTTP functions called in-process, and percentiles.

Every app setting is passed explicitly (empty = unset), so a developer's `local.settings.json` never leaks
into a measure.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from tools.ports import free_port

APP_DIR = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FUNCTION_KEY = "bench-function-key"


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so hosts, Azurite and the database are removed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def machine_load() -> str:
    """The 1-minute load average against the cores: other work on the machine skews every figure."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time process `pid` used so far (Linux /proc); 0.0 without a process."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile (0.0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def app_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with every app setting unset, then `settings`."""
    from shared.settings import app_setting_names

    env = {k: v for k, v in os.environ.items() if k not in app_setting_names()}
    env.update({name: "" for name in app_setting_names()})
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def postgres_database(
    prefix: str = "rv3sync_bench",
    *,
    admin_url: str = POSTGRES_ADMIN_URL,
    keep: bool = False,
    connect_timeout_s: int = 3,
) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head, dropped afterwards unless `keep` (for inspection): several
    hosts can share it, which SQLite's single writer cannot do without lock timeouts."""
    import sqlalchemy as sa

    from shared.store import migrate

    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": connect_timeout_s}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = sa.create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Host:
    """One local Functions host (`python -m tools.functions_host`) running `function_app`."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch without waiting; `wait_ready` waits (so several hosts boot side by side)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.functions_host", "--app-dir", str(APP_DIR), "--port", str(self.port)],
                cwd=APP_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the host exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/api/ping", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the host did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the host process used so far."""
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""


@contextlib.contextmanager
def hosts(count: int, env: dict[str, str], log_dir: Path, tag: str) -> Iterator[list[Host]]:
    """`count` hosts on the same settings (storage, database, GHL), as Azure scales an app out; stopped after."""
    started = [Host(env, log_dir / f"host-{tag}-{n}.log") for n in range(count)]
    try:
        for host in started:
            host.start()
        for host in started:
            host.wait_ready()
        yield started
    finally:
        for host in started:
            host.stop()


class InProcessApp(httpx.BaseTransport):
    """The app's HTTP functions served to httpx in this process (as the host would call them), so a benchmark
    can install locations and create appointments while no host (and so no queue worker) is running."""

    def __init__(self) -> None:
        from blueprints.citas import citas_cancel, citas_create, citas_update
        from blueprints.oauth import ghl_oauth_authorize, ghl_oauth_callback

        self._routes: dict[tuple[str, str], Callable[..., Any]] = {
            ("GET", "ghl/oauth/authorize"): ghl_oauth_authorize,
            ("GET", "ghl/oauth/callback"): ghl_oauth_callback,
            ("POST", "ghl/citas"): citas_create,
            ("PUT", "ghl/citas/{id}"): citas_update,
            ("POST", "ghl/citas/{id}/cancel"): citas_cancel,
        }

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import azure.functions as func

        from shared.http import ApiError, error_response

        path = request.url.path.removeprefix("/api/")
        parts = path.split("/")
        route_params = {}
        if len(parts) > 2 and parts[2].isdigit():
            route_params = {"id": parts[2]}
            parts[2] = "{id}"
        handler = self._routes[(request.method, "/".join(parts))]
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.url.params),
            route_params=route_params,
            body=request.read(),
        )
        try:
            answer = handler(req)
        except ApiError as error:
            answer = error_response(error)
        headers = dict(answer.headers)
        if answer.mimetype:
            headers["content-type"] = f"{answer.mimetype}; charset={answer.charset}"
        return httpx.Response(answer.status_code, headers=headers, content=answer.get_body())


APP_URL = "http://app.local"


def in_process_client() -> httpx.Client:
    """A client of the app in this process (APP_URL) and of anything else over HTTP (the sandbox's consent page)."""
    return httpx.Client(mounts={APP_URL: InProcessApp()}, timeout=30)


def install_location(client: httpx.Client, location_id: str) -> None:
    """The marketplace install as an admin does it: authorize → GHL's consent page → callback."""
    to_ghl = client.get(f"{APP_URL}/api/ghl/oauth/authorize")
    if to_ghl.status_code != 302:
        raise RuntimeError(f"authorize answered {to_ghl.status_code}: {to_ghl.text[:300]}")
    consent = to_ghl.headers["location"]
    consent += ("&" if urlsplit(consent).query else "?") + urlencode({"sandbox_location_id": location_id})
    back = client.get(consent)
    if back.status_code != 302:
        raise RuntimeError(f"the consent page answered {back.status_code}: {back.text[:300]}")
    done = client.get(back.headers["location"], headers={"Accept": "application/json"})
    if done.status_code != 200 or json.loads(done.content)["location_id"] != location_id:
        raise RuntimeError(f"the install callback answered {done.status_code}: {done.text[:300]}")
