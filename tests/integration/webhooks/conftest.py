"""Fixtures: the app trusting a test key pair, an empty `ghl-to-rv3` queue, and a fake GHL for contacts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from shared import runtime
from shared.ghl.errors import NotFound
from shared.ghl.models import Contact
from shared.queues import GHL_TO_RV3, POISON_SUFFIX, RV3_TO_GHL
from tests.fixtures.app import LOCATION, App
from tools.ghl_sandbox.keys import SigningKeys

from .helpers import CONTACT


@pytest.fixture(scope="session")
def signing_keys() -> SigningKeys:
    """The key pairs "GHL" signs with in these tests (the app is configured with their public halves)."""
    return SigningKeys.generate(rsa_bits=2048)


@dataclass
class FakeGhl:
    """GHL's contacts endpoint as the worker uses it: records calls, can be told to fail."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    error: Exception | None = None

    def get_contact(self, location_id: str, contact_id: str) -> Contact:
        self.calls.append(contact_id)
        if self.error is not None:
            raise self.error
        if contact_id not in self.contacts:
            raise NotFound("contact not found", status=400)
        return self.contacts[contact_id]


@pytest.fixture
def ghl(monkeypatch: pytest.MonkeyPatch) -> FakeGhl:
    fake = FakeGhl(
        contacts={
            CONTACT: Contact(
                id=CONTACT,
                locationId=LOCATION,
                firstName="Rosa",
                lastName="Flores",
                phone="987 000 111",
                email="Rosa@Example.PE",
            )
        }
    )
    monkeypatch.setattr(runtime, "ghl", lambda: fake, raising=False)
    return fake


@pytest.fixture
def webhook_app(app: App, signing_keys: SigningKeys, ghl: FakeGhl, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The app (test database, Azurite, location `loc_demo`) verifying webhooks with the test keys."""
    public = signing_keys.public_keys()
    monkeypatch.setenv("GHL_WEBHOOK_ED25519_KEY", public.ed25519_pem)
    monkeypatch.setenv("GHL_WEBHOOK_RSA_KEY", public.rsa_pem)
    runtime.reset()
    for queue in (GHL_TO_RV3, RV3_TO_GHL, GHL_TO_RV3 + POISON_SUFFIX):
        runtime.queues().client(queue).clear_messages()
    yield app
    runtime.reset()
