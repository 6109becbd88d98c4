"""Settings of the GHL sandbox and the shape of the data it can be seeded with."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_KEY_DIR = Path(".local/ghl-sandbox/keys")

# Scopes a private-integration token gets when the seed does not list any: everything the product uses.
ALL_SCOPES = (
    "calendars.readonly",
    "calendars/events.readonly",
    "calendars/events.write",
    "contacts.readonly",
    "contacts.write",
    "locations.readonly",
)

WEBHOOK_EVENT_TYPES = (
    "AppointmentCreate",
    "AppointmentUpdate",
    "AppointmentDelete",
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RateLimitConfig(_Section):
    """Per (client app, location) limits; GHL's are 100 requests / 10 s and 200,000 / day."""

    interval_ms: int = Field(10_000, gt=0)
    max_requests: int = Field(100, gt=0)
    daily_limit: int = Field(200_000, gt=0)
    # Length of the "day" window, so daily-limit behaviour can be exercised in a test.
    day_seconds: float = Field(86_400, gt=0)


class AuthConfig(_Section):
    access_token_ttl_seconds: float = Field(86_399, gt=0)
    refresh_token_ttl_seconds: float = Field(365 * 86_400, gt=0)
    code_ttl_seconds: float = Field(600, gt=0)
    # The specs list a single Version value per API; strict mode rejects any other value with 400.
    strict_version: bool = True


class BehaviourConfig(_Section):
    # GHL checks free slots on create/update unless `ignoreFreeSlotValidation` is true.
    validate_free_slots: bool = True
    # The specs document only 400 for unknown ids; 404 is available to test clients against both.
    not_found_status: Literal[400, 404] = 400


class WebhookConfig(_Section):
    url: str | None = None
    paused: bool = False
    signing: Literal["both", "ed25519", "rsa", "none"] = "both"
    bad_signature: bool = False
    timeout_seconds: float = Field(5.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_interval_seconds: float = Field(600, ge=0)
    retry_jitter_seconds: float = Field(60, ge=0)
    # Multiplies every retry delay: 1.0 is GHL's real pace, 0.0002 makes a 10-minute wait 0.12 s.
    time_scale: float = Field(1.0, ge=0)
    events: list[str] = Field(default_factory=lambda: list(WEBHOOK_EVENT_TYPES))


class FaultRule(_Section):
    """Probabilities (0..1) of each failure for one endpoint, or for all of them."""

    rate_limit: float = Field(0.0, ge=0, le=1)
    server_error: float = Field(0.0, ge=0, le=1)
    server_error_statuses: list[Literal[500, 502, 503]] = [500, 502, 503]
    latency_ms: float = Field(0.0, ge=0)
    latency_jitter_ms: float = Field(0.0, ge=0)
    timeout: float = Field(0.0, ge=0, le=1)
    reset: float = Field(0.0, ge=0, le=1)
    # The write is applied to state, then the client gets `applied_then_failed_outcome` instead of the answer.
    applied_then_failed: float = Field(0.0, ge=0, le=1)
    applied_then_failed_outcome: Literal["500", "502", "503", "reset", "timeout"] = "500"
    # GHL refuses the request as invalid (400 with `FaultConfig.rejected_message`), as it does a booking it will
    # not take: what a client must show to staff rather than retry.
    rejected: float = Field(0.0, ge=0, le=1)


class FaultConfig(_Section):
    seed: int = 0
    # How long a "timeout" fault holds the request when the client does not give up first.
    hang_seconds: float = Field(30.0, gt=0)
    rejected_message: str = "The slot you have selected is no longer available."
    all_endpoints: FaultRule = Field(default_factory=FaultRule)
    # Keyed by "METHOD /spec/path", e.g. "POST /calendars/events/appointments"; replaces `all_endpoints`.
    endpoints: dict[str, FaultRule] = Field(default_factory=dict)


class OpenHours(_Section):
    days_of_week: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6])  # 0 = Sunday, as GHL
    open: str = "08:00"
    close: str = "20:00"


class CalendarSeed(_Section):
    id: str | None = None
    name: str
    description: str = ""
    is_active: bool = True
    group_id: str | None = None
    team_member_ids: list[str] = Field(default_factory=list)
    slot_duration_minutes: int = Field(60, gt=0)
    appointments_per_slot: int = Field(1, gt=0)
    open_hours: list[OpenHours] = Field(default_factory=list)


class UserSeed(_Section):
    id: str | None = None
    name: str
    email: str = ""


class PrivateTokenSeed(_Section):
    token: str
    scopes: list[str] = Field(default_factory=lambda: list(ALL_SCOPES))


class ContactSeed(BaseModel):
    """A contact in GHL's own field names (firstName, email, phone, tags, ...)."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None


class LocationSeed(_Section):
    id: str | None = None
    name: str
    timezone: str = "America/Lima"
    company_id: str = "comp_demo"
    country: str = "PE"
    address: str = ""
    city: str = ""
    email: str = ""
    phone: str = ""
    allow_duplicate_contact: bool = False
    duplicate_priority: list[Literal["email", "phone"]] = ["email", "phone"]
    calendars: list[CalendarSeed] = Field(default_factory=list)
    users: list[UserSeed] = Field(default_factory=list)
    contacts: list[ContactSeed] = Field(default_factory=list)
    private_tokens: list[PrivateTokenSeed] = Field(default_factory=list)


class OAuthClientSeed(_Section):
    client_id: str
    client_secret: str
    name: str = "Sandbox app"
    # Empty: any redirect_uri is accepted, as when the marketplace app lists the caller's URL.
    redirect_uris: list[str] = Field(default_factory=list)


class SeedSpec(_Section):
    locations: list[LocationSeed] = Field(default_factory=list)
    oauth_clients: list[OAuthClientSeed] = Field(default_factory=list)
    # Location the fake consent page installs the app on; default: the first seeded location.
    consent_location_id: str | None = None


class SandboxConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8090
    key_dir: Path = DEFAULT_KEY_DIR
    rsa_key_bits: int = Field(4096, ge=2048)
    seed: SeedSpec = Field(default_factory=SeedSpec)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)

    @classmethod
    def from_file(cls, path: Path) -> SandboxConfig:
        """Read a JSON or TOML file with the same keys as this model."""
        raw = path.read_bytes()
        data: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        return cls.model_validate(data)


RUNTIME_SECTIONS = ("rate_limit", "auth", "behaviour", "webhooks", "faults")

DEMO_LOCATION_ID = "loc_demo"
DEMO_PRIVATE_TOKEN = "pit-sandbox-demo-0000-0000-000000000000"
DEMO_CLIENT_ID = "sandbox-client-id"
DEMO_CLIENT_SECRET = "sandbox-client-secret"

_CLINIC_HOURS = [OpenHours(days_of_week=[1, 2, 3, 4, 5, 6], open="08:00", close="20:00")]

DEMO_SEED = SeedSpec(
    locations=[
        LocationSeed(
            id=DEMO_LOCATION_ID,
            name="Reflexo Perú - Sede Principal",
            timezone="America/Lima",
            address="Av. Arequipa 1234",
            city="Lima",
            email="sede.principal@reflexo.example",
            phone="+5115550100",
            users=[
                UserSeed(id="usr_demo_ana", name="Ana Quispe", email="ana.quispe@reflexo.example"),
                UserSeed(id="usr_demo_luis", name="Luis Huamán", email="luis.huaman@reflexo.example"),
            ],
            calendars=[
                CalendarSeed(
                    id="cal_demo_terapia",
                    name="Terapia física",
                    description="Sesiones de terapia física",
                    team_member_ids=["usr_demo_ana"],
                    open_hours=_CLINIC_HOURS,
                ),
                CalendarSeed(
                    id="cal_demo_reflexologia",
                    name="Reflexología",
                    description="Sesiones de reflexología",
                    team_member_ids=["usr_demo_luis"],
                    open_hours=_CLINIC_HOURS,
                ),
                CalendarSeed(
                    id="cal_demo_inactivo",
                    name="Evaluación inicial (inactivo)",
                    is_active=False,
                    team_member_ids=["usr_demo_ana"],
                ),
            ],
            private_tokens=[PrivateTokenSeed(token=DEMO_PRIVATE_TOKEN)],
        )
    ],
    oauth_clients=[OAuthClientSeed(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)],
)
