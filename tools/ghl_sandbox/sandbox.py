"""One running sandbox: its state, live settings, rate limiter, fault injector, outage switch and outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from .config import RUNTIME_SECTIONS, SandboxConfig, SeedSpec
from .errors import GhlError, forbidden_location
from .faults import FaultInjector
from .keys import KeyStore
from .ratelimit import RateLimiter
from .render import appointment_webhook, contact_webhook
from .state import Appointment, Clock, Contact, Grant, SandboxState
from .webhooks import WebhookOutbox


@dataclass
class Outage:
    mode: Literal["503", "reset"]
    until: float  # on the sandbox clock's monotonic scale


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.clock = Clock()
        self.keys = KeyStore(config.key_dir, config.rsa_key_bits)
        self.state = SandboxState(self.clock)
        self.limiter = RateLimiter(self.clock)
        self.faults = FaultInjector(self.config.faults)
        self.outbox = WebhookOutbox(self.clock, self.keys, self.config.webhooks)
        self.outage: Outage | None = None
        self.state.load(self.config.seed)

    def reset(self, seed: SeedSpec | None = None) -> dict[str, Any]:
        """Forget everything and return to the start-up settings, seeded with `seed` or the start-up seed."""
        self.config = self.initial_config.model_copy(deep=True)
        self.clock.offset = 0.0
        self.state = SandboxState(self.clock)
        self.limiter.reset()
        self.faults.configure(self.config.faults)
        self.outbox.reset(self.config.webhooks)
        self.outage = None
        return self.state.load(seed if seed is not None else self.config.seed)

    def set_section(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace one live settings section (rate_limit, auth, behaviour, webhooks, faults)."""
        if name not in RUNTIME_SECTIONS:
            raise KeyError(name)
        section_type = type(getattr(self.config, name))
        section = section_type.model_validate(data)
        setattr(self.config, name, section)
        if name == "faults":
            self.faults.configure(self.config.faults)
        if name == "webhooks":
            self.outbox.config = self.config.webhooks
            self.outbox.wake()
        dumped: dict[str, Any] = section.model_dump(mode="json")
        return dumped

    def not_found(self, message: str) -> GhlError:
        return GhlError(self.config.behaviour.not_found_status, message)

    def outage_mode(self) -> Literal["503", "reset"] | None:
        if self.outage is not None and self.clock.monotonic() >= self.outage.until:
            self.outage = None
        return self.outage.mode if self.outage else None

    def appointment_changed(self, event_type: str, appt: Appointment) -> None:
        self.outbox.enqueue(event_type, appt.location_id, {"appointment": appointment_webhook(self.state, appt)})

    def contact_changed(self, event_type: str, contact: Contact) -> None:
        self.outbox.enqueue(event_type, contact.location_id, contact_webhook(contact))


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def grant_of(request: Request) -> Grant | None:
    """The install the caller's bearer token stands for (None on admin routes, which need no token)."""
    grant: Grant | None = request.scope.get("state", {}).get("grant")
    return grant


def require_location(request: Request, location_id: str) -> None:
    grant = grant_of(request)
    if grant is not None and grant.location_id != location_id:
        raise forbidden_location()
