"""Runs the local Functions host as a real subprocess against the sample app, and waits on what it does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from tools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
FUNCTION_KEY = "local-test-function-key"
MASTER_KEY = "local-test-master-key"
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll until `condition()` is truthy (bounded), and return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class AppEnvironment:
    """Settings for one run of the sample app: own queues and record dir, so tests never see each other."""

    connection_string: str
    record_dir: Path
    tick_schedule: str = "0 0 0 1 1 *"  # once a year: quiet unless a test wants ticks
    tick_fails: bool = False
    tick_run_on_startup: bool = False
    tick_use_monitor: bool = False
    function_key: str | None = FUNCTION_KEY
    master_key: str | None = MASTER_KEY
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def host_id(self) -> str:
        return f"test-{self.suffix}"

    @property
    def record_queue(self) -> str:
        return f"record-{self.suffix}"

    @property
    def failing_queue(self) -> str:
        return f"failing-{self.suffix}"

    @property
    def slow_queue(self) -> str:
        return f"slow-{self.suffix}"

    def variables(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_FUNCTION_KEY", "LOCAL_MASTER_KEY")}
        env.update(
            AzureWebJobsStorage=self.connection_string,
            AzureFunctionsWebHost__hostid=self.host_id,
            RECORD_DIR=str(self.record_dir),
            RECORD_QUEUE=self.record_queue,
            FAILING_QUEUE=self.failing_queue,
            SLOW_QUEUE=self.slow_queue,
            TICK_SCHEDULE=self.tick_schedule,
            PYTHONUNBUFFERED="1",
        )
        for name, enabled in [
            ("TICK_FAILS", self.tick_fails),
            ("TICK_RUN_ON_STARTUP", self.tick_run_on_startup),
            ("TICK_USE_MONITOR", self.tick_use_monitor),
        ]:
            if enabled:
                env[name] = "1"
        if self.function_key:
            env["LOCAL_FUNCTION_KEY"] = self.function_key
        if self.master_key:
            env["LOCAL_MASTER_KEY"] = self.master_key
        return env

    def records(self, kind: str) -> list[dict[str, Any]]:
        path = self.record_dir / f"{kind}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class HostProcess:
    """`python -m tools.functions_host` on a free port; its console output goes to a log file."""

    def __init__(self, env: AppEnvironment, log_path: Path, message_lease: float = 600.0) -> None:
        self.env = env
        self.port = free_port()
        self.log_path = log_path
        self.message_lease = message_lease
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HostProcess:
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "tools.functions_host", "--app-dir", str(SAMPLE_APP)]
        command += [
            "--port",
            str(self.port),
            "--message-lease",
            str(self.message_lease),
            "--drain-timeout",
            "10",
        ]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self.env.variables(), stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for(self._started, timeout=30, what="the host to start")
        return self

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"host exited with {self.process.returncode}:\n{self.log()}")
        return "Host started" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, as Azure and Ctrl+C stop a host; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self._wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the host dies mid-work without any chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self._wait(10)

    def _wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", timeout=10, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base_url}{path}", timeout=10, **kwargs)


StartHost = Callable[..., HostProcess]
