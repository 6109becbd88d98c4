"""Fixtures: RV3's own database (`front_desk`, on SQLite and MariaDB: tests.fixtures.rv3_schema), the sync store,
and GHL and the queue in memory.

`world` is the whole sync in-process: the capture run, the `rv3-to-ghl` and `ghl-to-rv3` workers, GHL as an
in-memory fake that records every request body. Every statement on RV3's tables is also compiled for Azure SQL.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared import runtime
from shared.ghl.errors import NotFound
from shared.ghl.models import Contact, Event, Location
from shared.queues import RV3_TO_GHL
from shared.services import inbound, outbound, rv3_capture
from shared.services.webhook_intake import to_message
from shared.store.database import Database
from shared.store.schema import appointments
from shared.work import Work
from sync_core.webhooks import parse_webhook
from tests.fixtures.app import CALENDAR, LOCATION, App, seed_location
from tests.fixtures.rv3_schema import FrontDesk

# --- GHL and the queue, in memory ---


@dataclass
class FakeQueues:
    sent: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def send(self, queue: str, message: dict[str, Any], *, delay_s: float = 0) -> None:
        self.sent[queue].append(message)

    def take(self, queue: str) -> list[dict[str, Any]]:
        messages, self.sent[queue] = self.sent[queue], []
        return messages


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeGhl:
    """GHL as the workers call it: contacts matched by phone or email, appointments, every request recorded."""

    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    creates: int = 0

    def _contact(self, data: dict[str, Any]) -> Contact:
        return Contact(**data)

    @contextlib.contextmanager
    def calls_in_a_row(self, location_id: str, calls: int) -> Iterator[None]:
        yield  # no rate budget here

    def upsert_contact(self, location_id: str, body: dict[str, Any]) -> tuple[Contact, bool]:
        self.requests.append(("upsert_contact", dict(body)))
        for contact in self.contacts.values():
            if (body.get("phone") and contact.get("phone") == body.get("phone")) or (
                body.get("email") and contact.get("email") == body.get("email")
            ):
                contact.update({k: v for k, v in body.items() if k != "locationId"})
                return self._contact(contact), False
        contact_id = f"ct_{len(self.contacts) + 1}"
        self.contacts[contact_id] = {"id": contact_id, **body}
        return self._contact(self.contacts[contact_id]), True

    def update_contact(self, location_id: str, contact_id: str, body: dict[str, Any]) -> Contact:
        self.requests.append(("update_contact", dict(body)))
        if contact_id not in self.contacts:
            raise NotFound("contact not found")
        self.contacts[contact_id].update(body)
        return self._contact(self.contacts[contact_id])

    def get_contact(self, location_id: str, contact_id: str) -> Contact:
        if contact_id not in self.contacts:
            raise NotFound("contact not found")
        return self._contact(self.contacts[contact_id])

    def create_appointment(self, location_id: str, body: dict[str, Any]) -> Event:
        self.requests.append(("create_appointment", dict(body)))
        self.creates += 1
        event_id = f"ev_{len(self.events) + 1}"
        self.events[event_id] = {"id": event_id, "locationId": location_id, **body, "dateUpdated": _stamp()}
        return Event(**self.events[event_id])

    def update_appointment(self, location_id: str, event_id: str, body: dict[str, Any]) -> Event:
        self.requests.append(("update_appointment", dict(body)))
        if event_id not in self.events:
            raise NotFound("event not found")
        self.events[event_id].update(body, dateUpdated=_stamp())
        return Event(**self.events[event_id])

    def cancel_appointment(self, location_id: str, event_id: str) -> Event:
        return self.update_appointment(location_id, event_id, {"appointmentStatus": "cancelled"})

    def list_events(self, location_id: str, *, calendar_id: str, start: datetime, end: datetime) -> list[Event]:
        return [Event(**e) for e in self.events.values() if e["calendarId"] == calendar_id]

    def get_location(self, location_id: str) -> Location:
        return Location(id=location_id, name="Sede", timezone="America/Lima")

    def change(self, event_id: str, **fields: Any) -> dict[str, Any]:
        """An edit made inside GHL (its UI, the patient rescheduling): the event as GHL now has it."""
        self.events[event_id].update(fields, dateUpdated=_stamp())
        return self.events[event_id]

    def book(self, contact: dict[str, Any], start: str, **fields: Any) -> dict[str, Any]:
        """A one-hour booking made in GHL (the online widget), for a contact GHL has or creates."""
        self.contacts.setdefault(contact["id"], contact)
        event_id = f"ev_{len(self.events) + 1}"
        self.events[event_id] = {
            "id": event_id,
            "locationId": LOCATION,
            "calendarId": CALENDAR,
            "contactId": contact["id"],
            "title": "Reserva web",
            "appointmentStatus": "confirmed",
            "assignedUserId": "usr_demo_ana",
            "startTime": start,
            "endTime": (datetime.fromisoformat(start) + timedelta(hours=1)).isoformat(),
            "dateAdded": _stamp(),
            "dateUpdated": _stamp(),
            **fields,
        }
        return self.events[event_id]


# --- the whole sync, in-process ---


@dataclass
class World:
    db: Database
    desk: FrontDesk
    ghl: FakeGhl
    queues: FakeQueues
    location_pk: int
    rv3_url: str

    def capture(self) -> rv3_capture.CaptureReport:
        return rv3_capture.run(Work.current())

    def deliver(self) -> int:
        """Run the `rv3-to-ghl` worker until its queue is empty; how many messages it handled."""
        handled = 0
        while messages := self.queues.take(RV3_TO_GHL):
            for message in messages:
                outbound.process(message)
                handled += 1
        return handled

    def sync(self) -> rv3_capture.CaptureReport:
        report = self.capture()
        self.deliver()
        return report

    def webhook(self, event_type: str, event: dict[str, Any]) -> inbound.Outcome:
        """GHL's webhook about `event`, through the intake and the `ghl-to-rv3` worker."""
        body = {
            "type": event_type,
            "locationId": LOCATION,
            "webhookId": str(uuid.uuid4()),
            "timestamp": _stamp(),
            "appointment": event,
        }
        raw = json.dumps(body, ensure_ascii=False).encode()
        return inbound.process(to_message(raw, parse_webhook(raw), datetime.now(UTC)).model_dump(mode="json"))

    def sync_row(self, rv3_id: int) -> sa.Row[Any] | None:
        with self.db.transaction() as conn:
            return conn.execute(sa.select(appointments).where(appointments.c.rv3_appointment_id == str(rv3_id))).first()

    def ghl_event(self, rv3_id: int) -> dict[str, Any] | None:
        row = self.sync_row(rv3_id)
        return self.ghl.events.get(row.ghl_event_id) if row is not None and row.ghl_event_id else None

    def app(self) -> App:
        return App(db=self.db, location_pk=self.location_pk)


@pytest.fixture(scope="session")
def migrated_sync_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty sync database at the current migration, copied by each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("sync-template") / "sync.db"
    Database.connect_url(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def world(
    front_desk: FrontDesk, rv3_url: str, migrated_sync_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The sync of the demo location with RV3's database, GHL and the queue faked in memory."""
    shutil.copyfile(migrated_sync_db, tmp_path / "sync.db")
    sql_url = f"sqlite:///{tmp_path / 'sync.db'}"
    env = {
        "SQL_URL": sql_url,
        "RV3_SQL_URL": rv3_url,
        "GHL_BASE_URL": "http://127.0.0.1:9",
        "GHL_PRIVATE_TOKEN": "pit-test",
        "GHL_LOCATION_ID": LOCATION,
        "GHL_WEBHOOK_VERIFY": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    ghl, queues = FakeGhl(), FakeQueues()
    monkeypatch.setattr(runtime, "ghl", lambda: ghl)
    monkeypatch.setattr(runtime, "queues", lambda: queues)
    db = runtime.database()
    yield World(db, front_desk, ghl, queues, seed_location(db), rv3_url)
    runtime.reset()


DAY = date(2030, 3, 12)
TEN = time(10, 0)
