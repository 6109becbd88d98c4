"""Fixtures for the local Functions host tests: Azurite for the session and sample-app hosts per test."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.azurite import Azurite

from .harness import AppEnvironment, HostProcess, StartHost


@pytest.fixture
def app_env(azurite: Azurite, tmp_path: Path) -> AppEnvironment:
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    return AppEnvironment(connection_string=azurite.connection_string, record_dir=record_dir)


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[StartHost]:
    """Start sample-app hosts; whatever is still running at the end of the test is killed."""
    hosts: list[HostProcess] = []

    def start(env: AppEnvironment, message_lease: float = 600.0) -> HostProcess:
        host = HostProcess(env, tmp_path / f"host-{len(hosts)}.log", message_lease)
        hosts.append(host)
        return host.start()

    yield start
    for host in hosts:
        host.ensure_stopped()
