"""RV3 → GHL change capture: RV3's changed rows since a persisted cursor, fed to the one outbox pipeline.

Every run (a timer, `RV3_POLL_SCHEDULE`) reads RV3's appointments and patients in (`updated_at`, `id`) order
from a cursor kept in the sync store, starting `OVERLAP` before it: a transaction may commit a row stamped before
rows already read. RV3 stamps naive Lima wall time (Django `USE_TZ=False`), so the cursor never goes past RV3's now
computed from our clock: a stamp ahead of it (a wrong clock) is read, yet cannot hide the front desk's next edits.
Re-reading is harmless: a row only becomes an outbox entry when its mapped content changed (compared with the RV3 values
remembered per appointment), so the sync's own write-backs and re-reads change nothing. The cursor is saved in
the same transaction as the appointments and outbox entries of each page, so a crash repeats no change and
loses none. Hard deletes are found by a periodic sweep of the linked appointments' ids.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.ghl.errors import GhlError, RateLimited
from shared.http import ApiError
from shared.rv3.port import Rv3Refused, Rv3Unavailable
from shared.services import dispatch, locations, rv3_source, rv3_writeback
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import locations as location_repo
from shared.store import outbox
from shared.store import rv3 as store
from shared.work import Work
from sync_core import protocol
from sync_core.contacts import patient_key
from sync_core.models import Appointment, AppointmentStatus, Source
from sync_core.rv3_mapping import (
    Cursor,
    MappingRules,
    PlanKind,
    Rv3Appointment,
    Rv3Patient,
    Rv3Snapshot,
    Rv3Unreadable,
    SyncedAppointment,
    advance_cursor,
    assign,
    contact_digest,
    contact_for,
    contact_update_body,
    plan_change,
    rv3_wall_clock,
)
from sync_core.rv3_statuses import Rv3StatusMap, changed_meanings, status_key

log = telemetry.get_logger("rv3_capture")

OVERLAP = timedelta(minutes=5)
PAGE_SIZE = 200
RUN_BUDGET_S = 40.0  # of a one-minute timer: the next run continues from the saved cursor
PUSHES_PER_RUN = 50
START = datetime(1970, 1, 1)
UNKNOWN_STATUS = "unknown_rv3_status:"  # the plan's flag for an RV3 status the location's mapping does not know


class _Contention(Exception):
    """Another worker changed the same appointment meanwhile: the page is read again."""


@dataclass
class CaptureReport:
    """What one run did, for logs, status and tests."""

    outcomes: Counter[str] = field(default_factory=Counter)
    contacts_pushed: int = 0
    error: str | None = None


@dataclass
class _Page:
    """One page being applied inside its transaction."""

    conn: Connection
    where: location_repo.LocationRecord
    rules: MappingRules
    now: datetime
    patients: dict[int, Rv3Patient]
    awaiting: list[store.Link] = field(default_factory=list)  # GHL bookings being created in RV3
    entries: list[outbox.OutboxEntry] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)  # RV3 status names met that mean nothing to the sync

    def note(self, flags: list[str]) -> None:
        self.unmapped.update(flag.removeprefix(UNKNOWN_STATUS) for flag in flags if flag.startswith(UNKNOWN_STATUS))


def run(work: Work, now: datetime | None = None) -> CaptureReport:
    """One capture run; never raises for RV3 or GHL being unavailable (the report says so, the next run retries)."""
    report = CaptureReport()
    if not rv3_source.configured(work.settings):
        report.error = "rv3_not_configured"
        return report
    moment = now or work.now()
    deadline = time.monotonic() + RUN_BUDGET_S
    where = _location(work, report)
    if where is None:
        return report
    try:
        report.outcomes.update(f"writeback:{written.result}" for written in rv3_writeback.flush_pending(work))
        if where.default_calendar_id is None:
            report.error = "no_default_calendar"
        else:
            _capture_appointments(work, where, moment, deadline, report)
            _sweep(work, where, moment, report)
        _capture_patients(work, where, moment, deadline, report)
        _sweep_patients(work, where, moment, report)
        push_contacts(work, where, deadline, report)
    except Rv3Unavailable as exc:
        report.error = "rv3_unavailable"
        log.warning("RV3 database unavailable: %s", exc, extra={"operation": "rv3_capture", "success": False})
    except Rv3Refused as exc:
        # RV3 refuses a read (a missing GRANT, a renamed column): the status says so, the next run tries again.
        report.error = "rv3_refused"
        log.warning("RV3 database refused a read: %s", exc, extra={"operation": "rv3_capture", "success": False})
    except _Contention:
        report.error = "contention"
    except Exception:
        report.error = "internal_error"
        raise
    finally:
        _record_run(work, where, report)
        log.info(
            "rv3 capture: %s",
            dict(report.outcomes),
            extra={"operation": "rv3_capture", "success": report.error is None, "error_code": report.error},
        )
    return report


def _location(work: Work, report: CaptureReport) -> location_repo.LocationRecord | None:
    try:
        where = locations.resolve_location(work, None)
    except ApiError as exc:
        report.error = exc.code
        return None
    if not where.is_active:
        report.error = "location_inactive"
        return None
    return where


def _record_run(work: Work, where: location_repo.LocationRecord, report: CaptureReport) -> None:
    try:
        with work.transaction() as conn:
            values = {"last_run_at": work.now(), "last_error": report.error}
            store.save_cursor(conn, where.id, store.APPOINTMENTS, values, work.now())
    except sa.exc.SQLAlchemyError as exc:
        log.warning("could not record the capture run: %s", type(exc).__name__)


def next_scan(conn: Connection, where: location_repo.LocationRecord, now: datetime) -> Cursor:
    """Where the next run starts reading RV3's appointments: a row past it is still to be captured."""
    return _scan_start(store.cursor_state(conn, where.id, store.APPOINTMENTS).mark, _clock_limit(where, now))


def _scan_start(mark: Cursor | None, limit: datetime) -> Cursor:
    if mark is None:
        return Cursor(updated_at=START, id=0)
    return Cursor(updated_at=min(mark.updated_at, limit) - OVERLAP, id=0)


def _clock_limit(where: location_repo.LocationRecord, now: datetime) -> datetime:
    """RV3's now: a stamp ahead of it (a wrong clock) is read, but the cursor never goes past it."""
    return rv3_wall_clock(now, where.timezone)


# --- appointments -------------------------------------------------------------------------------------------


def _capture_appointments(
    work: Work, where: location_repo.LocationRecord, now: datetime, deadline: float, report: CaptureReport
) -> None:
    with work.transaction() as conn:
        mark = store.cursor_state(conn, where.id, store.APPOINTMENTS).mark
    after = _scan_start(mark, _clock_limit(where, now))
    while time.monotonic() < deadline:
        rows = work.rv3.changed_appointments(after=after, limit=PAGE_SIZE)
        if not rows:
            return
        mark = _apply_page(work, where, rows, mark, now=now, report=report)
        last = rows[-1].cursor
        assert last is not None  # rows without a stamp are never returned
        after = last
        if len(rows) < PAGE_SIZE:
            return


def _apply_page(
    work: Work,
    where: location_repo.LocationRecord,
    rows: list[Rv3Appointment | Rv3Unreadable],
    mark: Cursor | None,
    *,
    now: datetime,
    report: CaptureReport,
) -> Cursor | None:
    good = [row for row in rows if isinstance(row, Rv3Appointment)]
    bad = [row for row in rows if isinstance(row, Rv3Unreadable)]
    patients = new_patients(work, where, [row.patient_id for row in good])
    statuses = work.rv3.statuses()
    for attempt in (1, 2):
        try:
            with work.transaction() as conn:
                rules = rv3_source.mapping_rules(work.settings, conn, where, now, statuses=statuses)
                page = _Page(conn, where, rules, now, patients)
                page.awaiting = store.links_awaiting_create(conn, where.id)
                linked = store.linked_by_rv3_id(conn, where.id, [str(row.id) for row in good])
                read: list[Cursor] = [row.cursor for row in bad if row.cursor is not None]
                for row in good:
                    outcome = _apply_row(page, row, linked.get(str(row.id)))
                    page.outcomes[outcome] += 1
                    if outcome != "own_write" and row.cursor is not None:
                        read.append(row.cursor)
                _report_unreadable(page, bad, good)
                mark = advance_cursor(mark, read, not_after=_clock_limit(where, now))
                store.save_cursor(conn, where.id, store.APPOINTMENTS, {"mark": mark}, now)
            break
        except _Contention:
            if attempt == 2:
                raise
    report.outcomes.update(page.outcomes)
    _alert_unmapped(page)
    for entry in page.entries:
        dispatch.send(work, entry)
    return mark


def _alert_unmapped(page: _Page) -> None:
    """Say loudly that RV3 rows carry a status the sync cannot read: their status does not reach GHL."""
    if page.unmapped:
        names = sorted(page.unmapped)
        telemetry.alert(
            "rv3_status_unmapped",
            f"{sum(page.unmapped.values())} citas de Reflexo V3 tienen un estado sin asignar ({', '.join(names)}): "
            "su estado no llega a GoHighLevel. Asígnelo en PUT /api/rv3/statuses.",
            location_id=page.where.ghl_location_id,
            statuses=names,
        )


def _report_unreadable(page: _Page, bad: list[Rv3Unreadable], good: list[Rv3Appointment]) -> None:
    """Rows RV3 accepted but the sync cannot map are listed in the status, not retried; a fixed row leaves it."""
    for row in bad:
        page.outcomes[f"unreadable:{row.reason}"] += 1
        log.warning(
            "RV3 appointment %s skipped: %s",
            row.id,
            row.reason,
            extra={"operation": "rv3_capture", "success": False, "error_code": f"rv3_row_{row.reason}"},
        )
    rejected = [(str(row.id), row.message, store.stamp_text(row.updated_at)) for row in bad]
    store.reject_rows(page.conn, page.where.id, store.APPOINTMENTS, rejected, page.now)
    store.clear_rejected(page.conn, page.where.id, store.APPOINTMENTS, [str(row.id) for row in good])


def new_patients(work: Work, where: location_repo.LocationRecord, patient_ids: list[int]) -> dict[int, Rv3Patient]:
    """RV3's rows of these patients the sync has not linked yet (known ones follow the patients stream)."""
    ids = sorted(set(patient_ids))
    with work.transaction() as conn:
        known = store.patient_states(conn, where.id, [str(i) for i in ids])
    missing = [i for i in ids if str(i) not in known]
    return {patient.id: patient for patient in work.rv3.patients(missing)} if missing else {}


def _apply_row(page: _Page, row: Rv3Appointment, linked: tuple[int, store.Link | None] | None) -> str:
    snapshot = Rv3Snapshot.of(row)
    if linked is None:
        return _adopt(page, row.id, snapshot) or _create(page, row.id, snapshot)
    appointment_id, link = linked
    if link is not None and link.snapshot == snapshot:
        return "own_write" if link.written_stamp == store.stamp_text(row.updated_at) else "unchanged"
    return _change(page, row.id, appointment_id, link, snapshot)


def _adopt(page: _Page, rv3_id: int, snapshot: Rv3Snapshot) -> str | None:
    """A row the write-back created for a GHL booking but had not linked yet (it may have crashed): link it."""
    hour = snapshot.hour.isoformat() if snapshot.hour else None
    for link in page.awaiting:
        marker = link.create_marker or {}
        if (marker.get("patient_id"), marker.get("day"), marker.get("hour")) == (
            snapshot.patient_id,
            snapshot.day.isoformat(),
            hour,
        ):
            repo.set_sync_result(page.conn, link.appointment_id, {"rv3_appointment_id": str(rv3_id)})
            # The booking may have changed in GHL since: the next write-back brings RV3 up to it, if needed.
            values = {"snapshot": snapshot, "create_marker": None, "writeback": store.WRITE_UPDATE}
            store.update_link(page.conn, link.appointment_id, values, page.now)
            page.awaiting.remove(link)
            return "adopted"
    return None


def _patient_link(page: _Page, patient_id: int) -> contact_repo.ContactLink | None:
    patient = page.patients.get(patient_id)
    if patient is not None and not patient.deleted:
        return rv3_source.link_patient(page.conn, page.where, patient, page.now)
    return contact_repo.find(page.conn, page.where.id, patient_key_of(patient_id))


def patient_key_of(patient_id: int) -> str:
    return patient_key(Rv3Patient(id=patient_id).patient())


def _create(page: _Page, rv3_id: int, snapshot: Rv3Snapshot) -> str:
    plan = plan_change(None, snapshot, None, page.rules)
    if plan.kind is PlanKind.skip:
        return f"skipped:{plan.reason}"
    page.note(plan.flags)
    values = plan.values
    assert values is not None
    link = _patient_link(page, snapshot.patient_id)
    if link is None:
        return "skipped:patient_missing"
    appointment = Appointment(
        id="new",
        location_id=page.where.ghl_location_id,
        calendar_id=values.calendar_id,
        contact_id=link.ghl_contact_id,
        title=values.title[:255],
        assigned_user_id=values.assigned_user_id,
        start=values.start,
        end=values.end,
        status=values.status,
        source=Source.rv3,
        flags=plan.flags,
    )
    record = protocol.new_local(appointment, at=page.now)
    appointment_id = repo.insert(
        page.conn,
        {
            **repo.content_values(record.appointment),
            **repo.sync_values(record),
            "location_id": page.where.id,
            "patient_contact_id": link.id,
            "status_raw": snapshot.status[:64] if snapshot.status else None,
            "source": Source.rv3.value,
            "rv3_appointment_id": str(rv3_id),
            "created_at": page.now,
            "updated_at": page.now,
        },
    )
    store.add_link(page.conn, appointment_id, {"snapshot": snapshot}, page.now)
    _record(page, appointment_id, "create", 1, rv3_id)
    return "created"


def _change(page: _Page, rv3_id: int, appointment_id: int, link: store.Link | None, snapshot: Rv3Snapshot) -> str:
    record = repo.get(page.conn, appointment_id)
    assert record is not None
    plan = plan_change(link.snapshot if link else None, snapshot, rv3_source.synced_values(record), page.rules)
    if plan.kind is PlanKind.rebook:
        # GHL cannot give an appointment to another contact: cancel it there and book the new patient's.
        cancelled = rv3_source.synced_values(record).model_copy(update={"status": AppointmentStatus.cancelled})
        _store_values(page, record, cancelled, [], {"rv3_appointment_id": None})
        store.delete_link(page.conn, appointment_id)
        _record(page, appointment_id, "cancel", record.version + 1, rv3_id)
        return f"rebooked:{_create(page, rv3_id, snapshot)}"
    page.note(plan.flags)
    if plan.values is not None and plan.kind in (PlanKind.update, PlanKind.cancel):
        _store_values(page, record, plan.values, plan.flags, {})
        _record(page, appointment_id, plan.kind.value, record.version + 1, rv3_id)
    if link is None:
        store.add_link(page.conn, appointment_id, {"snapshot": snapshot}, page.now)
    else:
        store.update_link(page.conn, appointment_id, {"snapshot": snapshot}, page.now)
    return plan.kind.value


def _store_values(
    page: _Page,
    record: repo.AppointmentRecord,
    values: SyncedAppointment,
    flags: list[str],
    extra: dict[str, Any],
) -> None:
    edited = repo.to_domain(record).model_copy(
        update={
            "calendar_id": values.calendar_id,
            "title": values.title[:255],
            "assigned_user_id": values.assigned_user_id,
            "start": values.start,
            "end": values.end,
            "status": values.status,
            "flags": record.flags + [flag for flag in flags if flag not in record.flags],
        }
    )
    changed = protocol.local_edit(repo.sync_record(record), edited, at=page.now)
    content = {**repo.content_values(changed.appointment), **extra}
    try:
        repo.save_sync(page.conn, record, changed, content=content, now=page.now)
    except repo.Contention as exc:
        raise _Contention(f"appointment {record.id}") from exc


def _record(page: _Page, appointment_id: int, operation: str, version: int, rv3_id: int) -> None:
    page.entries.append(
        dispatch.record_change(
            page.conn,
            appointment_id=appointment_id,
            operation=operation,
            version=version,
            now=page.now,
            correlation_id=f"rv3-{rv3_id}",
        )
    )


def recapture(
    conn: Connection,
    where: location_repo.LocationRecord,
    rv3_id: int,
    snapshot: Rv3Snapshot,
    *,
    rules: MappingRules,
    patients: dict[int, Rv3Patient],
    now: datetime,
) -> tuple[str, list[outbox.OutboxEntry]]:
    """Apply RV3's row as if this run had just read it (the reconciliation found the capture missed it), in the
    caller's transaction: (outcome, outbox entries to send once it commits). `patients`: see `new_patients`."""
    page = _Page(conn, where, rules, now, patients)
    page.awaiting = store.links_awaiting_create(conn, where.id)
    linked = store.linked_by_rv3_id(conn, where.id, [str(rv3_id)]).get(str(rv3_id))
    if linked is None:
        outcome = _adopt(page, rv3_id, snapshot) or _create(page, rv3_id, snapshot)
    else:
        outcome = _change(page, rv3_id, linked[0], linked[1], snapshot)
    return outcome, page.entries


def _sweep_every(work: Work) -> timedelta:
    return timedelta(seconds=work.settings.rv3_sweep_seconds)


def _sweep(work: Work, where: location_repo.LocationRecord, now: datetime, report: CaptureReport) -> None:
    """Find linked appointments deleted in RV3 without a new stamp (hard deletes, some soft ones): cancel them."""
    with work.transaction() as conn:
        swept_at = store.cursor_state(conn, where.id, store.APPOINTMENTS).swept_at
        if swept_at is not None and now - swept_at < _sweep_every(work):
            return
        live = store.live_links(conn, where.id, now - rv3_source.HORIZON)
    found = {row.id: row for row in work.rv3.appointments([int(rv3_id) for _, rv3_id, _ in live])}
    statuses = work.rv3.statuses() if live else []
    gone: list[tuple[int, int, store.Link, Rv3Snapshot]] = []
    for appointment_id, rv3_id, link in live:
        row = found.get(int(rv3_id))
        if isinstance(row, Rv3Unreadable):
            continue  # still there: the capture reports it until it is fixed
        if row is None and link.snapshot is not None:
            gone.append((appointment_id, int(rv3_id), link, link.snapshot.model_copy(update={"deleted": True})))
        elif row is not None and row.deleted and link.snapshot != Rv3Snapshot.of(row):
            gone.append((appointment_id, int(rv3_id), link, Rv3Snapshot.of(row)))
    with work.transaction() as conn:
        page = _Page(conn, where, rv3_source.mapping_rules(work.settings, conn, where, now, statuses=statuses), now, {})
        for appointment_id, row_id, link, snapshot in gone:
            page.outcomes[f"swept:{_change(page, row_id, appointment_id, link, snapshot)}"] += 1
        store.save_cursor(conn, where.id, store.APPOINTMENTS, {"swept_at": now}, now)
    report.outcomes.update(page.outcomes)
    for entry in page.entries:
        dispatch.send(work, entry)


def remap_therapist(work: Work, therapist_id: int, now: datetime | None = None) -> int:
    """After a therapist's mapping changed: reassign their upcoming appointments in GHL. Returns how many."""
    moment = now or work.now()
    with work.transaction() as conn:
        where = rv3_source.location(work.settings, conn)
        if where is None:
            return 0
        # Only the assignee changes: RV3's statuses are not needed (nor read).
        rules = rv3_source.mapping_rules(work.settings, conn, where, moment, statuses=())
        page = _Page(conn, where, rules, moment, {})
        for appointment_id, rv3_id, link in store.live_links(conn, where.id, moment):
            if link.snapshot is None or link.snapshot.therapist_id != therapist_id:
                continue
            record = repo.get(conn, appointment_id)
            assert record is not None
            current = rv3_source.synced_values(record)
            values = assign(current, page.rules.therapists.get(therapist_id))
            if values != current:
                _store_values(page, record, values, [], {})
                _record(page, appointment_id, "update", record.version + 1, int(rv3_id))
    for entry in page.entries:
        dispatch.send(work, entry)
    return len(page.entries)


def remap_statuses(work: Work, before: Rv3StatusMap, after: Rv3StatusMap, now: datetime | None = None) -> int:
    """After the location's status mapping changed: linked appointments whose RV3 status now means something else
    are read again as if RV3 had just set it, so a cancellation RV3 showed under a status the sync did not know
    ("Cancelada") reaches GHL now. Returns how many changes were sent (a GHL change racing it: read again once;
    if that races too, the daily reconciliation finds what is left)."""
    changed = changed_meanings(before, after)
    moment = now or work.now()
    for attempt in (1, 2):
        try:
            page = _remap_page(work, changed, after, moment)
            break
        except _Contention:
            if attempt == 2:
                log.warning("rv3 statuses remapped in part: appointments changed meanwhile")
                return 0
    if page is None:
        return 0
    log.info("rv3 statuses remapped: %s", dict(page.outcomes), extra={"operation": "rv3_statuses"})
    for entry in page.entries:
        dispatch.send(work, entry)
    return len(page.entries)


def _remap_page(work: Work, changed: set[str], after: Rv3StatusMap, moment: datetime) -> _Page | None:
    with work.transaction() as conn:
        where = rv3_source.location(work.settings, conn)
        if where is None or not changed:
            return None
        rules = rv3_source.mapping_rules(work.settings, conn, where, moment, statuses=after.rows)
        page = _Page(conn, where, rules, moment, {})
        for appointment_id, rv3_id, link in store.live_links(conn, where.id, moment - rv3_source.HORIZON):
            seen = link.snapshot
            if seen is None or seen.status is None or status_key(seen.status) not in changed:
                continue
            unseen = dataclasses.replace(link, snapshot=seen.model_copy(update={"status": None}))
            page.outcomes[f"remapped:{_change(page, int(rv3_id), appointment_id, unseen, seen)}"] += 1
    return page


# --- patients -----------------------------------------------------------------------------------------------


def _capture_patients(
    work: Work, where: location_repo.LocationRecord, now: datetime, deadline: float, report: CaptureReport
) -> None:
    """A patient's changed phone, email or name reaches their GHL contact (patients without synced appointments
    are skipped: their first appointment links them)."""
    with work.transaction() as conn:
        mark = store.cursor_state(conn, where.id, store.PATIENTS).mark
    after = _scan_start(mark, _clock_limit(where, now))
    while time.monotonic() < deadline:
        rows = work.rv3.changed_patients(after=after, limit=PAGE_SIZE)
        if not rows:
            return
        with work.transaction() as conn:
            states = store.patient_states(conn, where.id, [str(row.id) for row in rows])
            read: list[Cursor] = []
            for row in rows:
                state = states.get(str(row.id))
                content = contact_digest(contact_for(row, where.ghl_location_id))
                own = state is not None and state.written_stamp == store.stamp_text(row.updated_at)
                if own and state is not None and state.content_hash == content:
                    continue
                if state is not None and state.content_hash != content and not row.deleted:
                    rv3_source.link_patient(conn, where, row, now)
                    report.outcomes["patient_changed"] += 1
                if row.cursor is not None:
                    read.append(row.cursor)
            mark = advance_cursor(mark, read, not_after=_clock_limit(where, now))
            store.save_cursor(conn, where.id, store.PATIENTS, {"mark": mark}, now)
        last = rows[-1].cursor
        assert last is not None
        after = last
        if len(rows) < PAGE_SIZE:
            return


def _sweep_patients(work: Work, where: location_repo.LocationRecord, now: datetime, report: CaptureReport) -> None:
    """RV3 saves some patient edits with `update_fields`, which leaves `updated_at` as it was: no cursor sees them.
    Every RV3_SWEEP_SECONDS (5 minutes) the linked patients' contact content is compared with what the sync took."""
    with work.transaction() as conn:
        swept_at = store.cursor_state(conn, where.id, store.PATIENTS).swept_at
        if swept_at is not None and now - swept_at < _sweep_every(work):
            return
        known = store.patient_hashes(conn, where.id)
    rows = work.rv3.patients([int(rv3_id) for rv3_id in known if rv3_id.isdigit()])
    with work.transaction() as conn:
        for row in rows:
            if not row.deleted and contact_digest(contact_for(row, where.ghl_location_id)) != known[str(row.id)]:
                rv3_source.link_patient(conn, where, row, now)
                report.outcomes["swept:patient_changed"] += 1
        store.save_cursor(conn, where.id, store.PATIENTS, {"swept_at": now}, now)


def push_contacts(work: Work, where: location_repo.LocationRecord, deadline: float, report: CaptureReport) -> None:
    """Update the GHL contacts of patients whose data changed (bounded per run; a failure is retried next run)."""
    with work.transaction() as conn:
        pending = store.pending_pushes(conn, where.id, PUSHES_PER_RUN)
    if not pending:
        return
    patients = {p.id: p for p in work.rv3.patients([int(state.rv3_patient_id) for state, _ in pending])}
    client = work.ghl
    for state, contact_id in pending:
        if time.monotonic() >= deadline:
            return
        patient = patients.get(int(state.rv3_patient_id))
        if patient is None or patient.deleted:
            _record_push(work, state, state.content_hash, None)
            continue
        draft = contact_for(patient, where.ghl_location_id)
        with work.transaction() as conn:
            shared = len(contact_repo.find_by_ghl_contact(conn, where.id, contact_id)) > 1
        try:
            client.update_contact(where.ghl_location_id, contact_id, contact_update_body(draft, shared=shared))
        except RateLimited:
            return
        except GhlError as exc:
            _record_push(work, state, None, type(exc).__name__)
            continue
        _record_push(work, state, contact_digest(draft), None)
        report.contacts_pushed += 1


def _record_push(work: Work, state: store.PatientState, pushed_hash: str | None, error: str | None) -> None:
    with work.transaction() as conn:
        store.record_push(conn, state.id, pushed_hash=pushed_hash, error=error, now=work.now())
