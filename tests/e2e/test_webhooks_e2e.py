"""GHL → RV3 end to end over HTTP: the GHL sandbox signs and sends webhooks to the app on the local Functions
host (Azurite queues, SQLite), whose queue worker applies them; storage outages, replays and echoes included."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from azure.storage.queue import QueueServiceClient

from shared.queues import GHL_TO_RV3
from shared.store.database import Database
from shared.store.schema import appointments, contacts, outbox, webhook_inbox
from tests.fixtures.app import CALENDAR, LOCATION, seed_location
from tests.fixtures.stack import Stack, clear_queues, free_port, running, stack_env
from tests.integration.webhooks.helpers import appointment_body, raw
from tools.azurite import Azurite
from tools.ghl_sandbox import DEMO_SEED, SandboxConfig, SandboxServer
from tools.ghl_sandbox.keys import KeyStore, SigningKeys

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

T = TypeVar("T")


@dataclass
class Hooks:
    """The stack seen from the webhook side: GHL (the sandbox) signing and sending, SQL receiving."""

    stack: Stack
    signer: SigningKeys
    contact_id: str
    queues: QueueServiceClient

    @property
    def sandbox_admin(self) -> Any:
        return self.stack.sandbox.admin

    def wait(self, probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
        return self.stack.wait_until(probe, timeout=timeout, what=what)

    def configure_webhooks(self, **changes: Any) -> None:
        """Change the sandbox's webhook settings (the section is replaced: the target URL is kept)."""
        url = f"{self.stack.host.base_url}/api/webhooks/ghl"
        self.sandbox_admin.configure("webhooks", {"url": url, "time_scale": 0.0002, **changes})

    def post(self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        data = body if isinstance(body, bytes) else raw(body)
        return httpx.post(f"{self.stack.host.base_url}/api/webhooks/ghl", content=data, headers=headers, timeout=10)

    def post_signed(self, body: dict[str, Any]) -> httpx.Response:
        data = raw(body)
        return self.post(data, {"X-GHL-Signature": self.signer.sign_ed25519(data)})

    def rows(self, table: sa.Table, *where: Any) -> list[sa.Row[Any]]:
        with self.stack.db.transaction() as conn:
            return list(conn.execute(sa.select(table).where(*where).order_by(table.c.id)))

    def appointment(self, event_id: str) -> sa.Row[Any] | None:
        found = self.rows(appointments, appointments.c.ghl_event_id == event_id)
        return found[0] if found else None

    def inbox_entry(self, webhook_id: str) -> sa.Row[Any] | None:
        found = self.rows(webhook_inbox, webhook_inbox.c.webhook_id == webhook_id)
        return found[0] if found else None

    def queue_drained(self) -> bool:
        """Nothing waiting or in flight in `ghl-to-rv3`: every webhook enqueued so far was handled."""
        properties = self.queues.get_queue_client(GHL_TO_RV3).get_queue_properties()
        return (properties.approximate_message_count or 0) == 0

    def delivery_of(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        """The sandbox's latest webhook delivery of that type for that GHL event."""
        found = [
            d for d in self.sandbox_admin.webhooks()
            if d["type"] == event_type and d["body"].get("appointment", {}).get("id") == event_id
        ]  # fmt: skip
        return found[-1] if found else None

    def book_in_ghl(self, start: str, end: str, **fields: Any) -> str:
        """A booking made inside GHL (its widget), for the patient; returns GHL's event id."""
        booked = self.sandbox_admin.simulate_booking(
            locationId=LOCATION, calendarId=CALENDAR, contactId=self.contact_id, startTime=start, endTime=end,
            title="Terapia - Rosa Flores", **fields,
        )  # fmt: skip
        return str(booked["id"])

    def body(self, event_type: str = "AppointmentCreate", **fields: Any) -> dict[str, Any]:
        """A webhook body for the patient, as GHL would send it."""
        return appointment_body(event_type, contactId=self.contact_id, **fields)


@pytest.fixture(scope="module")
def webhook_stack(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The E2E stack (see tests/fixtures/stack.py) started once for this module: a host start costs ~3 s.

    Tests share its database and tell their data apart by their own event ids.
    """
    tmp = tmp_path_factory.mktemp("webhooks-e2e")
    clear_queues(azurite)
    port = free_port()
    config = SandboxConfig(seed=DEMO_SEED, key_dir=tmp / "keys", rsa_key_bits=2048)
    config.webhooks.url = f"http://127.0.0.1:{port}/api/webhooks/ghl"
    config.webhooks.time_scale = 0.0002
    with SandboxServer(config) as sandbox:
        sql_url = f"sqlite:///{tmp / 'sync.db'}"
        env = stack_env(azurite, sandbox, sql_url)
        stack = Stack(sandbox=sandbox, azurite=azurite, db=Database.connect_url(sql_url), env=env, tmp=tmp)
        seed_location(stack.db)
        with running(stack, port):
            yield stack


@pytest.fixture
def hooks(webhook_stack: Stack) -> Hooks:
    """The stack with location `loc_demo` configured in SQL and one patient (Rosa Flores) in GHL only."""
    sandbox = webhook_stack.sandbox
    sandbox.admin.reset()
    rosa = sandbox.admin.simulate_contact_create(
        locationId=LOCATION, firstName="Rosa", lastName="Flores", phone="+51987000111"
    )
    return Hooks(
        stack=webhook_stack,
        signer=KeyStore(sandbox.key_dir, sandbox.sandbox.config.rsa_key_bits).signing,
        contact_id=str(rosa["id"]),
        queues=QueueServiceClient.from_connection_string(webhook_stack.azurite.connection_string),
    )


def test_bookings_changes_and_deletions_made_in_ghl_reach_rv3(hooks: Hooks) -> None:
    event_id = hooks.book_in_ghl("2030-04-02T10:00:00-05:00", "2030-04-02T11:00:00-05:00", appointmentStatus="new")
    created = hooks.wait(lambda: hooks.appointment(event_id), "the booking in SQL")
    assert (created.source, created.status, created.sync_state) == ("ghl", "scheduled", "synced")
    assert created.start_at.hour == 15  # 10:00 Lima, stored in UTC
    [patient] = hooks.rows(contacts, contacts.c.ghl_contact_id == hooks.contact_id)
    assert (patient.full_name, patient.phone) == ("Rosa Flores", "+51987000111")  # read from GHL

    hooks.sandbox_admin.simulate_appointment_edit(
        event_id, startTime="2030-04-02T12:00:00-05:00", endTime="2030-04-02T13:00:00-05:00"
    )
    moved = hooks.wait(lambda: _changed(hooks.appointment(event_id), created), "the rescheduling in SQL")
    assert (moved.start_at.hour, moved.version) == (17, 2)

    hooks.sandbox_admin.simulate_appointment_delete(event_id)
    deleted = hooks.wait(lambda: _changed(hooks.appointment(event_id), moved), "the deletion in SQL")
    assert (deleted.status, deleted.flags, deleted.version) == ("cancelled", ["deleted_in_ghl"], 3)


def _changed(row: sa.Row[Any] | None, before: sa.Row[Any]) -> sa.Row[Any] | None:
    return row if row is not None and row.version != before.version else None


@pytest.mark.parametrize("scheme", ["ed25519", "rsa"])
def test_each_signature_scheme_is_verified(hooks: Hooks, scheme: str) -> None:
    hooks.configure_webhooks(signing=scheme)
    event_id = hooks.book_in_ghl("2030-04-03T10:00:00-05:00", "2030-04-03T11:00:00-05:00")
    hooks.wait(lambda: hooks.appointment(event_id), f"a booking signed with {scheme} in SQL")
    delivery = hooks.delivery_of("AppointmentCreate", event_id)
    assert delivery is not None and [a["status"] for a in delivery["attempts"]] == [200]


def test_a_webhook_delivered_three_times_is_applied_once(hooks: Hooks) -> None:
    event_id = f"ev_{uuid.uuid4().hex[:10]}"
    body = hooks.body(id=event_id, startTime="2030-04-04T10:00:00-05:00", endTime="2030-04-04T11:00:00-05:00")
    assert [hooks.post_signed(body).status_code for _ in range(3)] == [200, 200, 200]
    hooks.wait(lambda: hooks.appointment(event_id) and hooks.queue_drained(), "the three deliveries to be handled")
    [row] = hooks.rows(appointments, appointments.c.ghl_event_id == event_id)
    assert row.version == 1
    assert len(hooks.rows(webhook_inbox, webhook_inbox.c.ghl_event_id == event_id)) == 1


def test_an_older_update_arriving_after_a_newer_one_changes_nothing(hooks: Hooks) -> None:
    event_id = f"ev_{uuid.uuid4().hex[:10]}"
    created = hooks.body(id=event_id, startTime="2030-04-07T10:00:00-05:00", endTime="2030-04-07T11:00:00-05:00",
                         dateUpdated="2030-04-01T10:00:00Z")  # fmt: skip
    newer = hooks.body("AppointmentUpdate", id=event_id, startTime="2030-04-07T12:00:00-05:00",
                       endTime="2030-04-07T13:00:00-05:00", dateUpdated="2030-04-01T12:00:00Z")  # fmt: skip
    older = hooks.body("AppointmentUpdate", id=event_id, startTime="2030-04-07T09:00:00-05:00",
                       endTime="2030-04-07T10:00:00-05:00", dateUpdated="2030-04-01T11:00:00Z")  # fmt: skip
    for body in (created, newer):  # one at a time: the worker takes a batch of messages in parallel
        assert hooks.post_signed(body).status_code == 200
        hooks.wait(partial(hooks.inbox_entry, str(body["webhookId"])), f"the {body['type']}")
    assert hooks.post_signed(older).status_code == 200
    entry = hooks.wait(lambda: hooks.inbox_entry(older["webhookId"]), "the older update")
    assert entry.outcome == "stale"
    row = hooks.appointment(event_id)
    assert row is not None and (row.start_at.hour, row.version) == (17, 2)


def test_unsigned_or_tampered_webhooks_get_401_and_never_reach_rv3(hooks: Hooks) -> None:
    refused = [hooks.body(id=f"ev_{uuid.uuid4().hex[:10]}") for _ in range(3)]
    assert hooks.post(refused[0]).status_code == 401
    for body, scheme in ((refused[1], "ed25519"), (refused[2], "rsa")):
        data = raw(body)
        signature = hooks.signer.sign_ed25519(data) if scheme == "ed25519" else hooks.signer.sign_rsa(data)
        header = "X-GHL-Signature" if scheme == "ed25519" else "x-wh-signature"
        tampered = data.replace(b"Primera sesi", b"Segunda sesi")
        assert hooks.post(tampered, {header: signature}).status_code == 401
    marker = hooks.body(id=f"ev_{uuid.uuid4().hex[:10]}")
    assert hooks.post_signed(marker).status_code == 200
    hooks.wait(lambda: hooks.inbox_entry(marker["webhookId"]) and hooks.queue_drained(), "the signed marker")
    for body in refused:
        assert hooks.inbox_entry(body["webhookId"]) is None
        assert hooks.appointment(body["appointment"]["id"]) is None


def test_with_storage_stopped_ghl_gets_429_and_its_redelivery_is_applied_once(hooks: Hooks) -> None:
    # GHL's ~10-minute redelivery takes ~2.4 s here: room for Azurite to restart between two attempts.
    hooks.configure_webhooks(time_scale=0.004, retry_jitter_seconds=10)
    event_id = hooks.book_in_ghl("2030-04-08T10:00:00-05:00", "2030-04-08T11:00:00-05:00")
    before = hooks.wait(lambda: hooks.appointment(event_id), "the booking")
    storage = hooks.stack.azurite
    storage.stop()
    try:
        hooks.sandbox_admin.simulate_appointment_edit(
            event_id, startTime="2030-04-08T15:00:00-05:00", endTime="2030-04-08T16:00:00-05:00"
        )
        hooks.wait(
            lambda: _answered(hooks.delivery_of("AppointmentUpdate", event_id)), "the answer to GHL's first delivery"
        )
    finally:
        storage.start()
    delivery = hooks.wait(lambda: _delivered(hooks.delivery_of("AppointmentUpdate", event_id)), "GHL's redelivery")
    statuses = [attempt["status"] for attempt in delivery["attempts"]]
    assert statuses[0] == 429 and statuses[-1] == 200 and set(statuses) == {429, 200}
    after = hooks.wait(lambda: _changed(hooks.appointment(event_id), before), "the redelivered change in SQL")
    assert (after.start_at.hour, after.version) == (20, before.version + 1)
    assert hooks.inbox_entry(delivery["webhookId"]) is not None


def _answered(delivery: dict[str, Any] | None) -> dict[str, Any] | None:
    """The delivery once GHL's first attempt has its answer (the sandbox records an attempt when it starts)."""
    if delivery is None or not delivery["attempts"]:
        return None
    first = delivery["attempts"][0]
    return delivery if first["status"] is not None or first["error"] is not None else None


def _delivered(delivery: dict[str, Any] | None) -> dict[str, Any] | None:
    return delivery if delivery is not None and delivery["state"] == "delivered" else None


def test_a_change_made_through_the_citas_api_does_not_bounce_back(hooks: Hooks) -> None:
    cita_body = {
        "title": "Terapia - Rosa Flores",
        "contact_id": hooks.contact_id,
        "start_time": "2030-04-09T10:00:00-05:00",
        "end_time": "2030-04-09T11:00:00-05:00",
    }
    with hooks.stack.api() as api:
        created = api.post("ghl/citas", json=cita_body)
        assert created.status_code == 201, created.text
        cita = created.json()
        synced = hooks.wait(lambda: _synced(hooks, cita["id"]), "the create to reach GHL")
        _assert_echo_suppressed(hooks, "AppointmentCreate", synced.ghl_event_id, cita, outbox_entries=1)

        moved = {**cita_body, "start_time": "2030-04-09T15:00:00-05:00", "end_time": "2030-04-09T16:00:00-05:00"}
        changed = api.put(f"ghl/citas/{cita['id']}", json=moved, headers={"If-Match": str(cita["version"])})
        assert changed.status_code == 200, changed.text
        hooks.wait(lambda: _synced(hooks, cita["id"], version=2), "the update to reach GHL")
        _assert_echo_suppressed(hooks, "AppointmentUpdate", synced.ghl_event_id, changed.json(), outbox_entries=2)


def _synced(hooks: Hooks, appointment_id: int, version: int = 1) -> sa.Row[Any] | None:
    [row] = hooks.rows(appointments, appointments.c.id == appointment_id)
    entries = hooks.rows(outbox, outbox.c.appointment_id == appointment_id)
    done = len(entries) == version and all(entry.status == "done" for entry in entries)
    return row if done and row.sync_state == "synced" and row.ghl_event_id else None


def _assert_echo_suppressed(
    hooks: Hooks, event_type: str, event_id: str, cita: dict[str, Any], *, outbox_entries: int
) -> None:
    delivery = hooks.wait(lambda: _delivered(hooks.delivery_of(event_type, event_id)), f"GHL's {event_type} webhook")
    entry = hooks.wait(lambda: hooks.inbox_entry(delivery["webhookId"]), f"the {event_type} echo to be handled")
    assert entry.outcome in ("echo", "known")
    [row] = hooks.rows(appointments, appointments.c.id == cita["id"])
    assert row.version == cita["version"]
    assert row.updated_at == datetime.fromisoformat(cita["updated_at"])
    assert len(hooks.rows(outbox, outbox.c.appointment_id == cita["id"])) == outbox_entries
