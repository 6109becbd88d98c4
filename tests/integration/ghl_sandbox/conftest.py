"""Fixtures: one sandbox per session (reset to the demo seed before each test) and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import FaultConfig
from tools.ghl_sandbox.server import ThreadedServer

from .helpers import CONTACTS


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ghl-sandbox-keys")


@pytest.fixture(scope="session")
def sandbox_server(key_dir: Path) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        seed=DEMO_SEED, key_dir=key_dir, rsa_key_bits=2048, faults=FaultConfig(hang_seconds=3)
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.admin.reset()
    return sandbox_server


@pytest.fixture
def ghl(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client of the sandbox's GHL API, authenticated with the demo location's private token."""
    headers = {"Authorization": f"Bearer {DEMO_PRIVATE_TOKEN}"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture
def contact_id(ghl: httpx.Client) -> str:
    body = {
        "locationId": DEMO_LOCATION_ID,
        "firstName": "Rosa",
        "lastName": "Flores",
        "phone": "+51987000111",
    }
    response = ghl.post("/contacts/", json=body, headers=CONTACTS)
    assert response.status_code == 201
    contact_id: str = response.json()["contact"]["id"]
    return contact_id


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST; answers with the queued statuses first, then 200."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    with ThreadedServer(app) as server:
        receiver.url = f"{server.url}/hook"
        yield receiver


@pytest.fixture
def receiver(_receiver_server: WebhookReceiver, sandbox: SandboxServer) -> WebhookReceiver:
    """A receiver the (reset) sandbox sends webhooks to, retrying 429s after ~0.1 s instead of ~10 min."""
    _receiver_server.received.clear()
    _receiver_server.statuses.clear()
    sandbox.admin.configure(
        "webhooks", {"url": _receiver_server.url, "time_scale": 0.0002, "retry_jitter_seconds": 10}
    )
    return _receiver_server
