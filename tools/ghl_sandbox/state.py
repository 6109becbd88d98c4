"""The sandbox's in-memory world: locations, calendars, contacts, appointments, OAuth grants and counters.

Every handler is a coroutine that mutates this state without awaiting in between, so on uvicorn's single
event loop each request's change is atomic without locks.
"""

from __future__ import annotations

import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .config import ContactSeed, LocationSeed, OAuthClientSeed, OpenHours, SeedSpec

_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int = 20) -> str:
    """An id shaped like GHL's (20 alphanumerics)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def normalize_phone(raw: str, country: str) -> str:
    """E.164 as GHL stores phones; a number that cannot be parsed is kept as its digits."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(raw, country or None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    digits = "".join(ch for ch in raw if ch.isdigit())
    return "+" + digits if digits else ""


def clean_contact_fields(fields: dict[str, Any], country: str) -> dict[str, Any]:
    """Derive what GHL derives on write: E.164 phone, first/last name from `name` and back."""
    out = {k: v for k, v in fields.items() if v is not None}
    if isinstance(out.get("phone"), str) and out["phone"]:
        out["phone"] = normalize_phone(out["phone"], country)
    if "name" in out and not ("firstName" in out or "lastName" in out):
        first, _, last = str(out["name"]).strip().partition(" ")
        out["firstName"], out["lastName"] = first, last
    if "firstName" in out or "lastName" in out:
        out["name"] = f"{out.get('firstName', '')} {out.get('lastName', '')}".strip()
    return out


class Clock:
    """Real time plus an offset the admin API can advance, so expiry is testable without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)


@dataclass
class Location:
    id: str
    name: str
    timezone: str
    company_id: str
    country: str
    address: str
    city: str
    email: str
    phone: str
    allow_duplicate_contact: bool
    duplicate_priority: list[str]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class Calendar:
    id: str
    location_id: str
    name: str
    description: str
    is_active: bool
    group_id: str | None
    team_member_ids: list[str]
    slot_duration_minutes: int
    appointments_per_slot: int
    open_hours: list[OpenHours]


@dataclass
class User:
    id: str
    location_id: str
    name: str
    email: str


@dataclass
class Contact:
    id: str
    location_id: str
    fields: dict[str, Any]
    date_added: datetime
    date_updated: datetime


@dataclass
class Appointment:
    id: str
    location_id: str
    calendar_id: str
    contact_id: str
    title: str
    status: str
    assigned_user_id: str
    users: list[str]
    address: str
    notes: str
    description: str
    start: datetime
    end: datetime
    date_added: datetime
    date_updated: datetime
    source: str
    created_by_user_id: str | None = None
    meeting_location_type: str | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and self.end > start


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]


@dataclass(frozen=True)
class Grant:
    """What an install granted: who, for which location, with which scopes."""

    client_key: str
    location_id: str
    company_id: str
    user_id: str
    scopes: tuple[str, ...]


@dataclass
class AuthCode:
    code: str
    grant: Grant
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float | None  # None: a private-integration token, which never expires


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    expires_at: float
    used: bool = False


@dataclass
class Counters:
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_location: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)  # status code, or "reset" / "timeout"
    rate_limited: int = 0
    rate_limited_by_location: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "by_endpoint": dict(self.by_endpoint),
            "by_location": dict(self.by_location),
            "by_outcome": dict(self.by_outcome),
            "rate_limited": self.rate_limited,
            "rate_limited_by_location": dict(self.rate_limited_by_location),
        }

    def record(self, endpoint: str, location_id: str | None, outcome: str) -> None:
        self.by_endpoint[endpoint] += 1
        self.by_outcome[outcome] += 1
        if location_id:
            self.by_location[location_id] += 1
        if outcome == "429":
            self.rate_limited += 1
            if location_id:
                self.rate_limited_by_location[location_id] += 1


class SandboxState:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.locations: dict[str, Location] = {}
        self.calendars: dict[str, Calendar] = {}
        self.users: dict[str, User] = {}
        self.contacts: dict[str, Contact] = {}
        self.appointments: dict[str, Appointment] = {}
        self.deleted_appointments: dict[str, Appointment] = {}
        self.oauth_clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.consent_location_id: str | None = None
        self.counters = Counters()

    def stamp(self, previous: datetime | None = None) -> datetime:
        """Now, at millisecond precision, strictly after `previous` so each change has a newer dateUpdated."""
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if previous is not None and now <= previous:
            return previous + timedelta(milliseconds=1)
        return now

    def load(self, spec: SeedSpec) -> dict[str, Any]:
        """Add the seeded entities (ids generated where missing) and return their ids.

        Seeding is additive: a location id that exists gets the seed's settings and the listed calendars,
        users, contacts and tokens on top of what it has; an entity id that exists is replaced.
        """
        created: dict[str, Any] = {"locations": []}
        for loc in spec.locations:
            created["locations"].append(self._load_location(loc))
        for client in spec.oauth_clients:
            self._load_client(client)
        if spec.consent_location_id:
            self.consent_location_id = spec.consent_location_id
        elif self.consent_location_id is None and self.locations:
            self.consent_location_id = next(iter(self.locations))
        created["oauth_clients"] = [c.client_id for c in spec.oauth_clients]
        return created

    def _load_location(self, seed: LocationSeed) -> dict[str, Any]:
        ZoneInfo(seed.timezone)  # fail the seed early on an unknown timezone
        loc = Location(
            id=seed.id or new_id(),
            name=seed.name,
            timezone=seed.timezone,
            company_id=seed.company_id,
            country=seed.country,
            address=seed.address,
            city=seed.city,
            email=seed.email,
            phone=seed.phone,
            allow_duplicate_contact=seed.allow_duplicate_contact,
            duplicate_priority=list(seed.duplicate_priority),
        )
        self.locations[loc.id] = loc
        users = [User(u.id or new_id(), loc.id, u.name, u.email) for u in seed.users]
        self.users.update((u.id, u) for u in users)
        calendars = [
            Calendar(
                id=c.id or new_id(),
                location_id=loc.id,
                name=c.name,
                description=c.description,
                is_active=c.is_active,
                group_id=c.group_id,
                team_member_ids=list(c.team_member_ids),
                slot_duration_minutes=c.slot_duration_minutes,
                appointments_per_slot=c.appointments_per_slot,
                open_hours=list(c.open_hours),
            )
            for c in seed.calendars
        ]
        self.calendars.update((c.id, c) for c in calendars)
        contacts = [self._seed_contact(loc.id, c) for c in seed.contacts]
        for pit in seed.private_tokens:
            grant = Grant("private-integration", loc.id, loc.company_id, "", tuple(pit.scopes))
            self.access_tokens[pit.token] = AccessToken(pit.token, grant, None)
        return {
            "id": loc.id,
            "calendars": [c.id for c in calendars],
            "users": [u.id for u in users],
            "contacts": [c.id for c in contacts],
        }

    def _seed_contact(self, location_id: str, seed: ContactSeed) -> Contact:
        now = self.stamp()
        location = self.locations[location_id]
        fields = clean_contact_fields(seed.model_dump(exclude={"id"}, exclude_none=True), location.country)
        contact = Contact(seed.id or new_id(), location_id, fields, now, now)
        self.contacts[contact.id] = contact
        return contact

    def _load_client(self, seed: OAuthClientSeed) -> None:
        self.oauth_clients[seed.client_id] = OAuthClient(
            seed.client_id, seed.client_secret, seed.name, list(seed.redirect_uris)
        )
