"""The `ghl-to-rv3` worker: apply each GHL webhook to the stored appointments once, in order, without echoes.

A delivery is claimed in the inbox and applied in ONE transaction, so a crash neither applies it twice nor
loses it. What an appointment event does is decided by `sync_core.decisions.decide_webhook_effect`; this
module reads its inputs, fetches a contact RV3 does not know from GHL (outside the transaction) and writes
the result. A database or GHL outage re-enqueues the message with a delay instead of spending its delivery
budget; a malformed message raises and ends in the poison queue.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from shared import runtime, telemetry
from shared.ghl.errors import GhlError, OutcomeUnknown, RateLimited, Unavailable
from shared.queues import GHL_TO_RV3
from shared.services import dispatch, rv3_writeback
from shared.services.citas import to_domain
from shared.services.webhook_intake import WebhookMessage
from shared.store import appointments as repo
from shared.store import conflicts as conflict_repo
from shared.store import contacts as contact_repo
from shared.store import inbox, outbox
from shared.store import locations as location_repo
from sync_core.contacts import normalize_email, normalize_phone
from sync_core.decisions import DELETED_IN_GHL, AppointmentChanges, Effect, EffectKind, decide_webhook_effect, echo_of
from sync_core.hashing import sync_hash, synced_fields_from_appointment, synced_fields_from_ghl
from sync_core.models import Appointment, ConflictPolicy, Source
from sync_core.retry import ErrorKind, RetryAction, decide_retry
from sync_core.webhooks import GhlAppointmentEvent, GhlContact, GhlContactEvent

log = telemetry.get_logger("inbound")

MAX_ATTEMPTS = 12  # database or GHL unreachable: with backoff capped at 5 min, about an hour of outage
CONTENTION_DELAY_S = 1.0  # another message changed the same rows meanwhile: try again right away
DELETED_FLAG = DELETED_IN_GHL
CONTACT_MISSING_FLAG = "contact_details_missing"


@dataclass(frozen=True)
class Outcome:
    """What happened to one message, for logs and tests."""

    result: str  # applied | duplicate | requeued
    detail: str = ""


class MalformedMessage(ValueError):
    """A queue message no retry can fix: it ends in the poison queue for inspection and replay."""


class _Contention(Exception):
    """A concurrent transaction changed what this one read; the message is simply tried again."""


class _Requeued(Exception):
    """The message was sent again for later (GHL busy); `outcome` says so."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


@dataclass
class _Applied:
    """What a delivery did inside its transaction: its inbox outcome and outbox entries to hand to the queue."""

    outcome: str
    entries: list[outbox.OutboxEntry] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def process(raw: dict[str, Any]) -> Outcome:
    """Handle one `ghl-to-rv3` message; raises for a malformed message or an error no requeue can absorb."""
    try:
        message = WebhookMessage.model_validate(raw)
    except ValidationError as exc:
        raise MalformedMessage("ghl-to-rv3 message does not match WebhookMessage") from exc
    started = time.perf_counter()
    try:
        outcome = _handle(message, started)
    except _Requeued as requeued:
        outcome = requeued.outcome
    except _Contention as exc:
        outcome = _requeue_or_raise(message, ErrorKind.rate_limited, CONTENTION_DELAY_S, str(exc), exc)
    except sa.exc.OperationalError as exc:
        # The database is unreachable: retry later without spending the message's delivery budget.
        outcome = _requeue_or_raise(message, ErrorKind.connection, None, "database unavailable", exc)
    except Exception as exc:
        _record_failure(message, exc, started)
        raise
    log.info(
        "webhook %s",
        outcome.result,
        extra={
            "operation": "webhook_apply",
            "success": outcome.result != "requeued",
            "event_type": message.event.type,
            "duration_ms": _elapsed_ms(started),
            "detail": outcome.detail,
        },
    )
    return outcome


def _handle(message: WebhookMessage, started: float) -> Outcome:
    event = message.event
    if isinstance(event, GhlAppointmentEvent):
        contact = _contact_for(message, event)
        return _apply(message, started, lambda conn: _apply_appointment(conn, event, contact))
    if isinstance(event, GhlContactEvent):
        return _apply(message, started, lambda conn: _apply_contact(conn, event))
    return _apply(message, started, lambda conn: _Applied("ignored_type"))


def _apply(message: WebhookMessage, started: float, work: Callable[[Connection], _Applied]) -> Outcome:
    """Claim the delivery, do `work`, and record the outcome, all in one transaction."""
    db = runtime.database()
    try:
        with db.transaction() as conn:
            if not inbox.claim(conn, _delivery(message)):
                return Outcome("duplicate", "already applied")
            applied = work(conn)
            result = inbox.Result(
                success=True, outcome=applied.outcome, duration_ms=_elapsed_ms(started), processed_at=_now()
            )
            inbox.finish(conn, message.dedupe_key, result)
    except sa.exc.IntegrityError:
        with db.transaction() as conn:
            if inbox.is_processed(conn, message.dedupe_key):
                return Outcome("duplicate", "applied concurrently")
        raise _Contention("concurrent change of the same appointment") from None
    for entry in applied.entries:
        dispatch.send(entry)
    return Outcome("applied", applied.outcome)


def _delivery(message: WebhookMessage) -> inbox.Delivery:
    event = message.event
    return inbox.Delivery(
        dedupe_key=message.dedupe_key,
        webhook_id=event.webhook_id,
        payload_hash=message.payload_hash,
        event_type=event.type,
        location_id=event.location_id,
        ghl_event_id=event.appointment.id if isinstance(event, GhlAppointmentEvent) else None,
        received_at=message.received_at,
    )


# --- appointments -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One appointment event being applied inside its transaction."""

    conn: Connection
    location: location_repo.LocationRecord
    event: GhlAppointmentEvent
    contact: GhlContact | None  # GHL's contact, fetched when RV3 did not know it


def _apply_appointment(conn: Connection, event: GhlAppointmentEvent, contact: GhlContact | None) -> _Applied:
    location = _active_location(conn, event.location_id)
    if isinstance(location, str):
        return _Applied(location)
    ghl = event.appointment
    record = repo.find_by_ghl_event(conn, location.id, ghl.id)
    if record is None and event.action != "delete":
        ours = _our_create_of(conn, location, event)
        if ours is not None:
            return _link_our_create(conn, ours, event)
    change = _Change(conn, location, event, contact)
    current = to_domain(record) if record is not None else None
    policy = ConflictPolicy(runtime.settings().conflict_policy)
    pending = record is not None and outbox.open_for_appointment(conn, record.id)
    effect = decide_webhook_effect(current, event, policy=policy, has_pending_local_change=pending)
    if effect.kind is EffectKind.create:
        inserted = _insert(change, _marked(effect))
        if effect.reason != DELETED_FLAG:  # a tombstone of a deleted event is no booking for RV3
            rv3_writeback.record_ghl_booking(conn, location, inserted)
    elif effect.kind in (EffectKind.update, EffectKind.cancel, EffectKind.delete):
        assert record is not None
        _update(change, record, _marked(effect))
        rv3_writeback.record_ghl_change(conn, record.id)
    elif effect.kind is EffectKind.conflict:
        assert record is not None
        return _settle_conflict(change, record, effect, policy)
    return _Applied(effect.kind.value)


def _active_location(conn: Connection, ghl_location_id: str | None) -> location_repo.LocationRecord | str:
    """The configured location the event belongs to, or why the event is recorded and ignored."""
    location = location_repo.find_location(conn, ghl_location_id) if ghl_location_id else None
    if location is None:
        log.warning("webhook of a location that is not configured", extra={"location_id": ghl_location_id})
        return "unknown_location"
    if not location.is_active:
        return "location_inactive"
    return location


def _our_create_of(
    conn: Connection, location: location_repo.LocationRecord, event: GhlAppointmentEvent
) -> repo.AppointmentRecord | None:
    """The local appointment whose GHL create produced this event, when its id is not stored yet.

    The outbound worker marks a create as pending (calendar, contact, start) before sending it; GHL's
    AppointmentCreate can arrive before the worker stores the event id, and must then link, not duplicate.
    """
    ghl = event.appointment
    if ghl.contact_id is None or ghl.start is None:
        return None
    wanted = ghl.start.replace(microsecond=0)
    for record in repo.awaiting_create(conn, location.id, ghl.contact_id):
        marker = record.pending_create
        if not marker or marker.get("calendar_id") != ghl.calendar_id:
            continue
        if datetime.fromisoformat(str(marker.get("start"))).replace(microsecond=0) == wanted:
            return record
    return None


def _link_our_create(conn: Connection, record: repo.AppointmentRecord, event: GhlAppointmentEvent) -> _Applied:
    """Store the event id of our own create; GHL's content is taken only as far as it equals ours."""
    ghl = event.appointment
    values: dict[str, Any] = {"ghl_event_id": ghl.id, "pending_create": None}
    if ghl.date_updated is not None and (record.ghl_updated_at is None or ghl.date_updated > record.ghl_updated_at):
        values["ghl_updated_at"] = ghl.date_updated
    local = to_domain(record)
    if echo_of(local, ghl) is not None:
        # What the outbound worker records once it hears back: GHL holds the local state.
        values["last_synced_hash"] = sync_hash(synced_fields_from_appointment(local))
    repo.set_sync_result(conn, record.id, values)
    return _Applied("linked_our_create")


def _marked(effect: Effect) -> AppointmentChanges:
    """The effect's changes, flagged when GHL deleted the event (so nobody looks for it in GHL any more)."""
    assert effect.changes is not None
    if effect.kind is EffectKind.delete or effect.reason == "deleted_in_ghl":
        return effect.changes.model_copy(update={"flags": [*effect.changes.flags, DELETED_FLAG]})
    return effect.changes


def _insert(change: _Change, changes: AppointmentChanges) -> int:
    now = _now()
    location = change.location
    appointment = changes.new_appointment(appointment_id="new", location_id=location.ghl_location_id)
    return repo.insert(
        change.conn,
        {
            **_row(appointment),
            "location_id": location.id,
            "patient_contact_id": _patient_link(change.conn, location, appointment.contact_id, change.contact),
            "status_raw": _raw_status(change.event),
            "source": Source.ghl.value,
            "created_at": now,
            "updated_at": now,
        },
    )


def _update(change: _Change, record: repo.AppointmentRecord, changes: AppointmentChanges) -> None:
    updated = changes.apply_to(to_domain(record))
    values: dict[str, Any] = {**_row(updated), "updated_at": _now()}
    if change.event.action != "delete":
        values["status_raw"] = _raw_status(change.event)
    if updated.contact_id != record.contact_id:
        values["patient_contact_id"] = _patient_link(change.conn, change.location, updated.contact_id, change.contact)
    if not repo.update_if_version(change.conn, record.id, record.version, values):
        raise _Contention("the appointment changed while the webhook was applied")


def _settle_conflict(
    change: _Change, record: repo.AppointmentRecord, effect: Effect, policy: ConflictPolicy
) -> _Applied:
    """Record the concurrent edit; GHL's side is applied when it wins, else GHL is corrected from ours."""
    ghl = change.event.appointment
    winner = effect.winner or Source.rv3
    ghl_values: dict[str, Any] = (
        {"deleted": True} if change.event.action == "delete" else synced_fields_from_ghl(ghl).model_dump(mode="json")
    )
    conflict_repo.record(
        change.conn,
        appointment_id=record.id,
        policy=policy.value,
        winner=winner.value,
        rv3_values=synced_fields_from_appointment(to_domain(record)).model_dump(mode="json"),
        ghl_values={"ghl_event_id": ghl.id, "date_updated": _iso(ghl.date_updated), **ghl_values},
        now=_now(),
    )
    if winner is Source.ghl:
        _update(change, record, _marked(effect))
        rv3_writeback.record_ghl_change(change.conn, record.id)
        return _Applied("conflict_ghl_won")
    if ghl.date_updated is not None and (record.ghl_updated_at is None or ghl.date_updated > record.ghl_updated_at):
        # GHL's state is now known up to this change: redeliveries of it or of older ones are stale.
        repo.set_sync_result(change.conn, record.id, {"ghl_updated_at": ghl.date_updated})
    entry = dispatch.record_change(
        change.conn,
        appointment_id=record.id,
        operation="update",
        version=record.version,
        now=_now(),
        correlation_id=change.event.webhook_id[:64] if change.event.webhook_id else None,
    )
    return _Applied("conflict_rv3_won", [entry])


def _row(appointment: Appointment) -> dict[str, Any]:
    """The stored columns of an appointment the sync itself changes (never its id, version or origin)."""
    return {
        "calendar_id": appointment.calendar_id,
        "contact_id": appointment.contact_id,
        "title": appointment.title[:255],
        "notes": appointment.notes,
        "assigned_user_id": appointment.assigned_user_id,
        "start_at": appointment.start,
        "end_at": appointment.end,
        "status": appointment.status.value,
        "ghl_event_id": appointment.ghl_event_id,
        "sync_state": appointment.sync_state.value,
        "last_synced_hash": appointment.last_synced_hash,
        "last_error": appointment.last_error,
        "ghl_updated_at": appointment.ghl_updated_at,
        "flags": list(appointment.flags),
    }


def _raw_status(event: GhlAppointmentEvent) -> str | None:
    raw = event.appointment.appointment_status
    return raw[:64] if raw else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- contacts -----------------------------------------------------------------------------------------------


def _contact_for(message: WebhookMessage, event: GhlAppointmentEvent) -> GhlContact | None:
    """GHL's contact of an appointment RV3 will take and whose contact it does not know yet; else None.

    Read before the transaction, so no lock is held during the GHL call.
    """
    contact_id = event.appointment.contact_id
    if event.action == "delete" or contact_id is None or event.location_id is None:
        return None
    with runtime.database().transaction() as conn:
        needed = not inbox.is_processed(conn, message.dedupe_key) and _contact_unknown(conn, event, contact_id)
    return _fetch_contact(message, event.location_id, contact_id) if needed else None


def _contact_unknown(conn: Connection, event: GhlAppointmentEvent, contact_id: str) -> bool:
    location = location_repo.find_location(conn, event.location_id) if event.location_id else None
    if location is None or not location.is_active or contact_repo.find_by_ghl_contact(conn, location.id, contact_id):
        return False
    record = repo.find_by_ghl_event(conn, location.id, event.appointment.id)
    if record is not None:
        return record.contact_id != contact_id
    return _our_create_of(conn, location, event) is None


def _fetch_contact(message: WebhookMessage, location_id: str, contact_id: str) -> GhlContact | None:
    """The contact as GHL has it. A rate limit or outage retries the message later (bounded); after that, or
    when GHL refuses for good, the appointment is taken without the contact's details rather than lost."""
    try:
        found = runtime.ghl().get_contact(location_id, contact_id)
    except RateLimited as exc:
        _requeue_unless_exhausted(message, ErrorKind.rate_limited, exc.retry_after, "GHL rate limit (contact)")
    except (Unavailable, OutcomeUnknown) as exc:
        _requeue_unless_exhausted(message, ErrorKind.connection, None, f"GHL unavailable ({type(exc).__name__})")
    except GhlError as exc:
        log.warning("contact of a GHL appointment not readable: %s", type(exc).__name__)
    else:
        return GhlContact(
            id=found.id,
            first_name=found.firstName,
            last_name=found.lastName,
            name=found.name,
            email=found.email,
            phone=found.phone,
        )
    return None


def _patient_link(
    conn: Connection, location: location_repo.LocationRecord, contact_id: str | None, contact: GhlContact | None
) -> int | None:
    """The patient mapping of a GHL contact: the existing one, else a new `ghl:<contactId>` patient."""
    if contact_id is None:
        return None
    links = contact_repo.find_by_ghl_contact(conn, location.id, contact_id)
    if links:
        return links[0].id
    values: dict[str, Any] = {"ghl_contact_id": contact_id, "flags": [] if contact else [CONTACT_MISSING_FLAG]}
    if contact is not None:
        values.update(_patient_values(contact))
    return contact_repo.upsert_patient(conn, location.id, f"ghl:{contact_id}", values, _now()).id


def _apply_contact(conn: Connection, event: GhlContactEvent) -> _Applied:
    """A contact edited in GHL updates the patient data of its mappings; unknown contacts are ignored."""
    location = _active_location(conn, event.location_id)
    if isinstance(location, str):
        return _Applied(location)
    links = contact_repo.find_by_ghl_contact(conn, location.id, event.contact.id)
    if not links:
        return _Applied("contact_unmapped")
    values = _patient_values(event.contact)
    if len(links) > 1:
        # Family members often share one GHL contact: its phone and email are theirs, its name is only one's.
        values.pop("full_name", None)
    now = _now()
    for link in links:
        flags = [flag for flag in link.flags if flag != CONTACT_MISSING_FLAG]
        contact_repo.upsert_patient(conn, location.id, link.patient_key, {**values, "flags": flags}, now)
    return _Applied("contact_updated")


def _patient_values(contact: GhlContact) -> dict[str, Any]:
    """The patient fields GHL's contact carries; a field GHL left out keeps the value we have."""
    name = contact.name or " ".join(part for part in (contact.first_name, contact.last_name) if part)
    values: dict[str, Any] = {
        "full_name": name[:300] if name else None,
        "phone": normalize_phone(contact.phone),
        "email": normalize_email(contact.email),
    }
    return {key: value for key, value in values.items() if value is not None}


# --- retries and failures -----------------------------------------------------------------------------------


def _requeue(message: WebhookMessage, kind: ErrorKind, retry_after: float | None, note: str) -> Outcome | None:
    """Send the message again after a delay (a new queue message); None once this kind of retry is used up."""
    counter = message.requeues + 1 if kind is ErrorKind.rate_limited else message.attempt
    decision = decide_retry(
        kind, attempt=counter, rng=random.Random(), retry_after_s=retry_after, max_attempts=MAX_ATTEMPTS
    )
    if decision.action is RetryAction.permanent:
        return None
    if kind is ErrorKind.rate_limited:
        following = message.model_copy(update={"requeues": message.requeues + 1})
    else:
        following = message.model_copy(update={"attempt": message.attempt + 1})
    runtime.queues().send(GHL_TO_RV3, following.model_dump(mode="json"), delay_s=decision.delay_s)
    return Outcome("requeued", f"{note}; retry in {decision.delay_s:.1f}s")


def _requeue_or_raise(
    message: WebhookMessage, kind: ErrorKind, retry_after: float | None, note: str, error: Exception
) -> Outcome:
    outcome = _requeue(message, kind, retry_after, note)
    if outcome is None:
        raise error  # retries used up: the host's own retries, then the poison queue, keep the message
    return outcome


def _requeue_unless_exhausted(message: WebhookMessage, kind: ErrorKind, retry_after: float | None, note: str) -> None:
    outcome = _requeue(message, kind, retry_after, note)
    if outcome is not None:
        raise _Requeued(outcome)
    log.warning("giving up waiting for GHL (%s); applying the webhook without it", note)


def _record_failure(message: WebhookMessage, error: Exception, started: float) -> None:
    """Count the failed attempt in the inbox (metrics); the message itself goes back to the queue."""
    result = inbox.Result(
        success=False,
        outcome="failed",
        duration_ms=_elapsed_ms(started),
        processed_at=_now(),
        error=type(error).__name__,  # never the message: it may quote patient data
    )
    try:
        with runtime.database().transaction() as conn:
            inbox.record_failure(conn, _delivery(message), result)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("could not record a failed webhook: %s", type(exc).__name__)
    log.error(
        "webhook failed: %s",
        type(error).__name__,
        extra={"operation": "webhook_apply", "success": False, "event_type": message.event.type},
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
