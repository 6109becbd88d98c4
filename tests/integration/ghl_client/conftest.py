"""Fixtures: Azurite and the GHL sandbox for the session, and GHL clients, tables and settings per test."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.data.tables import TableClient, TableServiceClient
from pydantic import SecretStr

from shared.calls import CallRecord
from shared.ghl.client import GhlClient, TokenProvider
from shared.ghl.oauth import OAuthApp
from shared.ghl.rate_budget import MemoryRateBudget, RateBudget
from shared.ghl.tokens import PrivateTokenProvider
from tests.fixtures.settings import clean_settings
from tools.ghl_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_LOCATION_ID,
    DEMO_PRIVATE_TOKEN,
    DEMO_SEED,
    SandboxConfig,
    SandboxServer,
)
from tools.ghl_sandbox.config import FaultConfig
from tools.ports import free_ports

__all__ = ["clean_settings"]

AZURITE_BIN = Path("/work/main/node_modules/.bin/azurite")
# Azurite's fixed, publicly documented development key: it only ever unlocks the local emulator.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SANDBOX_HANG_S = 2.0
REDIRECT = "http://app.test/api/ghl/oauth/callback"

T = TypeVar("T")


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def eventually(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """The first truthy value `probe` returns, polling for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


@dataclass
class Azurite:
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT};"
        )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session on free ports and a temporary data dir (same name as the shared fixture)."""
    if not AZURITE_BIN.exists():
        pytest.skip(f"Azurite not installed at {AZURITE_BIN}")
    data = tmp_path_factory.mktemp("azurite")
    emulator = Azurite(*free_ports(3))
    command = [
        str(AZURITE_BIN), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--location", str(data),
        "--blobPort", str(emulator.blob_port), "--queuePort", str(emulator.queue_port),
        "--tablePort", str(emulator.table_port),
    ]  # fmt: skip
    with (data / "azurite.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (_listening(emulator.table_port) and _listening(emulator.queue_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Azurite did not start: {(data / 'azurite.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def new_table(azurite: Azurite) -> Iterator[Callable[[], TableClient]]:
    """Fresh, empty tables for one test (a name per call), deleted afterwards."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    made: list[TableClient] = []

    def make() -> TableClient:
        table = service.create_table(f"t{uuid.uuid4().hex[:20]}")
        made.append(table)
        return table

    yield make
    for table in made:
        table.delete_table()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        seed=DEMO_SEED,
        key_dir=tmp_path_factory.mktemp("sandbox-keys"),
        rsa_key_bits=2048,
        faults=FaultConfig(hang_seconds=SANDBOX_HANG_S),
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox back at its start-up settings and demo seed."""
    sandbox_server.admin.reset()
    return sandbox_server


@pytest.fixture
def oauth_app(sandbox: SandboxServer) -> Iterator[OAuthApp]:
    """The sandbox's demo marketplace app."""
    app = OAuthApp(
        base_url=sandbox.url,
        marketplace_url=sandbox.url,
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretStr(DEMO_CLIENT_SECRET),
    )
    yield app
    app.close()


def consent(app: OAuthApp, redirect_uri: str = REDIRECT) -> str:
    """What the clinic admin's browser does on GHL's consent page: approve, come back with a code."""
    answer = httpx.get(app.authorize_url("any-state", redirect_uri), timeout=5)
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


@dataclass
class Calls:
    """What the client reported to its `on_call` hook."""

    records: list[CallRecord]

    def __call__(self, record: CallRecord) -> None:
        self.records.append(record)

    @property
    def statuses(self) -> list[int | None]:
        return [r.status_code for r in self.records]


@pytest.fixture
def calls() -> Calls:
    return Calls([])


@pytest.fixture
def make_client(sandbox: SandboxServer, calls: Calls) -> Iterator[Callable[..., GhlClient]]:
    """A client of the sandbox with the demo private token; keyword arguments override the defaults."""
    made: list[GhlClient] = []

    def make(
        *,
        budget: RateBudget | None = None,
        token: str = DEMO_PRIVATE_TOKEN,
        tokens: TokenProvider | None = None,
        base_url: str | None = None,
        **options: object,
    ) -> GhlClient:
        client = GhlClient(
            base_url or sandbox.url,
            tokens or PrivateTokenProvider(SecretStr(token), DEMO_LOCATION_ID),
            budget or MemoryRateBudget(),
            on_call=calls,
            **options,  # type: ignore[arg-type]
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
