"""The `rv3-to-ghl` worker: make GHL hold the appointment's current state, exactly once in effect.

Messages only name an outbox entry; the worker reads the appointment as it is NOW and sends what GHL lacks
(`sync_core.decisions.decide_outbound`), so a redelivered or superseded message changes nothing. Rate limits
and GHL outages re-enqueue the message with a delay (they are not failures and never reach the poison
queue); a create whose outcome is unknown is looked up in GHL and adopted before anything is sent again.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from shared import runtime, telemetry
from shared.ghl.errors import (
    AuthExpired,
    Forbidden,
    GhlError,
    Invalid,
    NotFound,
    OutcomeUnknown,
    RateLimited,
)
from shared.queues import RV3_TO_GHL
from shared.services.citas import to_domain
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import locations as location_repo
from shared.store import outbox
from sync_core.contacts import Patient, build_contact
from sync_core.decisions import OutboundKind, decide_outbound, find_adoptable_event, record_push
from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.ghl_payloads import create_body, update_body
from sync_core.models import Appointment
from sync_core.retry import ErrorKind, RetryAction, decide_retry

log = telemetry.get_logger("outbound")

CONTACT_LEASE = timedelta(seconds=60)
# One worker at a time pushes an appointment. The lease is renewed right before each GHL write, so it only
# has to outlast one call (budget wait + read timeout), and a crashed worker's appointments free up quickly.
SYNC_LEASE = timedelta(seconds=40)
LOOKUP_MARGIN = timedelta(minutes=1)
MAX_ATTEMPTS = 12  # transient GHL failures: with backoff capped at 5 min, about an hour of outage


class OutboundMessage(BaseModel):
    op_id: str
    appointment_id: int
    operation: str = "sync"
    version: int = 1
    correlation_id: str | None = None
    attempt: int = 1
    requeues: int = 0


@dataclass(frozen=True)
class Outcome:
    """What happened to one message, for logs, metrics and tests."""

    result: str  # synced | skipped | requeued | failed | duplicate | superseded
    detail: str = ""


class MalformedMessage(ValueError):
    """A queue message that no retry can fix: it ends in the poison queue for inspection and replay."""


def _now() -> datetime:
    return datetime.now(UTC)


def process(raw: dict[str, Any]) -> Outcome:
    """Handle one `rv3-to-ghl` message. Raises only for what a retry may fix, or a malformed message (poison)."""
    try:
        message = OutboundMessage.model_validate(raw)
    except ValidationError as exc:
        raise MalformedMessage("rv3-to-ghl message does not match OutboundMessage") from exc
    started = time.perf_counter()
    try:
        outcome = _sync(message)
    except sa.exc.OperationalError:
        # The database is unreachable: retry later without spending the message's delivery budget.
        outcome = _requeue(message, ErrorKind.connection, retry_after=None, note="database unavailable")
    log.info(
        "outbound %s",
        outcome.result,
        extra={
            "operation": "outbound_sync",
            "success": outcome.result in ("synced", "skipped", "duplicate", "superseded"),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "appointment_id": message.appointment_id,
            "correlation_id": message.correlation_id,
            "detail": outcome.detail,
        },
    )
    return outcome


def _sync(message: OutboundMessage) -> Outcome:
    db = runtime.database()
    with db.transaction() as conn:
        entry = outbox.get(conn, message.op_id)
        record = repo.get(conn, message.appointment_id)
    if entry is None or record is None:
        return Outcome("failed", "unknown outbox entry or appointment")
    if entry.status in (outbox.DONE, outbox.FAILED):
        return Outcome("duplicate", "already processed")
    now = _now()
    lease = _Lease(record.id, now + SYNC_LEASE)
    with db.transaction() as conn:
        claimed = repo.claim_sync(conn, record.id, now, lease.until)
        if claimed:
            # Read again under the lease: another worker may have synced the appointment since the first read,
            # and a stale copy would send GHL a second create or an old state over a newer GHL edit.
            entry = outbox.get(conn, message.op_id)
            record = repo.get(conn, message.appointment_id)
    if not claimed:
        return _requeue(message, ErrorKind.rate_limited, retry_after=2.0, note="appointment being synced")
    try:
        if entry is None or record is None or entry.status in (outbox.DONE, outbox.FAILED):
            return Outcome("duplicate", "already processed")
        return _sync_claimed(message, record, lease)
    except LeaseLost:
        return _requeue(message, ErrorKind.rate_limited, retry_after=2.0, note="sync lease lost")
    finally:
        if lease.held:
            with db.transaction() as conn:
                repo.release_sync(conn, lease.appointment_id, lease.until)


class LeaseLost(RuntimeError):
    """Our sync lease expired and another worker may be pushing the appointment: stop before writing to GHL."""


@dataclass
class _Lease:
    appointment_id: int
    until: datetime
    held: bool = True

    def renew(self) -> None:
        """Extend the lease before a GHL write, so the write always runs inside it."""
        until = _now() + SYNC_LEASE
        with runtime.database().transaction() as conn:
            renewed = repo.renew_sync(conn, self.appointment_id, self.until, until)
        if not renewed:
            self.held = False
            raise LeaseLost(f"appointment {self.appointment_id}")
        self.until = until


def _sync_claimed(message: OutboundMessage, record: repo.AppointmentRecord, lease: _Lease) -> Outcome:
    try:
        resolved = _ensure_contact(record)
        if resolved is None:
            return _requeue(message, ErrorKind.rate_limited, retry_after=2.0, note="contact being resolved")
        return _push(message, resolved, lease)
    except GhlError as exc:
        return _after_ghl_error(message, exc)


def _after_ghl_error(message: OutboundMessage, exc: GhlError) -> Outcome:
    """Rate limits and transient failures come back later; only rejections are permanent."""
    if isinstance(exc, Invalid | NotFound):
        code = "ghl_invalid" if isinstance(exc, Invalid) else "ghl_not_found"
        telemetry.validation_rejected("ghl", code, operation="sync.rv3_to_ghl")
        return _fail(message, _rejection_text(exc))
    if isinstance(exc, RateLimited):
        return _requeue(message, ErrorKind.rate_limited, retry_after=exc.retry_after, note="rate limited")
    if isinstance(exc, OutcomeUnknown):
        kind = ErrorKind.outcome_unknown
    elif isinstance(exc, AuthExpired | Forbidden):
        kind = ErrorKind.auth_expired
    else:
        kind = ErrorKind.server_error
    return _requeue(message, kind, retry_after=None, note=type(exc).__name__)


def _rejection_text(exc: GhlError) -> str:
    if isinstance(exc, NotFound):
        return "GoHighLevel no encontró el calendario, el contacto o el evento de la cita."
    details = "; ".join(getattr(exc, "details", []) or [])
    return f"GoHighLevel rechazó la cita: {details}" if details else "GoHighLevel rechazó la cita."


def _ensure_contact(record: repo.AppointmentRecord) -> repo.AppointmentRecord | None:
    """The appointment with its GHL contact resolved (upserting the patient once); None if another worker is on it."""
    if record.contact_id is not None or record.patient_contact_id is None:
        return record
    db = runtime.database()
    now = _now()
    with db.transaction() as conn:
        link = contact_repo.get(conn, record.patient_contact_id)
        assert link is not None
        if link.ghl_contact_id is None and not contact_repo.claim_resolution(conn, link.id, now, now + CONTACT_LEASE):
            return None
        location = location_repo.get_location(conn, record.location_id)
    assert location is not None
    ghl_contact_id = link.ghl_contact_id
    if ghl_contact_id is None:
        patient = Patient(name=link.full_name or "Paciente", phone=link.phone, email=link.email)
        draft = build_contact(patient, record.ghl_location_id)
        try:
            contact, _created = runtime.ghl().upsert_contact(record.ghl_location_id, draft.ghl_body())
        except GhlError:
            with db.transaction() as conn:
                contact_repo.release_resolution(conn, link.id)
            raise
        ghl_contact_id = contact.id
        with db.transaction() as conn:
            contact_repo.set_ghl_contact(conn, link.id, ghl_contact_id, link.flags, _now())
    with db.transaction() as conn:
        repo.set_sync_result(conn, record.id, {"contact_id": ghl_contact_id})
        refreshed = repo.get(conn, record.id)
    return refreshed


def _adopt_unknown_create(record: repo.AppointmentRecord) -> repo.AppointmentRecord:
    """If an earlier create may have reached GHL, find that event and adopt it instead of creating again."""
    pending = record.pending_create
    if record.ghl_event_id is not None or not pending:
        return record
    start = datetime.fromisoformat(pending["start"])
    events = runtime.ghl().list_events(
        record.ghl_location_id,
        calendar_id=pending["calendar_id"],
        start=start - LOOKUP_MARGIN,
        end=start + LOOKUP_MARGIN,
    )
    candidates = [parse_ghl_appointment(e.model_dump(), tz=record.timezone) for e in events]
    found = find_adoptable_event(
        candidates, calendar_id=pending["calendar_id"], contact_id=pending["contact_id"], start=start
    )
    with runtime.database().transaction() as conn:
        if found is not None:
            log.info(
                "adopted GHL event of an earlier create",
                extra={"operation": "outbound_adopt", "appointment_id": record.id, "event_id": found.id},
            )
            # Hash unknown: the next step compares nothing and sends the current state as an update.
            repo.set_sync_result(conn, record.id, {"ghl_event_id": found.id, "pending_create": None})
        else:
            repo.set_sync_result(conn, record.id, {"pending_create": None})
        refreshed = repo.get(conn, record.id)
    assert refreshed is not None
    return refreshed


def _push(message: OutboundMessage, record: repo.AppointmentRecord, lease: _Lease) -> Outcome:
    record = _adopt_unknown_create(record)
    appointment = to_domain(record)
    kind = decide_outbound(appointment)
    if kind is OutboundKind.skip:
        _finish(message, record, appointment, ghl_event_id=record.ghl_event_id, sent_at=None)
        return Outcome("skipped", "GHL already holds this state")
    client = runtime.ghl()
    location_id = record.ghl_location_id
    lease.renew()
    sent_at = _now()
    if kind is OutboundKind.create:
        assert appointment.contact_id is not None
        marker = {
            "calendar_id": appointment.calendar_id,
            "contact_id": appointment.contact_id,
            "start": appointment.start.isoformat(),
        }
        with runtime.database().transaction() as conn:
            repo.set_sync_result(conn, record.id, {"pending_create": marker})
        try:
            event = client.create_appointment(location_id, dict(create_body(appointment, timezone=record.timezone)))
        except GhlError as exc:
            if not isinstance(exc, OutcomeUnknown):
                # Refused by GHL or never sent (e.g. no rate slot yet): no event to look up before the next try.
                with runtime.database().transaction() as conn:
                    repo.set_sync_result(conn, record.id, {"pending_create": None})
            raise
        event_id = event.id
    elif kind is OutboundKind.cancel:
        assert record.ghl_event_id is not None
        with contextlib.suppress(NotFound):  # deleted in GHL already: nothing left to cancel
            client.cancel_appointment(location_id, record.ghl_event_id)
        event_id = record.ghl_event_id
    else:
        assert record.ghl_event_id is not None
        client.update_appointment(
            location_id, record.ghl_event_id, dict(update_body(appointment, timezone=record.timezone))
        )
        event_id = record.ghl_event_id
    _finish(message, record, appointment, ghl_event_id=event_id, sent_at=sent_at)
    return Outcome("synced", kind.value)


def _finish(
    message: OutboundMessage,
    record: repo.AppointmentRecord,
    appointment: Appointment,
    *,
    ghl_event_id: str | None,
    sent_at: datetime | None,
) -> None:
    """Store what GHL now holds; a newer local edit made meanwhile stays pending for its own message."""
    now = _now()
    with runtime.database().transaction() as conn:
        current = repo.get(conn, record.id)
        assert current is not None
        values: dict[str, Any] = {"ghl_event_id": ghl_event_id, "pending_create": None}
        pushed = record_push(appointment, ghl_event_id=ghl_event_id or "", sent_at=sent_at or now)
        if current.version == record.version:
            values.update(
                last_synced_hash=pushed.last_synced_hash if ghl_event_id else None,
                sync_state="synced",
                last_error=None,
                ghl_updated_at=pushed.ghl_updated_at if sent_at else current.ghl_updated_at,
            )
        elif ghl_event_id and sent_at is not None:
            # GHL holds what was just sent, even though a newer edit waits for its own message: remember it, so
            # GHL's echo of this write is known as ours, not taken for a GHL change that may win over the edit.
            values.update(last_synced_hash=pushed.last_synced_hash)
        repo.set_sync_result(conn, record.id, values)
        outbox.finish(conn, message.op_id, now)


def _fail(message: OutboundMessage, text: str) -> Outcome:
    """A permanent failure: visible on the appointment (sync_state=error, last_error), never retried blindly."""
    now = _now()
    with runtime.database().transaction() as conn:
        repo.set_sync_result(conn, message.appointment_id, {"sync_state": "error", "last_error": text})
        outbox.finish(conn, message.op_id, now, failed=True, error=text)
    log.warning(
        "appointment sync failed permanently",
        extra={"operation": "outbound_sync", "success": False, "appointment_id": message.appointment_id},
    )
    return Outcome("failed", text)


def _requeue(message: OutboundMessage, kind: ErrorKind, *, retry_after: float | None, note: str) -> Outcome:
    """Send the message again later (a new queue message with a visibility delay); bounded per kind."""
    counter = message.requeues + 1 if kind is ErrorKind.rate_limited else message.attempt
    decision = decide_retry(
        kind, attempt=counter, rng=random.Random(), retry_after_s=retry_after, max_attempts=MAX_ATTEMPTS
    )
    if decision.action is RetryAction.permanent:
        return _fail(message, f"No se pudo sincronizar con GoHighLevel tras varios intentos ({note}).")
    if kind is ErrorKind.rate_limited:
        following = message.model_copy(update={"requeues": message.requeues + 1})
    else:
        following = message.model_copy(update={"attempt": message.attempt + 1})
    with runtime.database().transaction() as conn:
        outbox.record_attempt(conn, message.op_id, note)
    runtime.queues().send(RV3_TO_GHL, following.model_dump(), delay_s=decision.delay_s)
    return Outcome("requeued", f"{note}; retry in {decision.delay_s:.1f}s")
