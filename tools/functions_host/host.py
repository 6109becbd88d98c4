"""Wires the local host together: settings, indexing, HTTP, queue and timer listeners, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn

from tools.functions_host.config import HostConfig, HostConfigError, load_local_settings, resolve_connection
from tools.functions_host.http import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT, BodyLimits, HttpFrontend
from tools.functions_host.indexing import (
    FunctionDescriptor,
    HttpTrigger,
    QueueTrigger,
    TimerTrigger,
    index_functions,
    load_app,
)
from tools.functions_host.invocation import Invoker
from tools.functions_host.keys import HostKeys
from tools.functions_host.queues import DEFAULT_MESSAGE_LEASE, QueueClients, QueueListener, QueueOutputs
from tools.functions_host.timers import (
    HOST_STATE_TABLE,
    NcrontabSchedule,
    ScheduleMonitor,
    TableLease,
    TimerListener,
    uses_monitor,
)

logger = logging.getLogger("Host")

DEFAULT_PORT = 7071
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"  # the setting the real host reads
STORAGE_SETTING = "AzureWebJobsStorage"


@dataclass(frozen=True)
class HostOptions:
    app_dir: Path
    module: str = "function_app"
    host: str = "127.0.0.1"
    port: int | None = None  # None: local.settings.json Host.LocalHttpPort, else 7071
    message_lease: timedelta = DEFAULT_MESSAGE_LEASE
    drain_timeout: timedelta = timedelta(seconds=30)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the host decides when HTTP stops, after draining work."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def host_id(app_dir: Path, module: str) -> str:
    """Same app → same id, so several local hosts of one app share timer leases like instances on Azure."""
    configured = os.environ.get(HOST_ID_SETTING)
    if configured:
        return configured.lower()
    digest = hashlib.sha256(f"{app_dir}:{module}".encode()).hexdigest()
    return f"local-{digest[:16]}"


def _banner(functions: list[FunctionDescriptor], keys: HostKeys, base_url: str, route_prefix: str) -> str:
    lines = ["", "Functions:", ""]
    prefix = f"/{route_prefix}" if route_prefix else ""
    for function in functions:
        trigger = function.trigger
        if isinstance(trigger, HttpTrigger):
            methods = ",".join(sorted(trigger.methods)) if trigger.methods else "ALL"
            route = f"/{trigger.route}" if trigger.route else ""
            lines.append(f"\t{function.name}: [{methods}] {base_url}{prefix}{route}")
        elif isinstance(trigger, QueueTrigger):
            lines.append(f"\t{function.name}: queueTrigger ({trigger.queue_name})")
        else:
            lines.append(f"\t{function.name}: timerTrigger ({trigger.schedule})")
        lines.append("")
    has_admin = any(isinstance(f.trigger, HttpTrigger) and f.trigger.auth_level == "admin" for f in functions)
    if "LOCAL_FUNCTION_KEY" in keys.generated:
        lines.append(f"LOCAL_FUNCTION_KEY is not set; generated for this run: {keys.function_keys[0]}")
    if "LOCAL_MASTER_KEY" in keys.generated and has_admin:
        lines.append(f"LOCAL_MASTER_KEY is not set; generated for this run: {keys.master_key}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Stopped:
    exit_code: int  # 0 after SIGTERM/SIGINT; 1 when the HTTP server or a listener ended on its own
    drained: bool  # False when invocations were still running after the drain timeout


async def serve(options: HostOptions) -> Stopped:
    """Run the host until SIGTERM/SIGINT, then stop taking work and wait (bounded) for what is in flight."""
    loop = asyncio.get_running_loop()
    # Storage calls are blocking SDK calls; give them their own pool, apart from the functions' threads.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="host-io"))
    app_dir = options.app_dir.resolve()
    # The worker runs with the app folder as working directory; relative paths in the app mean the same here.
    os.chdir(app_dir)
    local_settings = load_local_settings(app_dir, os.environ)
    config = HostConfig.load(app_dir, os.environ)
    functions = index_functions(load_app(app_dir, options.module), os.environ)
    keys = HostKeys.from_environ(os.environ)

    connections: dict[str | None, str] = {}
    for function in functions:
        names = [o.connection for o in function.outputs]
        if isinstance(function.trigger, QueueTrigger):
            names.append(function.trigger.connection)
        for name in names:
            connections[name] = resolve_connection(name, os.environ, what=f"function {function.name!r}")

    clients = QueueClients()
    thread_count = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    invoker = Invoker(
        function_directory=app_dir,
        function_timeout=config.function_timeout,
        thread_count=int(thread_count) if thread_count else None,
        output_sink=QueueOutputs(clients, connections, config.queues.message_encoding).send,
    )
    listeners: list[QueueListener | TimerListener] = [
        QueueListener(
            f,
            connections[f.trigger.connection],
            options=config.queues,
            clients=clients,
            invoker=invoker,
            message_lease=options.message_lease,
        )
        for f in functions
        if isinstance(f.trigger, QueueTrigger)
    ]
    listeners += _timer_listeners(functions, invoker, host_id(app_dir, options.module))

    port = options.port or local_settings.http_port or DEFAULT_PORT
    server = _Server(
        uvicorn.Config(
            HttpFrontend(
                functions,
                invoker,
                keys,
                config.route_prefix,
                config.max_outstanding_requests,
                body_limits=BodyLimits(max_bytes=_body_limit(os.environ)),
            ),
            host=options.host,
            port=port,
            lifespan="off",
            access_log=False,  # access lines would carry `code=` keys from query strings
            log_config=None,
            timeout_graceful_shutdown=max(1, round(options.drain_timeout.total_seconds())),
        )
    )
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    server_task = asyncio.create_task(server.serve(sockets=[_listen(options.host, port)]))
    while not server.started and not server_task.done():
        await asyncio.sleep(0.05)
    print(_banner(functions, keys, f"http://{options.host}:{port}", config.route_prefix), flush=True)
    listener_tasks = [asyncio.create_task(listener.run(stopping)) for listener in listeners]
    logger.info("Host started (%d functions)", len(functions))

    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait({waiter, server_task, *listener_tasks}, return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0 if stopping.is_set() else 1
    logger.info("Stopping the host: no new work, waiting for invocations in flight")
    stopping.set()
    server.should_exit = True
    _, pending = await asyncio.wait({server_task, *listener_tasks}, timeout=options.drain_timeout.total_seconds())
    for task in {server_task, *listener_tasks} - pending:
        if not task.cancelled() and task.exception() is not None:
            logger.error("A listener stopped with an error", exc_info=task.exception())
    invoker.shutdown()
    if pending:
        logger.warning(
            "Invocations still running after %ss; queue messages among them come back when their lease ends",
            options.drain_timeout.total_seconds(),
        )
        return Stopped(exit_code, drained=False)
    logger.info("Host stopped")
    return Stopped(exit_code, drained=True)


def _body_limit(environ: os._Environ[str]) -> int:
    raw = environ.get(BODY_LIMIT_SETTING, "").strip()
    if not raw:
        return DEFAULT_BODY_LIMIT
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise HostConfigError(f"{BODY_LIMIT_SETTING} must be a number of bytes, got {raw!r}")
    return int(raw)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is a clear start-up error rather than a server that never runs.

    TCP_NODELAY (inherited by accepted connections), as the real host's Kestrel: without it every keep-alive
    request stalls ~40 ms on Nagle's algorithm meeting the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise HostConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


def _timer_listeners(functions: list[FunctionDescriptor], invoker: Invoker, host: str) -> list[TimerListener]:
    timers = [f for f in functions if isinstance(f.trigger, TimerTrigger)]
    if not timers:
        return []
    storage = os.environ.get(STORAGE_SETTING)
    if not storage:
        logger.warning("AzureWebJobsStorage is not set: timers run without the single-host lease or schedule monitor")
        return [TimerListener(f, invoker, None, None) for f in timers]
    from azure.data.tables import TableClient

    # No SDK retries: the timer listeners retry the lease themselves, on a jittered interval.
    table = TableClient.from_connection_string(
        storage, HOST_STATE_TABLE, connection_timeout=5, read_timeout=30, retry_total=0
    )
    listeners = []
    for function in timers:
        assert isinstance(function.trigger, TimerTrigger)
        monitored = uses_monitor(function.trigger, NcrontabSchedule(function.trigger.schedule))
        lease = TableLease(table, host, f"{function.name}.Listener")
        monitor = ScheduleMonitor(table, host, f"{function.name}.Status") if monitored else None
        listeners.append(TimerListener(function, invoker, lease, monitor))
    return listeners


def configure_logging() -> None:
    """One line per event like the Core Tools console: `[2024-05-01T12:00:00.123Z] message`."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    formatter = logging.Formatter("[%(asctime)s.%(msecs)03dZ] %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The storage SDK logs every request and response at INFO; keep the console about the functions.
    logging.getLogger("azure").setLevel(logging.WARNING)
