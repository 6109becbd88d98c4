"""The `rv3-to-ghl` worker: make GHL hold the appointment's current state, exactly once in effect.

Messages only name an outbox entry; the worker takes the appointment's sync lease, reads it as it is NOW and
does what `sync_core.protocol.plan_push` says: nothing (GHL holds it), wait, look for a create whose outcome is
unknown, or send the full state. A write is recorded in the appointment's facts BEFORE it is sent, and GHL's
answer (accepted, refused, unknown, not sent) after, so that GHL's echo of it is known as ours whatever the
order, and a crash between the two leaves a write of unknown outcome, never a lost or repeated one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from shared import telemetry
from shared.ghl.errors import GhlError, Invalid, NotFound
from shared.queues import RV3_TO_GHL, QueueMessage
from shared.services import dispatch
from shared.services.sync_store import Stored, decided, store_observed, transition
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import outbox
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, later_for, run
from sync_core import protocol
from sync_core.contacts import Patient, build_contact
from sync_core.ghl_appointments import parse_ghl_appointment
from sync_core.ghl_payloads import create_body, update_body
from sync_core.models import ConflictPolicy
from sync_core.retry import ErrorKind
from sync_core.times import parse_ghl_time

log = telemetry.get_logger("outbound")

CONTACT_LEASE = timedelta(seconds=60)
# One worker at a time pushes an appointment. The lease is renewed right before each GHL write, so it only has
# to outlast one call; a write not answered within it has an unknown outcome (see `protocol.MAX_REQUEST`).
SYNC_LEASE = protocol.MAX_REQUEST
LOOKUP_MARGIN = timedelta(minutes=1)
MAX_STEPS = 4  # plan → look up → send → send again (GHL's state became unknown meanwhile), in one delivery
HELD_RETRY_S = 2.0


class OutboundMessage(QueueMessage):
    op_id: str
    appointment_id: int
    operation: str = "sync"
    version: int = 1


def process(raw: dict[str, Any], work: Work | None = None) -> Result:
    """Handle one `rv3-to-ghl` message (see `shared.worker.run`)."""
    return run(JOB, raw, work or Work.current())


@dataclass
class _Lease:
    work: Work
    appointment_id: int
    until: datetime
    held: bool


def _handle(work: Work, message: OutboundMessage) -> Result:
    now = work.now()
    lease = _Lease(work, message.appointment_id, now + SYNC_LEASE, held=False)
    try:
        with work.transaction() as conn:
            entry = outbox.get(conn, message.op_id)
            if entry is None:
                return Result(Outcome.failed, "unknown outbox entry")
            if entry.status in (outbox.DONE, outbox.FAILED):
                return Result(Outcome.duplicate, "already processed")
            if not repo.claim_sync(conn, message.appointment_id, now, lease.until):
                raise Later(ErrorKind.rate_limited, "appointment being synced by another worker",
                            retry_after=HELD_RETRY_S)  # fmt: skip
            record = repo.get(conn, message.appointment_id)
            assert record is not None
            # Decided in the transaction that took the lease, unless the patient's GHL contact must be made first.
            due = _contact_due(work, conn, record)
            first = _plan(work, conn, record, message, lease) if due is None else None
    except repo.Contention:
        raise Later(ErrorKind.rate_limited, "appointment changed meanwhile", retry_after=HELD_RETRY_S) from None
    lease.held = True
    try:
        # A new contact: its upsert and the create after it take their two rate slots at once.
        calls = 2 if due is not None and due.link.ghl_contact_id is None else 1
        with work.ghl.calls_in_a_row(record.ghl_location_id, calls):
            if first is None:
                assert due is not None
                first = _with_contact(work, message, record, lease, due)
            return _push(work, message, lease, first)
    except repo.LeaseLost:
        raise Later(ErrorKind.rate_limited, "sync lease lost", retry_after=HELD_RETRY_S) from None
    finally:
        if lease.held:
            with work.transaction() as conn:
                repo.release_sync(conn, lease.appointment_id, lease.until)


@dataclass(frozen=True)
class _Planned:
    plan: protocol.PushPlan
    lease_until: datetime
    row: repo.AppointmentRecord  # as read when planned (where to send: location, calendar, time zone)


def _push(work: Work, message: OutboundMessage, lease: _Lease, planned: _Planned) -> Result:
    for _step in range(MAX_STEPS):
        plan, record = planned.plan, planned.row
        lease.until = planned.lease_until
        decided(record.id, "push", plan.kind.value, reason=plan.reason, op_id=message.op_id)
        if plan.kind is protocol.PushKind.skip:
            lease.held = False
            return Result(Outcome.skipped, plan.reason)
        if plan.kind is protocol.PushKind.wait:
            raise Later(ErrorKind.rate_limited, plan.reason, retry_after=plan.wait_s)
        if plan.kind is protocol.PushKind.lookup:
            _look_up(work, record, plan)
        elif plan.kind is protocol.PushKind.read:
            gone = _read_again(work, message, record, lease)
            if gone is not None:
                return gone
        else:
            result = _send(work, message, record, plan, lease)
            if result is not None:
                return result
        planned = transition(work, record.id, lambda conn, row: _plan(work, conn, row, message, lease))
    raise Later(ErrorKind.rate_limited, "GHL's state is still unsettled", retry_after=HELD_RETRY_S)


def _plan(
    work: Work, conn: Connection, row: repo.AppointmentRecord, message: OutboundMessage, lease: _Lease
) -> _Planned:
    """Decide and store in one transaction: a write is recorded (the lease renewed in the same statement) before
    it is sent; a skip closes the outbox entry and gives the lease back."""
    now = work.now()
    plan = protocol.plan_push(repo.sync_record(row), now=now)
    until = lease.until
    change = None
    if plan.write is not None:
        until = now + SYNC_LEASE
        change = repo.LeaseChange(lease.until, until)
    elif plan.kind is protocol.PushKind.skip:
        change = repo.LeaseChange(lease.until)
    try:
        repo.save_sync(conn, row, plan.record, lease=change)
    except repo.LeaseLost:
        lease.held = False
        raise
    if plan.kind is protocol.PushKind.skip:
        outbox.finish(conn, message.op_id, now)
    return _Planned(plan, until, row)


def _close(work: Work, conn: Connection, message: OutboundMessage, appointment_id: int, lease_until: datetime) -> None:
    """Close the outbox entry and give the sync lease back, after a step stored without `save_sync`'s lease
    change (the caller marks the lease released on commit)."""
    outbox.finish(conn, message.op_id, work.now())
    repo.release_sync(conn, appointment_id, lease_until)


def _send(
    work: Work, message: OutboundMessage, record: repo.AppointmentRecord, plan: protocol.PushPlan, lease: _Lease
) -> Result | None:
    """Send the plan's write and record GHL's answer. The result, or None when GHL is to be sent the state again
    (it changed meanwhile, or what GHL holds is not known)."""
    write = plan.write
    assert write is not None
    appointment = plan.record.appointment
    try:
        if write.kind == "create":
            event = work.ghl.create_appointment(
                record.ghl_location_id, dict(create_body(appointment, timezone=record.timezone))
            )
        else:
            assert appointment.ghl_event_id is not None
            event = work.ghl.update_appointment(
                record.ghl_location_id,
                appointment.ghl_event_id,
                dict(update_body(appointment, timezone=record.timezone)),
            )
    except GhlError as exc:
        return _after_ghl_error(work, message, record, write, exc=exc, lease=lease)
    decided(record.id, "push_answered", "accepted", write=write.id, kind=write.kind)

    def accepted(conn: Connection, row: repo.AppointmentRecord) -> protocol.SyncRecord:
        answered = protocol.push_answered(
            repo.sync_record(row), write.id, protocol.Answer.accepted, now=work.now(), event_id=event.id,
            ghl_at=parse_ghl_time(event.dateUpdated, record.timezone) if event.dateUpdated else None,
        )  # fmt: skip
        done = not answered.needs_push
        repo.save_sync(conn, row, answered, lease=repo.LeaseChange(lease.until) if done else None)
        if done:
            outbox.finish(conn, message.op_id, work.now())
        return answered

    answered = transition(work, record.id, accepted)
    if answered.needs_push:
        return None
    lease.held = False
    return Result(Outcome.applied, write.kind)


def _answer(
    work: Work, appointment_id: int, write: protocol.Write, answer: protocol.Answer, *, reason: str | None = None
) -> protocol.SyncRecord:
    """Record GHL's answer on the appointment as it is now (webhooks and edits may have changed it meanwhile)."""

    def record(conn: Connection, row: repo.AppointmentRecord) -> protocol.SyncRecord:
        answered = protocol.push_answered(repo.sync_record(row), write.id, answer, now=work.now(), reason=reason)
        repo.save_sync(conn, row, answered)
        return answered

    return transition(work, appointment_id, record)


def _after_ghl_error(
    work: Work,
    message: OutboundMessage,
    record: repo.AppointmentRecord,
    write: protocol.Write,
    *,
    exc: GhlError,
    lease: _Lease,
) -> Result:
    """A refusal is recorded for staff (`sync_state: error` with GHL's reason); an event GHL no longer has is
    taken as deleted in GHL; anything else comes back later, the write's outcome recorded as GHL's answer says."""
    decided(record.id, "push_answered", type(exc).__name__, write=write.id, kind=write.kind)
    if isinstance(exc, NotFound) and write.kind == "update":
        _answer(work, record.id, write, protocol.Answer.not_sent)
        return _deleted_in_ghl(work, message, record.id, lease)
    if isinstance(exc, Invalid | NotFound):
        text = _rejection_text(exc)
        telemetry.validation_rejected("ghl", f"ghl_{exc.code}", operation="sync.rv3_to_ghl")

        def refused(conn: Connection, row: repo.AppointmentRecord) -> None:
            answered = protocol.push_answered(
                repo.sync_record(row), write.id, protocol.Answer.refused, now=work.now(), reason=text
            )
            repo.save_sync(conn, row, answered, lease=repo.LeaseChange(lease.until))
            outbox.finish(conn, message.op_id, work.now(), failed=True, error=text)

        transition(work, record.id, refused)
        lease.held = False
        return Result(Outcome.failed, text)
    later = later_for(exc)
    answer = protocol.Answer.unknown if later.kind is ErrorKind.outcome_unknown else protocol.Answer.not_sent
    _answer(work, record.id, write, answer)
    raise later


def _deleted_in_ghl(work: Work, message: OutboundMessage, appointment_id: int, lease: _Lease) -> Result:
    """The event is gone from GHL (deleted, its webhook not here yet): as its AppointmentDelete would say."""
    policy = _policy(work)

    def deleted(conn: Connection, row: repo.AppointmentRecord) -> Stored:
        assert row.ghl_event_id is not None
        gone = parse_ghl_appointment({"id": row.ghl_event_id}, tz=row.timezone)
        seen = protocol.observation_of(gone, deleted=True, seen_at=work.now())
        observed = protocol.observe(repo.sync_record(row), seen, policy=policy)
        stored = store_observed(work, conn, row, observed, event="push_not_found", policy=policy, now=work.now())
        _close(work, conn, message, row.id, lease.until)
        return stored

    stored = transition(work, appointment_id, deleted)
    lease.held = False
    for entry in stored.entries:
        dispatch.send(work, entry)
    return Result(Outcome.applied, "deleted_in_ghl")


def _look_up(work: Work, record: repo.AppointmentRecord, plan: protocol.PushPlan) -> None:
    """Look in GHL for the event a create of unknown outcome made; adopt it (and take what GHL holds of it), or
    know that none landed."""
    events: list[Any] = []
    for write in plan.creates:
        start = write.fields.start
        calendar_id = write.fields.calendar_id or record.calendar_id
        events.extend(
            work.ghl.list_events(
                record.ghl_location_id, calendar_id=calendar_id, start=start - LOOKUP_MARGIN, end=start + LOOKUP_MARGIN
            )
        )
    with work.transaction() as conn:
        # An event another appointment holds is not ours to adopt (the same patient's other booking).
        free = [e for e in events if repo.find_by_ghl_event(conn, record.location_id, e.id) is None]
    candidates = [parse_ghl_appointment(event.model_dump(), tz=record.timezone) for event in free]
    found = protocol.adoptable(plan.creates, candidates)
    decided(record.id, "lookup", "adopted" if found else "absent", event_id=found.id if found else None)
    policy = _policy(work)

    def adopt(conn: Connection, row: repo.AppointmentRecord) -> None:
        linked, observed = protocol.lookup_answered(repo.sync_record(row), plan.creates, found, now=work.now())
        if observed is None:
            repo.save_sync(conn, row, linked)
            return
        # Linked and observed in one step: the outbox entry this message serves pushes what is still due.
        store_observed(work, conn, row, observed, event="lookup", policy=policy, now=work.now())

    transition(work, record.id, adopt)


def _read_again(work: Work, message: OutboundMessage, record: repo.AppointmentRecord, lease: _Lease) -> Result | None:
    """Read GHL's event and decide on the change GHL made that nobody decided on yet (`protocol.observe`), before
    anything is sent over it. The result when the event is gone; None to plan again."""
    assert record.ghl_event_id is not None
    try:
        event = work.ghl.get_event(record.ghl_location_id, record.ghl_event_id)
    except NotFound:
        return _deleted_in_ghl(work, message, record.id, lease)
    seen = protocol.observation_of(parse_ghl_appointment(event.model_dump(), tz=record.timezone), seen_at=work.now())
    policy = _policy(work)

    def observed(conn: Connection, row: repo.AppointmentRecord) -> Stored:
        outcome = protocol.observe(repo.sync_record(row), seen, policy=policy)
        return store_observed(work, conn, row, outcome, event="read", policy=policy, now=work.now())

    stored = transition(work, record.id, observed)
    for entry in stored.entries:
        dispatch.send(work, entry)
    return None


def _exhausted(work: Work, message: OutboundMessage, note: str) -> Result:
    """Retries used up (an hour of GHL outage, say): shown as an error until the state changes or staff retry."""
    text = f"No se pudo sincronizar con GoHighLevel tras varios intentos ({note})."

    def gave_up(conn: Connection, row: repo.AppointmentRecord) -> None:
        repo.save_sync(conn, row, protocol.gave_up(repo.sync_record(row), text))
        outbox.finish(conn, message.op_id, work.now(), failed=True, error=text)

    transition(work, message.appointment_id, gave_up)
    log.warning(
        "appointment sync failed permanently",
        extra={"operation": "outbound_sync", "success": False, "appointment_id": message.appointment_id},
    )
    return Result(Outcome.failed, text)


# GHL's refusals staff meet most, said in Spanish; any other is shown as GHL wrote it.
GHL_REFUSALS = {
    "The slot you have selected is no longer available.": "el horario ya no está disponible en su calendario",
}


def _rejection_text(exc: GhlError) -> str:
    if isinstance(exc, NotFound):
        return "GoHighLevel no encontró el calendario, el contacto o el evento de la cita."
    details = "; ".join(GHL_REFUSALS.get(detail, detail) for detail in getattr(exc, "details", []) or []).rstrip(".")
    return f"GoHighLevel rechazó la cita: {details}." if details else "GoHighLevel rechazó la cita."


def _policy(work: Work) -> ConflictPolicy:
    return ConflictPolicy(work.settings.conflict_policy)


@dataclass(frozen=True)
class _ContactDue:
    """The patient's GHL contact to resolve before the first push: upserted in GHL unless already known."""

    link: contact_repo.ContactLink


def _contact_due(work: Work, conn: Connection, record: repo.AppointmentRecord) -> _ContactDue | None:
    """None when the appointment's GHL contact is known; else the contact to resolve, its lease taken (`Later`
    while another worker resolves it)."""
    if record.contact_id is not None or record.patient_contact_id is None:
        return None
    link = contact_repo.get(conn, record.patient_contact_id)
    assert link is not None
    now = work.now()
    if link.ghl_contact_id is None and not contact_repo.claim_resolution(conn, link.id, now, now + CONTACT_LEASE):
        raise Later(ErrorKind.rate_limited, "contact being resolved", retry_after=HELD_RETRY_S)
    return _ContactDue(link)


def _with_contact(
    work: Work, message: OutboundMessage, record: repo.AppointmentRecord, lease: _Lease, due: _ContactDue
) -> _Planned:
    """Upsert the patient's contact in GHL (once per patient), then link it and plan the push in one transaction."""
    link = due.link
    ghl_contact_id = link.ghl_contact_id
    if ghl_contact_id is None:
        patient = Patient(name=link.full_name or "Paciente", phone=link.phone, email=link.email)
        draft = build_contact(patient, record.ghl_location_id)
        try:
            contact, _created = work.ghl.upsert_contact(record.ghl_location_id, draft.ghl_body())
        except GhlError as exc:
            with work.transaction() as conn:
                contact_repo.release_resolution(conn, link.id)
            if exc.retry is None:
                raise Later(ErrorKind.connection, f"contact refused ({exc.code})") from exc
            raise later_for(exc) from exc
        ghl_contact_id = contact.id

    def linked(conn: Connection, row: repo.AppointmentRecord) -> _Planned:
        if link.ghl_contact_id is None:
            contact_repo.set_ghl_contact(conn, link.id, ghl_contact_id, link.flags, work.now())
        repo.set_sync_result(conn, row.id, {"contact_id": ghl_contact_id})  # neither a version nor a sync step
        return _plan(work, conn, replace(row, contact_id=ghl_contact_id), message, lease)

    return transition(work, record.id, linked)


JOB = Job(
    queue=RV3_TO_GHL,
    model=OutboundMessage,
    handle=_handle,
    exhausted=_exhausted,
    subject=lambda message: {"appointment_id": message.appointment_id, "op_id": message.op_id},
)
