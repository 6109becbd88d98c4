"""Signed GHL webhooks for the intake benchmarks: bookings made in GHL, the sandbox and location they need, the
host settings that trust their key, and the check that each accepted one was applied exactly once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from tools.bench.stack import Answers, Request
from tools.ghl_sandbox import DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig
from tools.ghl_sandbox.config import DEMO_LOCATION_ID, ContactSeed
from tools.ghl_sandbox.keys import SigningKeys

if TYPE_CHECKING:
    from shared.store.locations import LocationRecord

CALENDAR = "cal_demo_terapia"
CONTACT = "ct_bench_intake"
GHL_TIMEOUT_S = 5.0  # GHL gives up on a delivery after this long (the sandbox's default, as GHL)
FIRST_START = datetime(2031, 1, 6, 13, tzinfo=UTC)  # 08:00 in Lima, far from anything else
WEBHOOK_PATH = "/api/webhooks/ghl"


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    event_id: str
    request: Request


def deliveries(keys: SigningKeys, count: int) -> list[Delivery]:
    """`count` distinct AppointmentCreate webhooks as GHL sends them, signed (Ed25519) over the exact bytes."""
    made = []
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for i in range(count):
        start = FIRST_START + timedelta(minutes=30 * i)
        event_id = f"evbench{uuid.uuid4().hex[:13]}"
        webhook_id = str(uuid.uuid4())
        body = {
            "type": "AppointmentCreate",
            "locationId": DEMO_LOCATION_ID,
            "webhookId": webhook_id,
            "timestamp": stamp,
            "appointment": {
                "id": event_id,
                "calendarId": CALENDAR,
                "contactId": CONTACT,
                "locationId": DEMO_LOCATION_ID,
                "title": "Reserva en línea",
                "appointmentStatus": "confirmed",
                "startTime": start.isoformat(),
                "endTime": (start + timedelta(minutes=30)).isoformat(),
                "dateAdded": stamp,
                "dateUpdated": stamp,
            },
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-GHL-Signature": keys.sign_ed25519(data)}
        made.append(Delivery(webhook_id, event_id, Request(WEBHOOK_PATH, data, headers)))
    return made


def sandbox_config(key_dir: Path) -> SandboxConfig:
    """The demo location, with the contact the bookings are for."""
    config = SandboxConfig(seed=DEMO_SEED.model_copy(deep=True), key_dir=key_dir)
    config.seed.locations[0].contacts = [ContactSeed(id=CONTACT, firstName="Paciente", lastName="Reserva")]
    return config


def ghl_settings(sandbox_url: str, keys: SigningKeys) -> dict[str, str]:
    """The app settings of the RV3 ⇄ GHL wing for a host that takes these webhooks (and verifies them)."""
    public = keys.public_keys()
    return {
        "GHL_BASE_URL": sandbox_url,
        "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": DEMO_LOCATION_ID,
        "GHL_WEBHOOK_VERIFY": "true",
        "GHL_WEBHOOK_ED25519_KEY": public.ed25519_pem,
        "GHL_WEBHOOK_RSA_KEY": public.rsa_pem,
    }


def insert_demo_location(conn: sa.Connection, now: datetime) -> LocationRecord:
    """The sandbox's location and its calendar, as the marketplace install leaves them (in the caller's
    transaction); its `LocationRecord`."""
    from shared.store import locations as location_repo

    location = location_repo.insert_location(
        conn,
        {
            "ghl_location_id": DEMO_LOCATION_ID,
            "name": "Sede Principal",
            "timezone": "America/Lima",
            "is_active": True,
            "default_calendar_id": CALENDAR,
        },
        now,
    )
    location_repo.replace_calendars(
        conn, location.id, [location_repo.CalendarSnapshot(CALENDAR, "Terapia", None, "America/Lima", True)], now
    )
    return location


def seed_location(sql_url: str) -> None:
    """The sandbox's location and its calendar in the sync database."""
    from shared.store.database import Database

    db = Database.connect_url(sql_url)
    with db.transaction() as conn:
        insert_demo_location(conn, datetime.now(UTC))
    db.dispose()


@dataclass
class Applied:
    accepted: int
    inbox_rows: int
    inbox_duplicates: int
    accepted_in_inbox: int
    accepted_applied: int
    appointments_twice: int
    rejected_applied: int
    unanswered_applied: int

    @property
    def exactly_once(self) -> bool:
        """Every accepted webhook has one inbox row and made one appointment; nothing twice, nothing refused."""
        return (
            self.accepted_in_inbox == self.accepted
            and self.accepted_applied == self.accepted
            and self.inbox_duplicates == 0
            and self.appointments_twice == 0
            and self.rejected_applied == 0
        )


def check_applied(engine: sa.Engine, planned: list[Delivery], answers: Answers) -> Applied:
    """Compare the inbox and the appointments with the answers (once the worker has taken every webhook)."""
    from shared.store.schema import appointments, webhook_inbox

    with engine.connect() as conn:
        inbox = conn.execute(sa.select(webhook_inbox.c.webhook_id)).scalars().all()
        events = Counter(
            conn.execute(sa.select(appointments.c.ghl_event_id).where(appointments.c.ghl_event_id.is_not(None)))
            .scalars()
            .all()
        )
    seen = Counter(inbox)
    accepted = [planned[i] for i in answers.accepted]
    applied = {i for i, delivery in enumerate(planned) if events.get(delivery.event_id)}
    return Applied(
        accepted=len(accepted),
        inbox_rows=len(inbox),
        inbox_duplicates=sum(n - 1 for n in seen.values() if n > 1),
        accepted_in_inbox=sum(1 for d in accepted if seen.get(d.webhook_id) == 1),
        accepted_applied=sum(1 for d in accepted if events.get(d.event_id) == 1),
        appointments_twice=sum(1 for n in events.values() if n > 1),
        rejected_applied=len(answers.rejected & applied),
        unanswered_applied=len(answers.unanswered & applied),
    )
