"""GHL → RV3 write-back: GHL's reschedules, cancellations, attendance and bookings written into RV3's tables.

The `ghl-to-rv3` worker records what is to be written in the SAME transaction as the GHL change it applies
(`record_ghl_change`, `record_ghl_booking`), so it is never lost; the capture run writes it (`flush_pending`)
right before it reads RV3. Writing from the capture's own run, never beside it, means RV3 is never read by the
capture while the sync writes to it: a stale read can never undo a write-back, nor send GHL back and forth.
Each write runs in one RV3 transaction under a row lock and is decided by `sync_core.rv3_mapping.decide_writeback`:
a front-desk edit of the same columns since the sync last read the row is never overwritten, it is recorded as a
conflict and reaches GHL instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.rv3.port import Rv3Refused, Rv3Unavailable
from shared.services import rv3_source
from shared.settings import Settings
from shared.store import appointments as repo
from shared.store import conflicts as conflict_repo
from shared.store import contacts as contact_repo
from shared.store import locations as location_repo
from shared.store import rv3 as store
from shared.work import Work
from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import (
    REFUSED,
    STATUS_MISSING,
    GhlPerson,
    Rv3Appointment,
    Rv3Patient,
    Rv3Snapshot,
    Rv3Write,
    WritebackKind,
    after_write,
    decide_writeback,
    match_patient,
    new_rv3_appointment,
    new_rv3_patient,
    refusal,
    rv3_wall_clock,
    unwritable_status,
    writeback_target,
)
from sync_core.rv3_statuses import LABELS, Rv3StatusMap

log = telemetry.get_logger("rv3_writeback")

LEASE = timedelta(seconds=60)
FLUSH_LIMIT = 100
CONFLICT_POLICY = "rv3_row_changed"  # recorded in `conflicts.policy`: the front desk's edit stands
UNREACHABLE = "rv3_unreachable"
UNAVAILABLE = "rv3_unavailable"  # `last_error` prefix: RV3 is down (retried); refusals: `sync_core.rv3_mapping`
UNKNOWN_CONTACT = "unknown_contact"
PATIENT_NOT_CREATED = "patient_not_created"


# --- inside the inbound worker's transaction ---------------------------------------------------------------


def record_ghl_change(settings: Settings, conn: Connection, appointment_id: int, now: datetime) -> None:
    """A GHL change was applied to an appointment: if it is linked to RV3, RV3 is to take it too."""
    if not rv3_source.configured(settings):
        return
    link = store.get_link(conn, appointment_id)
    if link is None or link.writeback in (store.WRITE_CREATE, store.WRITE_REVIEW):
        return  # not in RV3, or not yet: its creation takes the latest state
    store.update_link(conn, appointment_id, {"writeback": store.WRITE_UPDATE, "attempts": 0}, now)


def record_ghl_booking(
    settings: Settings, conn: Connection, location: location_repo.LocationRecord, appointment_id: int, now: datetime
) -> None:
    """An appointment was booked in GHL (booking widget, GHL's UI): RV3 is to get it, for the right patient."""
    if not rv3_source.configured(settings):
        return
    where = rv3_source.location(settings, conn)
    record = repo.get(conn, appointment_id)
    if where is None or where.id != location.id or record is None:
        return
    if record.status == AppointmentStatus.cancelled.value:
        return
    store.add_link(conn, appointment_id, {"writeback": store.WRITE_CREATE}, now)


def request_writeback(conn: Connection, appointment_id: int, now: datetime) -> None:
    """RV3 lacks the sync's state of a linked appointment (a write-back was lost): write it again, or create
    the RV3 appointment of a GHL booking RV3 never got. The capture run writes it, as any write-back."""
    record = repo.get(conn, appointment_id)
    if record is None:
        return
    pending = store.WRITE_UPDATE if record.rv3_appointment_id is not None else store.WRITE_CREATE
    store.update_link(conn, appointment_id, {"writeback": pending, "attempts": 0, "last_error": None}, now)


def retry_missing_statuses(work: Work, where: location_repo.LocationRecord, statuses: Rv3StatusMap) -> int:
    """Write-backs that failed for want of an RV3 status RV3 now has (the clinic created and mapped it) are written
    again by the next capture run. Returns how many."""
    retried = 0
    with work.transaction() as conn:
        for write in store.failed_writes(conn, where.id, limit=store.MAX_FAILED_LISTED):
            code, _, detail = (write.last_error or "").partition(": ")
            known = code == STATUS_MISSING and detail in AppointmentStatus.__members__
            if known and statuses.row_for(AppointmentStatus(detail)) is not None:
                request_writeback(conn, write.appointment_id, work.now())
                retried += 1
    return retried


# --- in the capture run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """What a flush did to one appointment (for logs, the review endpoint and tests)."""

    result: str  # write | already | conflict | missing | created | review | busy | failed | rv3_unreachable | skipped
    rv3_appointment_id: int | None = None


def flush(work: Work, appointment_ids: Iterable[int]) -> list[Written]:
    """Write the pending changes of these appointments to RV3. Never raises: what fails stays pending, and
    once RV3 is found unreachable the rest wait for the next run instead of each waiting for a timeout."""
    results: list[Written] = []
    for appointment_id in appointment_ids:
        results.append(_flush_one(work, appointment_id))
        if results[-1].result == UNREACHABLE:
            break
    return results


def flush_pending(work: Work, limit: int = FLUSH_LIMIT) -> list[Written]:
    with work.transaction() as conn:
        pending = store.pending_writes(conn, limit)
    return flush(work, pending)


def _flush_one(work: Work, appointment_id: int) -> Written:
    now = work.now()
    until = now + LEASE
    db = work.database
    try:
        with db.transaction() as conn:
            if not store.claim_link(conn, appointment_id, now, until):
                return Written("busy")
        try:
            return _write(work, appointment_id)
        finally:
            with db.transaction() as conn:
                store.release_link(conn, appointment_id, until)
    except Rv3Unavailable as exc:
        return _failed(work, appointment_id, UNAVAILABLE, str(exc), permanent=False)
    except Rv3Refused as exc:
        # RV3 refused the row (a NOT NULL column of a newer RV3 schema...): retrying will not change that, and
        # the other write-backs go on.
        detail = f"MySQL {exc.code}: {exc.reason}" if exc.code else exc.reason
        return _failed(work, appointment_id, REFUSED, detail, permanent=True)
    except sa.exc.OperationalError as exc:
        return _failed(work, appointment_id, "database_unavailable", type(exc).__name__, permanent=False)
    except sa.exc.SQLAlchemyError as exc:
        return _failed(work, appointment_id, REFUSED, type(exc).__name__, permanent=True)


def _failed(work: Work, appointment_id: int, code: str, detail: str, *, permanent: bool) -> Written:
    log.warning(
        "write-back to RV3 failed (%s): %s",
        code,
        detail,
        extra={"operation": "rv3_writeback", "success": False, "appointment_id": appointment_id},
    )
    try:
        with work.transaction() as conn:
            link = store.get_link(conn, appointment_id)
            if link is not None:
                values: dict[str, object] = {"attempts": link.attempts + 1, "last_error": refusal(code, detail)}
                if permanent:
                    values["writeback"] = store.WRITE_FAILED
                store.update_link(conn, appointment_id, values, work.now())
    except sa.exc.SQLAlchemyError:
        log.warning("could not record the failed write-back of appointment %s", appointment_id)
    return Written(UNREACHABLE if code == UNAVAILABLE else "failed")


def _stamp(work: Work, where: location_repo.LocationRecord) -> datetime:
    """RV3's `updated_at` for a write now: its own convention, from our clock (never the database's)."""
    return rv3_wall_clock(work.now(), where.timezone)


@dataclass(frozen=True)
class _Job:
    record: repo.AppointmentRecord
    link: store.Link
    where: location_repo.LocationRecord


def _job(work: Work, appointment_id: int) -> _Job | None:
    with work.transaction() as conn:
        link = store.get_link(conn, appointment_id)
        record = repo.get(conn, appointment_id)
        where = location_repo.get_location(conn, record.location_id) if record else None
    if link is None or record is None or where is None or link.writeback not in store.PENDING_WRITES:
        return None
    return _Job(record, link, where)


def _write(work: Work, appointment_id: int) -> Written:
    job = _job(work, appointment_id)
    if job is None:
        return Written("skipped")
    if job.link.writeback == store.WRITE_CREATE:
        return _create(work, job)
    return _update(work, job)


def _update(work: Work, job: _Job) -> Written:
    record, link = job.record, job.link
    if record.rv3_appointment_id is None:
        return _finish(work, job, {"writeback": None})
    source = work.rv3
    statuses = _statuses(work, job)
    target = writeback_target(rv3_source.synced_values(record), job.where.timezone, statuses)
    decided: list[WritebackKind] = []

    def decide(row: Rv3Appointment | None) -> Rv3Write | None:
        kind = decide_writeback(link.snapshot, Rv3Snapshot.of(row) if row else None, target)
        decided.append(kind)
        return target if kind is WritebackKind.write else None

    before, after = source.write_appointment(int(record.rv3_appointment_id), decide, stamp=_stamp(work, job.where))
    kind = decided[0] if decided else WritebackKind.missing
    if kind is WritebackKind.conflict:
        assert before is not None
        _record_conflict(work, job, Rv3Snapshot.of(before), target)
        return _finish(work, job, {"writeback": None}, Written("conflict"))
    if kind is WritebackKind.missing or before is None:
        return _finish(work, job, {"writeback": None}, Written("missing"))
    base = link.snapshot or Rv3Snapshot.of(before)
    values: dict[str, object] = {"snapshot": after_write(base, target), "writeback": None}
    if kind is WritebackKind.write and after is not None:
        values["written_stamp"] = store.stamp_text(after.updated_at)
    lacking = unwritable_status(Rv3Snapshot.of(before), target, statuses)
    if lacking is not None:
        # The date and hour are written; the status cannot be: RV3 has no status for it. Reported as a refused
        # write (status, reconciliation) until the clinic creates and maps one (`PUT /api/rv3/statuses`).
        _alert_status_missing(job, lacking)
        values.update(writeback=store.WRITE_FAILED, last_error=refusal(STATUS_MISSING, lacking.value))
        return _finish(work, job, values, Written("failed", before.id))
    return _finish(work, job, values, Written(kind.value, before.id))


def _statuses(work: Work, job: _Job) -> Rv3StatusMap:
    rows = work.rv3.statuses()
    with work.transaction() as conn:
        return rv3_source.status_map(conn, job.where, rows)


def _alert_status_missing(job: _Job, status: AppointmentStatus) -> None:
    telemetry.alert(
        "rv3_status_missing",
        f"Reflexo V3 no tiene un estado para «{LABELS[status]}»: un cambio de GoHighLevel no se pudo escribir.",
        location_id=job.where.ghl_location_id,
        appointment_id=job.record.id,
        status=status.value,
    )


def _finish(work: Work, job: _Job, values: Mapping[str, object], written: Written | None = None) -> Written:
    """Store the link's new state; a GHL change that arrived meanwhile is written next."""
    with work.transaction() as conn:
        current = repo.get(conn, job.record.id)
        settled = values.get("writeback") in (None, store.WRITE_FAILED)
        if current is not None and current.version != job.record.version and settled:
            values = {**values, "writeback": store.WRITE_UPDATE}
        store.update_link(conn, job.record.id, {"attempts": 0, "last_error": None, **values}, work.now())
    return written or Written("skipped")


def _record_conflict(work: Work, job: _Job, rv3_now: Rv3Snapshot, target: Rv3Write) -> None:
    log.info(
        "front-desk edit kept over a GHL change",
        extra={"operation": "rv3_writeback", "appointment_id": job.record.id, "detail": "conflict"},
    )
    with work.transaction() as conn:
        conflict_repo.record(
            conn,
            appointment_id=job.record.id,
            policy=CONFLICT_POLICY,
            winner="rv3",
            rv3_values={
                "day": rv3_now.day.isoformat(),
                "hour": rv3_now.hour.isoformat() if rv3_now.hour else None,
                "status": rv3_now.status,
            },
            ghl_values={"day": target.day.isoformat(), "hour": target.hour.isoformat(), "status": target.status_name},
            now=work.now(),
        )


# --- bookings made in GHL ------------------------------------------------------------------------------------


def _create(work: Work, job: _Job) -> Written:
    record = job.record
    if record.rv3_appointment_id is not None:  # adopted by the capture meanwhile
        return _finish(work, job, {"writeback": None, "create_marker": None}, Written("created"))
    if record.status == AppointmentStatus.cancelled.value:
        return _finish(work, job, {"writeback": None, "create_marker": None}, Written("skipped"))
    source = work.rv3
    marker = job.link.create_marker or {}
    patient = _patient_for(work, job, marker.get("patient_id"))
    if isinstance(patient, str):
        with work.transaction() as conn:
            store.open_review(conn, job.where.id, record.id, patient, work.now())
        return _finish(work, job, {"writeback": store.WRITE_REVIEW}, Written("review"))
    statuses = source.statuses()
    with work.transaction() as conn:
        rules = rv3_source.mapping_rules(work.settings, conn, job.where, work.now(), statuses=statuses)
        link = rv3_source.link_patient(conn, job.where, patient, work.now())
        if link.ghl_contact_id is None and record.contact_id is not None:
            # The booking's contact becomes the patient's: it is brought up to RV3's data once.
            contact_repo.set_ghl_contact(conn, link.id, record.contact_id, link.flags, work.now())
            store.save_patient_state(conn, job.where.id, str(patient.id), {"pushed_hash": None}, work.now())
        repo.set_sync_result(conn, record.id, {"patient_contact_id": link.id})
    new = new_rv3_appointment(
        rv3_source.synced_values(record),
        patient_id=patient.id,
        timezone=job.where.timezone,
        statuses=rules.statuses,
    )
    marker = {"patient_id": patient.id, "day": new.day.isoformat(), "hour": new.hour.isoformat()}
    with work.transaction() as conn:
        # Named before the insert: if the insert's outcome is lost, the row is found by it, never made twice.
        store.update_link(conn, record.id, {"create_marker": marker}, work.now())
    created = _existing(work, job, patient.id, new.day, marker) or source.create_appointment(
        new, stamp=_stamp(work, job.where)
    )
    with work.transaction() as conn:
        current = repo.get(conn, record.id)
        if current is not None and current.rv3_appointment_id is None:
            repo.set_sync_result(conn, record.id, {"rv3_appointment_id": str(created.id)})
        store.resolve_review(conn, record.id, str(patient.id), work.now())
    values = {
        "snapshot": new.snapshot(),
        "written_stamp": store.stamp_text(created.updated_at),
        "writeback": None,
        "create_marker": None,
    }
    return _finish(work, job, values, Written("created", created.id))


def _existing(work: Work, job: _Job, patient_id: int, day: date, marker: dict[str, object]) -> Rv3Appointment | None:
    """The row an earlier attempt of this create inserted, if its outcome was lost."""
    candidates = [
        row
        for row in work.rv3.find_appointments(patient_id=patient_id, day=day)
        if row.hour is not None and row.hour.isoformat() == marker["hour"]
    ]
    if not candidates:
        return None
    with work.transaction() as conn:
        taken = store.linked_by_rv3_id(conn, job.where.id, [str(row.id) for row in candidates])
    free = [row for row in candidates if str(row.id) not in taken]
    return free[0] if free else None


def _patient_for(work: Work, job: _Job, chosen: object) -> Rv3Patient | str:
    """The RV3 patient of a GHL booking, or why the front desk has to say (the review reason)."""
    source = work.rv3
    with work.transaction() as conn:
        person, known = _person(conn, job)
    for candidate in (chosen, known):
        if isinstance(candidate, int):
            found = source.patients([candidate])
            if found and not found[0].deleted:
                return found[0]
    digits = person.phone[-9:] if person.phone else None
    matched = match_patient(person, source.find_patients(email=person.email, phone_digits=digits))
    if matched is not None:
        return matched
    if not job.where.create_patients_from_ghl:
        return UNKNOWN_CONTACT
    return _create_patient(work, job, person)


def _create_patient(work: Work, job: _Job, person: GhlPerson) -> Rv3Patient | str:
    new = new_rv3_patient(person)
    if new is None:
        return PATIENT_NOT_CREATED
    try:
        created = work.rv3.create_patient(new, stamp=_stamp(work, job.where))
    except Rv3Refused:
        # RV3's own rules refuse it (a required document number, a duplicate email): a person decides.
        return PATIENT_NOT_CREATED
    with work.transaction() as conn:
        rv3_source.link_patient(conn, job.where, created, work.now())
        values = {"written_stamp": store.stamp_text(created.updated_at)}
        store.save_patient_state(conn, job.where.id, str(created.id), values, work.now())
    return created


def _person(conn: Connection, job: _Job) -> tuple[GhlPerson, int | None]:
    """The booking's GHL contact as the sync knows it, and the RV3 patient already linked to that contact."""
    record = job.record
    known: int | None = None
    links = contact_repo.find_by_ghl_contact(conn, job.where.id, record.contact_id) if record.contact_id else []
    for link in links:
        if link.rv3_patient_id is not None and link.rv3_patient_id.isdigit():
            known = int(link.rv3_patient_id)
            break
    source_link = contact_repo.get(conn, record.patient_contact_id) if record.patient_contact_id else None
    source_link = source_link or (links[0] if links else None)
    if source_link is None:
        return GhlPerson(), known
    return GhlPerson(name=source_link.full_name, phone=source_link.phone, email=source_link.email), known
