"""Fixtures: one sandbox per session (reset to the demo seed before each test) and a webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.ghl_sandbox import DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig, SandboxServer, SeedSpec
from tools.ghl_sandbox.config import ContactSeed, FaultConfig
from tools.ghl_sandbox.server import ThreadedServer


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ghl-sandbox-keys")


CONTACT_ID = "ct_demo_rosa"


def _test_seed() -> SeedSpec:
    """The CLI's demo seed plus one patient, seeded so that no ContactCreate webhook precedes a test."""
    seed = DEMO_SEED.model_copy(deep=True)
    patient = ContactSeed.model_validate(
        {"id": CONTACT_ID, "firstName": "Rosa", "lastName": "Flores", "phone": "+51987000111"}
    )
    seed.locations[0].contacts.append(patient)
    return seed


@pytest.fixture(scope="session")
def sandbox_server(key_dir: Path) -> Iterator[SandboxServer]:
    config = SandboxConfig(seed=_test_seed(), key_dir=key_dir, rsa_key_bits=2048, faults=FaultConfig(hang_seconds=3))
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
def contact_id(sandbox: SandboxServer) -> str:
    """A patient of the demo location (Rosa Flores, +51987000111)."""
    return CONTACT_ID


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
    delay_seconds: float = 0.0

    async def endpoint(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        await asyncio.sleep(self.delay_seconds)
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
    _receiver_server.delay_seconds = 0.0
    sandbox.admin.configure("webhooks", {"url": _receiver_server.url, "time_scale": 0.0002, "retry_jitter_seconds": 10})
    return _receiver_server
