"""The `ghl-to-rv3` worker: apply each GHL webhook to the stored appointments once, in order, without echoes.

A delivery is claimed in the inbox and applied in ONE transaction, so a crash neither applies it twice nor
loses it. What a GHL state does to its appointment is the protocol's decision (`sync_core.protocol.observe`:
ours or not, newer or not, a conflict or not); this module reads its inputs, fetches a contact RV3 does not
know from GHL (outside the transaction), stores the outcome, and afterwards hands the pushes still due to
the outbox and removes a stray copy of our own in GHL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.ghl.errors import GhlError, NotFound
from shared.queues import GHL_TO_RV3
from shared.services import dispatch, rv3_writeback
from shared.services.sync_store import Stored, decided, store_observed
from shared.services.webhook_intake import WebhookMessage
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import inbox
from shared.store import locations as location_repo
from shared.store.appointments import Contention
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, later_for, run
from sync_core import protocol
from sync_core.contacts import normalize_email, normalize_phone
from sync_core.models import ConflictPolicy, Source
from sync_core.retry import ErrorKind
from sync_core.webhooks import GhlAppointmentEvent, GhlContact, GhlContactEvent

log = telemetry.get_logger("inbound")

CONTENTION_DELAY_S = 1.0  # another message changed the same rows meanwhile: try again right away
CONTACT_MISSING_FLAG = "contact_details_missing"
CONTACT_TRIES = 6  # GHL busy or down while we need a contact: after this many tries the booking is taken without


def process(raw: dict[str, Any], work: Work | None = None) -> Result:
    """Handle one `ghl-to-rv3` message (see `shared.worker.run`)."""
    return run(JOB, raw, work or Work.current())


# What the intake may apply before it answers GHL: nothing to change locally, nothing to ask GHL.
AT_ONCE = frozenset({protocol.Decision.echo, protocol.Decision.known})


def apply_if_echo(work: Work, message: WebhookMessage) -> bool:
    """Apply a verified delivery right away, in one transaction, when the protocol finds it is GHL's echo of a
    write of ours (or a state it already knows): the intake then needs no queue message for it. Anything else
    is rolled back untouched and False is returned, for the queue and this worker to apply as always. Errors
    (SQL unreachable...) are raised; the intake queues the delivery then too."""
    if not isinstance(message.event, GhlAppointmentEvent):
        return False
    started = time.perf_counter()
    try:
        result = _apply(work, message, started, lambda conn: _apply_appointment(work, conn, message, _UNREAD,
                                                                                 at_once=True))  # fmt: skip
    except (_NotAtOnce, _ContactNeeded, Later):
        return False
    log.info(
        "webhook applied at intake: %s",
        result.detail,
        extra={"operation": "webhook_at_intake", "success": True, "outcome": result.result,
               "duration_ms": _elapsed_ms(started)},
    )  # fmt: skip
    return True


class _NotAtOnce(Exception):
    """The delivery needs more than the intake does before it answers: rolled back, and queued."""


class _ContactNeeded(Exception):
    """The appointment's GHL contact is new to the sync: it is read from GHL, then the webhook applied again."""

    def __init__(self, location_id: str, contact_id: str) -> None:
        super().__init__(contact_id)
        self.location_id = location_id
        self.contact_id = contact_id


class _Unread:
    """GHL's contact not read yet (most webhooks never need it: their contact is known)."""


_UNREAD = _Unread()


@dataclass
class _Applied:
    """What a delivery did inside its transaction, and what is left for after the commit."""

    outcome: str
    stored: Stored = field(default_factory=Stored)


def _handle(work: Work, message: WebhookMessage) -> Result:
    started = time.perf_counter()
    event = message.event
    try:
        if isinstance(event, GhlAppointmentEvent):
            try:
                return _apply(work, message, started, lambda conn: _apply_appointment(work, conn, message, _UNREAD))
            except _ContactNeeded as needed:
                # Read from GHL outside any transaction (no lock held during the call), then applied afresh.
                contact = _fetch_contact(work, message, needed.location_id, needed.contact_id)
                return _apply(work, message, started, lambda conn: _apply_appointment(work, conn, message, contact))
        if isinstance(event, GhlContactEvent):
            return _apply(work, message, started, lambda conn: _apply_contact(work, conn, event))
        return _apply(work, message, started, lambda conn: _Applied("ignored_type"))
    except (Later, sa.exc.OperationalError):
        raise
    except Exception as exc:
        _record_failure(work, message, exc, started)
        raise


def _apply(work: Work, message: WebhookMessage, started: float, do: Callable[[Connection], _Applied]) -> Result:
    """Claim the delivery, do the work, and record the outcome, all in one transaction."""
    try:
        with work.transaction() as conn:
            claim = inbox.claim(conn, _delivery(message))
            if claim is None:
                return Result(Outcome.duplicate, "already applied")
            applied = do(conn)
            result = inbox.Result(
                success=True, outcome=applied.outcome, duration_ms=_elapsed_ms(started), processed_at=work.now()
            )
            inbox.finish(conn, claim, result)
    except (sa.exc.IntegrityError, Contention):
        with work.transaction() as conn:
            if inbox.is_processed(conn, message.dedupe_key):
                return Result(Outcome.duplicate, "applied concurrently")
        raise Later(ErrorKind.rate_limited, "concurrent change", retry_after=CONTENTION_DELAY_S) from None
    for entry in applied.stored.entries:
        dispatch.send(work, entry)
    if applied.stored.remove_event is not None:
        _remove_stray(work, message, applied.stored.remove_event)
    return Result(Outcome.applied, applied.outcome)


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


def _apply_appointment(
    work: Work,
    conn: Connection,
    message: WebhookMessage,
    contact: GhlContact | _Unread | None,
    *,
    at_once: bool = False,
) -> _Applied:
    """What a GHL appointment event does; `at_once` (the intake): only what `AT_ONCE` allows, else `_NotAtOnce`
    before anything is stored or logged as decided."""
    event = message.event
    assert isinstance(event, GhlAppointmentEvent)
    location = _active_location(conn, event.location_id, warn=not at_once)
    if isinstance(location, str):
        if at_once:
            raise _NotAtOnce(location)  # the worker records it (and warns once)
        return _Applied(location)
    ghl = event.appointment
    seen = protocol.observation_of(
        ghl, deleted=event.action == "delete", received_at=message.received_at, seen_at=message.observed_at
    )
    policy = ConflictPolicy(work.settings.conflict_policy)
    row = repo.find_by_ghl_event(conn, location.id, ghl.id)
    if row is None:
        ours = _our_create_of(conn, location, seen)
        if ours is None:
            if at_once:
                raise _NotAtOnce("new event")
            return _insert(work, conn, location, message, seen=seen, contact=contact)
        observed = protocol.link_our_create(repo.sync_record(ours), seen, policy=policy)
        row = ours
    else:
        observed = protocol.observe(repo.sync_record(row), seen, policy=policy)
    if at_once and (observed.decision not in AT_ONCE or observed.changes is not None or observed.push
                    or observed.remove_event):  # fmt: skip
        raise _NotAtOnce(observed.decision.value)
    extra: dict[str, Any] = {}
    if observed.changes is not None:
        if event.action != "delete":
            extra["status_raw"] = _raw_status(event)
        if observed.record.appointment.contact_id != row.contact_id:
            extra["patient_contact_id"] = _patient_link(work, conn, location, observed.record.appointment.contact_id,
                                                        contact)  # fmt: skip
    stored = store_observed(
        work,
        conn,
        row,
        observed,
        event=f"webhook.{event.action}",
        policy=policy,
        now=work.now(),
        extra=extra,
        correlation_id=event.webhook_id[:64] if event.webhook_id else None,
    )
    return _Applied(observed.decision.value, stored)


def _our_create_of(
    conn: Connection, location: location_repo.LocationRecord, seen: protocol.GhlObservation
) -> repo.AppointmentRecord | None:
    """The appointment a create of ours made this event for, when the event's id is not stored with it (GHL's
    AppointmentCreate can overtake the create's answer)."""
    contact_id = seen.appointment.contact_id
    if contact_id is None:
        return None
    for record in repo.of_contact(conn, location.id, contact_id):
        if protocol.is_our_create(repo.sync_record(record), seen):
            return record
    return None


def _insert(
    work: Work,
    conn: Connection,
    location: location_repo.LocationRecord,
    message: WebhookMessage,
    *,
    seen: protocol.GhlObservation,
    contact: GhlContact | _Unread | None,
) -> _Applied:
    """An event no appointment has: booked in GHL, or a delete overtaking its create (kept as a tombstone)."""
    event = message.event
    assert isinstance(event, GhlAppointmentEvent)
    appointment, facts, decision = protocol.observe_new(seen, location_id=location.ghl_location_id)
    record = protocol.SyncRecord(appointment=appointment, facts=facts)
    now = work.now()
    inserted = repo.insert(
        conn,
        {
            **repo.content_values(appointment),
            **repo.sync_values(record),
            "location_id": location.id,
            "patient_contact_id": _patient_link(work, conn, location, appointment.contact_id, contact),
            "status_raw": _raw_status(event),
            "source": Source.ghl.value,
            "created_at": now,
            "updated_at": now,
        },
    )
    if decision is protocol.Decision.created:
        rv3_writeback.record_ghl_booking(work.settings, conn, location, inserted, now)
    decided(inserted, f"webhook.{event.action}", decision.value)
    return _Applied(decision.value)


def _remove_stray(work: Work, message: WebhookMessage, event_id: str) -> None:
    """A second GHL event our own create made (its first outcome looked unknown): deleted, once."""
    location_id = message.event.location_id
    assert location_id is not None
    try:
        work.ghl.delete_event(location_id, event_id)
    except NotFound:
        pass
    except GhlError as exc:
        log.warning("a stray copy of ours could not be removed from GHL yet: %s", type(exc).__name__)
        return
    decided(event_id, "remove_stray", "deleted")


def _active_location(
    conn: Connection, ghl_location_id: str | None, *, warn: bool = True
) -> location_repo.LocationRecord | str:
    """The configured location the event belongs to, or why the event is recorded and ignored."""
    location = location_repo.find_location(conn, ghl_location_id) if ghl_location_id else None
    if location is None:
        if warn:
            log.warning("webhook of a location that is not configured", extra={"location_id": ghl_location_id})
        return "unknown_location"
    if not location.is_active:
        return "location_inactive"
    return location


def _raw_status(event: GhlAppointmentEvent) -> str | None:
    raw = event.appointment.appointment_status
    return raw[:64] if raw else None


# --- contacts -----------------------------------------------------------------------------------------------


def _fetch_contact(work: Work, message: WebhookMessage, location_id: str, contact_id: str) -> GhlContact | None:
    """The contact as GHL has it. A rate limit or outage retries the message later (bounded); after that, or
    when GHL refuses for good, the appointment is taken without the contact's details rather than lost."""
    try:
        found = work.ghl.get_contact(location_id, contact_id)
    except GhlError as exc:
        tries = message.attempt + message.requeues
        if exc.retry is not None and exc.retry is not ErrorKind.auth_expired and tries < CONTACT_TRIES:
            raise later_for(exc) from exc
        log.warning("contact of a GHL appointment not readable: %s", type(exc).__name__)
        return None
    return GhlContact(
        id=found.id,
        first_name=found.firstName,
        last_name=found.lastName,
        name=found.name,
        email=found.email,
        phone=found.phone,
    )


def _patient_link(
    work: Work,
    conn: Connection,
    location: location_repo.LocationRecord,
    contact_id: str | None,
    contact: GhlContact | _Unread | None,
) -> int | None:
    """The patient mapping of a GHL contact: the existing one, else a new `ghl:<contactId>` patient (with GHL's
    details of the contact: `_ContactNeeded` until they have been read)."""
    if contact_id is None:
        return None
    links = contact_repo.find_by_ghl_contact(conn, location.id, contact_id)
    if links:
        return links[0].id
    if isinstance(contact, _Unread):
        raise _ContactNeeded(location.ghl_location_id, contact_id)
    values: dict[str, Any] = {"ghl_contact_id": contact_id, "flags": [] if contact else [CONTACT_MISSING_FLAG]}
    if contact is not None:
        values.update(_patient_values(contact))
    return contact_repo.upsert_patient(conn, location.id, f"ghl:{contact_id}", values, work.now()).id


def _apply_contact(work: Work, conn: Connection, event: GhlContactEvent) -> _Applied:
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
    now = work.now()
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


# --- failures -----------------------------------------------------------------------------------------------


def _record_failure(work: Work, message: WebhookMessage, error: Exception, started: float) -> None:
    """Count the failed attempt in the inbox (metrics); the message itself goes back to the queue."""
    result = inbox.Result(
        success=False,
        outcome="failed",
        duration_ms=_elapsed_ms(started),
        processed_at=work.now(),
        error=type(error).__name__,  # never the message: it may quote patient data
    )
    try:
        with work.transaction() as conn:
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


def _subject(message: WebhookMessage) -> dict[str, Any]:
    event = message.event
    return {
        "event_type": event.type,
        "ghl_event_id": event.appointment.id if isinstance(event, GhlAppointmentEvent) else None,
        "dedupe_key": message.dedupe_key[:80],
    }


JOB = Job(queue=GHL_TO_RV3, model=WebhookMessage, handle=_handle, subject=_subject)
