"""Fixtures: one Odoo sandbox for the session (reset before each test) and clients of it over either protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from shared.odoo import budget_key, rate_limits
from shared.odoo.client import OdooClient
from shared.odoo.transports import Json2Transport, JsonRpcTransport, Transport
from shared.rate_budget import MemoryRateBudget, RateBudget
from sync_core.rate_budget import Reservation
from tests.fixtures.settings import clean_settings
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, FaultConfig, SandboxConfig, SandboxServer

__all__ = ["clean_settings"]

PROTOCOLS = ["jsonrpc", "json2"]
FAST = 200.0  # calls per second: pacing that does not slow the tests down


class RecordingBudget(MemoryRateBudget):
    """A budget for one process that keeps every reservation it handed out, per key."""

    def __init__(self, rate_per_s: float = FAST) -> None:
        super().__init__(rate_limits(rate_per_s))
        self.reservations: list[tuple[str, Reservation]] = []

    def reserve(self, key: str, max_wait_s: float, *, following: int = 0) -> Reservation:
        slot = super().reserve(key, max_wait_s, following=following)
        self.reservations.append((key, slot))
        return slot


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(faults=FaultConfig(hang_seconds=3))) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.admin.reset()
    return sandbox_server


def transport(protocol: str, key: str = DEMO_API_KEY, db: str = DEMO_DB, login: str = DEMO_API_LOGIN) -> Transport:
    if protocol == "json2":
        return Json2Transport(db, SecretStr(key))
    return JsonRpcTransport(db, login, SecretStr(key))


MakeClient = Callable[..., OdooClient]


@pytest.fixture
def make_client(sandbox: SandboxServer) -> Iterator[MakeClient]:
    """`make_client(protocol, key=..., budget=..., url=..., **client options)`: a client of the sandbox."""
    made: list[OdooClient] = []

    def make(
        protocol: str,
        *,
        key: str = DEMO_API_KEY,
        db: str = DEMO_DB,
        budget: RateBudget | None = None,
        url: str | None = None,
        **options: Any,
    ) -> OdooClient:
        client = OdooClient(
            url or sandbox.url,
            transport(protocol, key, db),
            budget or RecordingBudget(),
            budget_key=budget_key(db),
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def client(make_client: MakeClient, protocol: str) -> OdooClient:
    return make_client(protocol)


def orm_calls(sandbox: SandboxServer, method: str | None = None) -> list[dict[str, Any]]:
    """The recorded calls to model methods (not version nor authenticate), optionally of one method."""
    return [c for c in sandbox.admin.calls() if c["model"] and method in (None, c["method"])]
