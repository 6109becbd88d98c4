"""Webhook bodies as GHL sends them, signed like GHL signs them, and the ways tests hand them to the app."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import sqlalchemy as sa

from blueprints import webhooks
from shared import runtime
from shared.queues import GHL_TO_RV3, grouped_messages
from shared.services import inbound
from shared.services.webhook_intake import to_message
from shared.store import appointments as repo
from shared.store import outbox
from shared.store.database import Database
from shared.worker import Result
from sync_core import protocol
from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.hashing import sync_hash, synced_fields_from_ghl
from sync_core.models import Appointment
from sync_core.webhooks import parse_webhook
from tests.fixtures.app import CALENDAR, LOCATION, Response
from tools.ghl_sandbox.keys import SigningKeys

CONTACT = "ct_rosa"
EVENT = "ev_1"
START = "2030-03-12T10:00:00-05:00"
END = "2030-03-12T11:00:00-05:00"


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def appointment_body(
    event_type: str = "AppointmentCreate",
    *,
    shape: str = "appointment",
    webhook_id: str | None = "new",
    timestamp: str | None = "now",
    **fields: Any,
) -> dict[str, Any]:
    """An appointment webhook in GHL's official shape (or RV3's older `data` one); `fields` override GHL's."""
    appointment: dict[str, Any] = {
        "id": EVENT,
        "calendarId": CALENDAR,
        "contactId": CONTACT,
        "locationId": LOCATION,
        "groupId": "",
        "title": "Terapia - Rosa Flores",
        "appointmentStatus": "confirmed",
        "assignedUserId": "usr_demo_ana",
        "users": [],
        "notes": "Primera sesión",
        "source": "booking_widget",
        "startTime": START,
        "endTime": END,
        "dateAdded": "2030-03-01T12:00:00.000Z",
        "dateUpdated": "2030-03-01T12:00:00.000Z",
    }
    appointment.update(fields)
    body: dict[str, Any] = {"type": event_type, "locationId": LOCATION, shape: appointment}
    if webhook_id is not None:
        body["webhookId"] = str(uuid.uuid4()) if webhook_id == "new" else webhook_id
    if timestamp is not None:
        body["timestamp"] = iso_now() if timestamp == "now" else timestamp
    return body


def contact_body(**fields: Any) -> dict[str, Any]:
    """A ContactUpdate in GHL's flat shape."""
    body: dict[str, Any] = {
        "type": "ContactUpdate",
        "locationId": LOCATION,
        "id": CONTACT,
        "firstName": "Rosa",
        "lastName": "Flores",
        "phone": "+51987000111",
        "email": "rosa@example.pe",
        "webhookId": str(uuid.uuid4()),
        "timestamp": iso_now(),
    }
    body.update(fields)
    return body


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(keys: SigningKeys, data: bytes, scheme: str = "ed25519") -> dict[str, str]:
    if scheme == "ed25519":
        return {"X-GHL-Signature": keys.sign_ed25519(data)}
    return {"x-wh-signature": keys.sign_rsa(data)}


def post(data: bytes, headers: dict[str, str] | None = None) -> Response:
    return asyncio.run(post_async(data, headers))


async def post_async(data: bytes, headers: dict[str, str] | None = None) -> Response:
    request = func.HttpRequest(
        method="POST",
        url="http://localhost/api/webhooks/ghl",
        headers={"content-type": "application/json", **(headers or {})},
        params={},
        route_params={},
        body=data,
    )
    response = await webhooks.ghl_webhook(request)
    return Response(response.status_code, dict(response.headers), json.loads(response.get_body()))


def post_signed(keys: SigningKeys, body: dict[str, Any], scheme: str = "ed25519") -> Response:
    data = raw(body)
    return post(data, signed_headers(keys, data, scheme))


def message(body: dict[str, Any] | bytes) -> dict[str, Any]:
    """The `ghl-to-rv3` message the intake would enqueue for this (verified) delivery."""
    data = body if isinstance(body, bytes) else raw(body)
    return to_message(data, parse_webhook(data), datetime.now(UTC)).model_dump(mode="json")


def deliver(body: dict[str, Any] | bytes) -> Result:
    """Intake, then the queue worker, in-process."""
    return inbound.process(message(body))


def rows(db: Database, table: sa.Table, *where: Any) -> list[sa.Row[Any]]:
    with db.transaction() as conn:
        return list(conn.execute(sa.select(table).where(*where).order_by(table.c.id)))


def queued(queue: str = GHL_TO_RV3) -> list[dict[str, Any]]:
    """The visible messages waiting in `queue` (peeked, left in place), groups of the intake unpacked."""
    peeked = runtime.queues().client(queue).peek_messages(max_messages=32)
    messages: list[dict[str, Any]] = []
    for data in (json.loads(m.content) for m in peeked):
        messages.extend(grouped_messages(data) or [data])
    return messages


def event_hash(body: dict[str, Any]) -> str:
    """The sync hash of the appointment a webhook body describes (what echo suppression compares)."""
    appointment = body.get("appointment") or body["data"]
    return sync_hash(synced_fields_from_ghl(parse_ghl_appointment(appointment, tz="America/Lima")))


SYNCED_AT = datetime(2030, 3, 1, 11, tzinfo=UTC)  # when the stored appointments were last synced


def store_appointment(db: Database, location_pk: int, **overrides: Any) -> int:
    """An appointment RV3 created and pushed to GHL as EVENT: the state GHL's default webhook body describes."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "location_id": location_pk,
        "calendar_id": CALENDAR,
        "contact_id": CONTACT,
        "title": "Terapia - Rosa Flores",
        "assigned_user_id": "usr_demo_ana",
        "start_at": datetime(2030, 3, 12, 15, tzinfo=UTC),
        "end_at": datetime(2030, 3, 12, 16, tzinfo=UTC),
        "status": "confirmed",
        "ghl_event_id": EVENT,
        "sync_state": "synced",
        "source": "rv3",
        "flags": [],
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    with db.transaction() as conn:
        appointment_id = repo.insert(conn, values)
        record = repo.get(conn, appointment_id)
        assert record is not None
        if "sync_facts" not in overrides:
            synced = pushed(repo.to_domain(record), answered=values["ghl_event_id"] is not None)
            repo.save_sync(conn, record, synced)
    return appointment_id


def pushed(appointment: Appointment, *, answered: bool = True) -> protocol.SyncRecord:
    """The appointment made at the front desk just before SYNCED_AT and sent to GHL then (its create answered by
    SYNCED_AT, or still on its way): the protocol's own path, so GHL's echo of it is known as ours."""
    created = appointment.model_copy(update={"ghl_event_id": None})
    plan = protocol.plan_push(protocol.new_local(created, at=SYNCED_AT - timedelta(minutes=1)), now=SYNCED_AT)
    assert plan.write is not None
    if not answered:
        return plan.record
    return protocol.push_answered(
        plan.record, plan.write.id, protocol.Answer.accepted, now=SYNCED_AT, event_id=appointment.ghl_event_id
    )


def open_change(db: Database, appointment_id: int, operation: str = "update", *, rename: bool = True) -> None:
    """A front-desk edit (a new title, unless `rename` is False) still on its way to GHL (its outbox entry is
    dispatched, not done)."""
    now = datetime.now(UTC)
    with db.transaction() as conn:
        record = repo.get(conn, appointment_id)
        assert record is not None
        version = record.version
        if rename:
            renamed = repo.to_domain(record).model_copy(update={"title": record.title + " (control)"})
            edited = protocol.local_edit(repo.sync_record(record), renamed, at=now)
            repo.save_sync(conn, record, edited, content=repo.content_values(edited.appointment), now=now)
            version += 1
        entry = outbox.add(conn, appointment_id=appointment_id, operation=operation, version=version, now=now)
        outbox.mark_dispatched(conn, entry.op_id, now)
