"""One local Functions host as a child process (`python -m tools.functions_host`): started, stopped, or killed
with -9 as a crashed instance. Used by the end-to-end tests and the chaos run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

APP_DIR = Path(__file__).resolve().parents[2]


@dataclass
class HostProcess:
    """One local Functions host running `function_app` with the stack's settings."""

    env: dict[str, str]
    port: int
    log_path: Path
    message_lease_s: float = 600.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.functions_host",
                "--app-dir",
                str(APP_DIR),
                "--port",
                str(self.port),
                "--message-lease",
                str(self.message_lease_s),
            ],
            cwd=APP_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=2).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"host did not start in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9, as a crashed or scaled-in instance."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def log_tail(self, size: int = 4000) -> str:
        """The last `size` characters of the host's output."""
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""
