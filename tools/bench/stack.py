"""What the load benchmarks share: a throw-away PostgreSQL database, local Functions hosts with explicit
settings, the app's HTTP functions called in-process, an open-loop sender, and percentiles.

Every app setting is passed explicitly (empty = unset), so a developer's `local.settings.json` never leaks
into a measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
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


@dataclass(frozen=True)
class Request:
    """One request of an open-loop run."""

    path: str
    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"


@dataclass
class Answers:
    """What an open-loop run got back, by index in the requests sent."""

    scheduled: int
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: dict[int, bytes] = field(default_factory=dict)  # answered 2xx, with the answer's body
    rejected: set[int] = field(default_factory=set)  # answered with another status
    unanswered: set[int] = field(default_factory=set)  # no answer within the timeout, or the connection failed
    ack_ms: list[float] = field(default_factory=list)  # from sending to the answer (answered ones)
    late_ms: list[float] = field(default_factory=list)  # from the scheduled moment to the answer
    send_lag_ms: list[float] = field(default_factory=list)  # scheduled moment to the actual send
    sending_s: float = 0.0  # from the first scheduled moment to the last actual send
    answering_s: float = 0.0  # from the first scheduled moment to the last answer (or give-up)
    started: float = 0.0  # time.perf_counter() of the first scheduled moment


def send_open_loop(base_url: str, requests: list[Request], rate: float, concurrency: int, timeout_s: float) -> Answers:
    """Open loop: request i is due at start + i/rate and goes out on the first free keep-alive connection (at most
    `concurrency`), answered within `timeout_s` or counted as unanswered (the connection is then dropped, as a
    client that gave up does). Requests are pre-built bytes over asyncio streams: an HTTP client library costs
    milliseconds per request, which made the sender, not the host, the limit."""
    return asyncio.run(_send_open_loop(base_url, requests, rate, concurrency, timeout_s))


async def _send_open_loop(
    base_url: str, planned: list[Request], rate: float, concurrency: int, timeout_s: float
) -> Answers:
    answers = Answers(scheduled=len(planned))
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    wire = [_request_bytes(f"{host}:{port}", request) for request in planned]
    due: asyncio.Queue[int | None] = asyncio.Queue()
    start = answers.started = time.perf_counter() + 0.5

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (i := await due.get()) is not None:
            sent = time.perf_counter()
            answers.send_lag_ms.append((sent - start - i / rate) * 1000)
            answers.sending_s = max(answers.sending_s, sent - start)
            try:
                async with asyncio.timeout(timeout_s):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    writer.write(wire[i])
                    status, keep, body = await _read_answer(reader)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                kind = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
                answers.statuses[f"no answer ({kind})"] += 1
                answers.unanswered.add(i)
                answers.answering_s = max(answers.answering_s, time.perf_counter() - start)
                _close(writer)
                writer = None
                continue
            done = time.perf_counter()
            if not keep:
                _close(writer)
                writer = None
            answers.ack_ms.append((done - sent) * 1000)
            answers.late_ms.append((done - start - i / rate) * 1000)
            answers.answering_s = max(answers.answering_s, done - start)
            answers.statuses[str(status)] += 1
            if 200 <= status < 300:
                answers.accepted[i] = body
            else:
                answers.rejected.add(i)
        _close(writer)

    workers = [asyncio.create_task(connection()) for _ in range(concurrency)]
    for i in range(len(planned)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(i)
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    return answers


def _request_bytes(host: str, request: Request) -> bytes:
    """The whole HTTP/1.1 request, built before the clock starts (the sender must not be the bottleneck)."""
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(request.body)}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Status, whether the server keeps the connection open, and the body, reading the whole answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    fields = {name.strip().lower(): value.strip() for name, value in headers.items()}
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() != "close", body


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


def allow_open_files(wanted: int) -> None:
    """Raise this process's open-file limit (often 1,024 by default) towards `wanted`, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
