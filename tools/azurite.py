"""Starts, stops and restarts the Azurite storage emulator for local runs and tests."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from tools.ports import free_ports

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".local" / "azurite"
DEV_ACCOUNT_NAME = "devstoreaccount1"
# Azurite's fixed, publicly documented development key: it only ever unlocks the local emulator.
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    """Azurite could not be found, could not bind its ports, or did not become ready in time."""


@dataclass(frozen=True)
class AzuritePorts:
    """The three TCP ports Azurite listens on."""

    blob: int = 10000
    queue: int = 10001
    table: int = 10002

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> AzuritePorts:
        """Three ports nobody listens on right now (the OS picks them)."""
        blob, queue, table = free_ports(3, host)
        return cls(blob=blob, queue=queue, table=table)


def _accepts_connections(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def find_azurite_binary() -> Path:
    """`node_modules/.bin/azurite` of this repository (installed by scripts/bootstrap)."""
    binary = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise AzuriteError(f"Azurite not found at {binary}; run scripts/bootstrap (npm ci) first")
    return binary


class Azurite:
    """One Azurite process with fixed ports and data dir, so it can be stopped and started again as the same
    storage account (chaos tests restart storage and expect their queues and tables back)."""

    def __init__(
        self,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        ports: AzuritePorts | None = None,
        host: str = "127.0.0.1",
        binary: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.ports = ports or AzuritePorts()
        self.host = host
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def on_free_ports(
        cls,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        binary: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> Azurite:
        """An emulator on ports the OS picks, so tests never collide with a developer's Azurite."""
        return cls(data_dir, AzuritePorts.free(host), host, binary, startup_timeout)

    @property
    def connection_string(self) -> str:
        """Connection string for the dev account with explicit endpoints for the chosen ports."""
        base = f"http://{self.host}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.ports.blob}/{DEV_ACCOUNT_NAME};"
            f"QueueEndpoint={base}:{self.ports.queue}/{DEV_ACCOUNT_NAME};"
            f"TableEndpoint={base}:{self.ports.table}/{DEV_ACCOUNT_NAME};"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The emulator's process id while it runs (benchmarks read its CPU time)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "azurite.log"

    def start(self) -> None:
        """Start Azurite and return once its queue and table endpoints accept connections."""
        if self.running:
            return
        busy = [p for p in (self.ports.blob, self.ports.queue, self.ports.table) if _accepts_connections(self.host, p)]
        if busy:
            raise AzuriteError(f"ports already in use on {self.host}: {busy} (another Azurite running?)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binary or find_azurite_binary()),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--location", str(self.data_dir),
            "--blobHost", self.host, "--blobPort", str(self.ports.blob),
            "--queueHost", self.host, "--queuePort", str(self.ports.queue),
            "--tableHost", self.host, "--tablePort", str(self.ports.table),
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = {self.ports.queue, self.ports.table}
        while pending:
            if self._process is not None and self._process.poll() is not None:
                self._close_log()
                raise AzuriteError(f"Azurite exited with code {self._process.returncode}: {self._log_tail()}")
            pending = {port for port in pending if not _accepts_connections(self.host, port)}
            if pending and time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not open ports {sorted(pending)} within {self.startup_timeout}s")
            if pending:
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Azurite (SIGTERM, then SIGKILL after `timeout`); its data dir stays for the next start."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._close_log()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.azurite", description=__doc__)
    parser.add_argument("--location", type=Path, default=DEFAULT_DATA_DIR, help="data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--blob-port", type=int, default=10000)
    parser.add_argument("--queue-port", type=int, default=10001)
    parser.add_argument("--table-port", type=int, default=10002)
    args = parser.parse_args(argv)
    ports = AzuritePorts(blob=args.blob_port, queue=args.queue_port, table=args.table_port)
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    try:
        with Azurite(args.location, ports, args.host) as azurite:
            print(f"Azurite running (data in {azurite.data_dir}, log {azurite.log_path}). Ctrl+C to stop.")
            print(f"AzureWebJobsStorage={azurite.connection_string}")
            sys.stdout.flush()
            while not stop_requested.wait(1.0):
                if not azurite.running:
                    print(f"Azurite stopped unexpectedly; see {azurite.log_path}", file=sys.stderr)
                    return 1
    except AzuriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
