"""Fixtures: one Odoo sandbox per session (reset to the demo database before each test) and raw callers of its two
APIs, so the tests see Odoo's envelopes exactly as they travel."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, DEMO_DB, FaultConfig, SandboxConfig, SandboxServer

HANG_S = 2.0


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(faults=FaultConfig(hang_seconds=HANG_S))) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.admin.reset()
    return sandbox_server


@dataclass
class Odoo:
    """Raw JSON-RPC and JSON-2 requests to the sandbox, with the demo API user's key unless told otherwise."""

    http: httpx.Client

    def rpc(self, service: str, method: str, *args: Any) -> dict[str, Any]:
        """The JSON-RPC envelope answered (always HTTP 200 for a call Odoo could read)."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
            "id": 7,
        }
        response = self.http.post("/jsonrpc", json=payload)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["jsonrpc"] == "2.0" and body["id"] == 7
        return body

    def uid(self, login: str = DEMO_API_LOGIN, key: str = DEMO_API_KEY) -> int:
        uid: int = self.rpc("common", "authenticate", DEMO_DB, login, key, {})["result"]
        return uid

    def execute(
        self,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any] | None = None,
        *,
        key: str = DEMO_API_KEY,
        uid: int | None = None,
    ) -> dict[str, Any]:
        return self.rpc("object", "execute_kw", DEMO_DB, uid or self.uid(), key, model, method, args, kwargs or {})

    def json2(
        self, model: str, method: str, *, key: str | None = DEMO_API_KEY, db: str | None = DEMO_DB, **body: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"bearer {key}"} if key else {}
        if db:
            headers["X-Odoo-Database"] = db
        return self.http.post(f"/json/2/{model}/{method}", json=body, headers=headers)


@pytest.fixture
def odoo(sandbox: SandboxServer) -> Iterator[Odoo]:
    with httpx.Client(base_url=sandbox.url, timeout=5) as http:
        yield Odoo(http)


def error_data(envelope: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a JSON-RPC error envelope, after checking the envelope is Odoo's."""
    assert "result" not in envelope
    error = envelope["error"]
    assert error["message"] == "Odoo Server Error" and error["code"] == 200
    data: dict[str, Any] = error["data"]
    assert set(data) == {"name", "message", "arguments", "context", "debug"}
    return data
