"""Fixtures: the app (test database, Azurite, location `loc_demo`) talking to an in-process GHL sandbox, with
both sides seeded directly (sandbox state, SQL through the store) and the app's queues drained in-process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.api.schemas import ReconciliationRunIn
from shared.queues import GHL_TO_RV3, RECONCILE, RV3_TO_GHL
from shared.services import inbound, outbound
from shared.services.reconcile import reports, runs, worker
from shared.store import appointments as appointment_repo
from shared.store import outbox
from shared.work import Work
from sync_core import protocol
from sync_core.hashing import SyncedFields
from tests.fixtures.app import CALENDAR, LOCATION, App
from tests.integration.webhooks import helpers as webhook_helpers
from tools.ghl_sandbox import DEMO_PRIVATE_TOKEN, DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.config import ContactSeed
from tools.ghl_sandbox.state import Appointment as SandboxAppointment

CONTACT = "ct_rosa"
DAY = datetime(2030, 3, 4, 5, tzinfo=UTC)  # 2030-03-04 00:00 in Lima: the window of these tests
SYNCED_AT = datetime(2025, 6, 1, 12, tzinfo=UTC)  # the last sync: before any change the sandbox stamps now
RV3_EDITED_AT = SYNCED_AT + timedelta(days=1)  # an RV3 edit after it (`Sides.sql(synced=...)`)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    config = SandboxConfig(seed=_seed(), key_dir=tmp_path_factory.mktemp("keys"), rsa_key_bits=2048)
    config.rate_limit.max_requests = 100_000
    with SandboxServer(config) as server:
        yield server


def _seed() -> Any:
    location = DEMO_SEED.locations[0].model_copy(
        update={"contacts": [ContactSeed(id=CONTACT, firstName="Rosa", lastName="Flores", phone="987000111")]}
    )
    return DEMO_SEED.model_copy(update={"locations": [location]})


@dataclass
class Sides:
    """Both sides of the sync, seeded directly, and the app's queue workers run by hand."""

    app: App
    sandbox: SandboxServer
    webhooks_seen: int = 0

    # --- seeding --------------------------------------------------------------------------------------------

    def ghl(self, event_id: str, start: datetime, *, minutes: int = 60, **fields: Any) -> SandboxAppointment:
        """An event inside GHL (no webhook: as if the webhook had been missed)."""
        state = self.sandbox.sandbox.state
        values: dict[str, Any] = {
            "id": event_id,
            "location_id": LOCATION,
            "calendar_id": CALENDAR,
            "contact_id": CONTACT,
            "title": "Terapia",
            "status": "confirmed",
            "assigned_user_id": "usr_demo_ana",
            "users": [],
            "address": "",
            "notes": "",
            "description": "",
            "start": start,
            "end": start + timedelta(minutes=minutes),
            "date_added": state.stamp(),
            "date_updated": state.stamp(),
            "source": "booking_widget",
        }
        values.update(fields)
        event = SandboxAppointment(**values)
        state.appointments[event_id] = event
        return event

    def sql(
        self,
        start: datetime,
        *,
        event_id: str | None = None,
        minutes: int = 60,
        synced: dict[str, Any] | None = None,
        in_flight: bool = False,
        **fields: Any,
    ) -> int:
        """A stored appointment. With `event_id` it was synced: its last synced state is its own, with the
        `synced` overrides (what GHL held then), e.g. an RV3 edit that never reached GHL."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "location_id": self.app.location_pk,
            "calendar_id": CALENDAR,
            "contact_id": CONTACT,
            "title": "Terapia",
            "start_at": start,
            "end_at": start + timedelta(minutes=minutes),
            "status": "confirmed",
            "ghl_event_id": event_id,
            "sync_state": "synced" if event_id else "error",
            "source": "rv3",
            "flags": [],
            "created_at": now,
            "updated_at": now,
        }
        values.update(fields)
        if event_id is not None:
            # GHL took the synced state at SYNCED_AT; an RV3 edit that never reached it was made after.
            held = _synced_fields({**values, **(synced or {})})
            facts = protocol.held_by_ghl(held, since=SYNCED_AT, edited_at=RV3_EDITED_AT if synced else SYNCED_AT,
                                         landed=not synced)  # fmt: skip
            values["sync_facts"] = facts.model_dump(mode="json")
        with self.app.db.transaction() as conn:
            appointment_id = appointment_repo.insert(conn, values)
            if in_flight:
                outbox.add(conn, appointment_id=appointment_id, operation="update", version=1, now=now)
        return appointment_id

    # --- running ------------------------------------------------------------------------------------------

    def run(self, **request: Any) -> int:
        """Reconcile 2030-03-04 (Lima) through the `reconcile` queue; the report id."""
        body = {"desde": "2030-03-04", "hasta": "2030-03-04", **request}
        started = runs.start_run(Work.current(), ReconciliationRunIn.model_validate(body))
        drain(RECONCILE, worker.process)
        (report,) = started.reports
        return report.id

    def report(self, report_id: int) -> dict[str, Any]:
        return reports.get_report(Work.current(), report_id).model_dump(mode="json")

    def sync_both_ways(self) -> None:
        """Let the sync workers apply what the queues hold (the normal path fixes take)."""
        for _ in range(5):
            handled = self.deliver_webhooks()
            handled += drain(GHL_TO_RV3, lambda body, **_: inbound.process(body))
            handled += drain(RV3_TO_GHL, lambda body, **_: outbound.process(body))
            if not handled:
                return

    def deliver_webhooks(self) -> int:
        """GHL's webhooks about the app's own writes (their echoes) since the last call, to the inbound worker."""
        deliveries = self.sandbox.admin.webhooks()[self.webhooks_seen :]
        self.webhooks_seen += len(deliveries)
        for delivery in deliveries:
            inbound.process(webhook_helpers.message(delivery["body"]))
        return len(deliveries)


def _synced_fields(values: dict[str, Any]) -> SyncedFields:
    return SyncedFields(
        calendar_id=values["calendar_id"],
        contact_id=values["contact_id"],
        start=values["start_at"],
        end=values["end_at"],
        status=values["status"],
        title=values["title"],
        assigned_user_id=values.get("assigned_user_id"),
    )


def drain(queue: str, handle: Callable[..., Any]) -> int:
    """Hand every visible message of `queue` to `handle`, as the queue trigger would; how many were handled."""
    client = runtime.queues().client(queue)
    handled = 0
    while True:
        batch = list(client.receive_messages(messages_per_page=32, visibility_timeout=60, max_messages=32))
        if not batch:
            return handled
        for message in batch:
            handle(json.loads(message.content), dequeue_count=message.dequeue_count)
            client.delete_message(message)
            handled += 1


@pytest.fixture
def sides(app: App, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sides]:
    sandbox.sandbox.reset()
    for key, value in {
        "GHL_BASE_URL": sandbox.url,
        "GHL_PRIVATE_TOKEN": DEMO_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": LOCATION,
        "GHL_RATE_LIMIT_MAX": "100000",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    for queue in (RECONCILE, GHL_TO_RV3, RV3_TO_GHL):
        runtime.queues().client(queue).clear_messages()
    yield Sides(app, sandbox)
    runtime.reset()
