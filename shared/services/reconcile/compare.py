"""One step of a run: a GHL time slice, or a day of RV3's own rows, compared with the sync's appointments.

What differs is reported and, with auto-heal, becomes the fix the normal sync path carries (`heal_message`,
`heal_rv3`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shared.services import rv3_capture, rv3_source, rv3_writeback
from shared.services.reconcile.walk import GhlSlice
from shared.services.webhook_intake import WebhookMessage
from shared.store import appointments as appointment_repo
from shared.store import locations as location_repo
from shared.store import outbox
from shared.store import reconciliation as stored
from shared.work import Work
from sync_core import protocol
from sync_core.ghl_appointments import GhlAppointment
from sync_core.hashing import SyncedFields, payload_hash
from sync_core.reconcile import Finding, GhlRecord, HealDirection, Kind, Rv3Record, classify, decide_heal, merge_join
from sync_core.rv3_mapping import Rv3Patient, Rv3Unreadable
from sync_core.rv3_reconcile import Rv3Context, Rv3Day, Rv3Finding, classify_rv3, starts_between
from sync_core.webhooks import Action, GhlAppointmentEvent

if TYPE_CHECKING:
    from shared.services.reconcile.progress import Run

# RV3's rows are read this many at a time (and the sync's RV3 appointments streamed so), as GHL's time slices
# hold about `SlicePlan.max_events`: what one step holds stays the same however busy a day is.
RV3_PAGE = 100


def rv3_record(appointment: stored.StoredAppointment) -> Rv3Record:
    return Rv3Record(
        id=str(appointment.id),
        ghl_event_id=appointment.ghl_event_id,
        fields=SyncedFields(
            calendar_id=appointment.calendar_id,
            contact_id=appointment.contact_id,
            start=appointment.start_at,
            end=appointment.end_at,
            status=appointment.status,
            title=appointment.title,
            assigned_user_id=appointment.assigned_user_id,
        ),
        in_flight=appointment.in_flight,
    )


def reconcile_slice(run: Run, calendar_id: str, ghl_slice: GhlSlice) -> None:
    run.report.unreadable(ghl_slice.unreadable)
    local = stored.stream_slice(run.work.database, run.location.id, calendar_id, ghl_slice.start, ghl_slice.end)
    for pair in merge_join((rv3_record(a) for a in local), ghl_slice.records):
        run.report.seen(pair)
        finding = _resolve(run, pair.rv3, pair.ghl)
        if finding is None:
            continue
        run.report.add(finding)
        heal = decide_heal(finding) if run.message.heal else None
        if heal is not None:
            (run.to_ghl if heal.direction is HealDirection.to_ghl else run.to_rv3).append((finding, heal))


def _resolve(run: Run, rv3: Rv3Record | None, ghl: GhlRecord | None) -> Finding | None:
    """Classify one step of the join; a side alone in its slice is first looked up on the other side.

    A pair whose two sides are in different slices (moved, or outside the window on one side) is reported
    once: where the stored appointment is, if it is in the walk, else where GHL's event is.
    """
    if rv3 is not None:
        if ghl is not None or rv3.in_flight or rv3.ghl_event_id is None:
            return classify(rv3, ghl)
        try:
            return classify(rv3, run.ghl_event(rv3.ghl_event_id))
        except ValueError:  # GHL's event has no readable start or end
            run.report.unreadable()
            return None
    assert ghl is not None
    return _resolve_ghl_alone(run, ghl)


def _resolve_ghl_alone(run: Run, ghl: GhlRecord) -> Finding | None:
    with run.work.transaction() as conn:
        found = stored.by_event(conn, run.location.id, ghl.id)
        pending = _pending_create_of(conn, run.location.id, ghl.appointment, run.work.now()) if found is None else None
    if found is not None:
        return None if run.in_scope(found) else classify(rv3_record(found), ghl)
    if pending is None:
        return classify(None, ghl)
    # Our own create whose event id is not stored yet: in flight, or reported on the RV3 side.
    return Finding(kind=Kind.in_flight, reason="create_pending", ghl=ghl) if pending else None


def _pending_create_of(conn: sa.Connection, location_id: int, ghl: GhlAppointment, now: datetime) -> bool | None:
    """For a GHL event no stored appointment names: None if no create of ours made it, else whether that
    create is still in flight (its answer or webhook links the event then)."""
    if ghl.contact_id is None:
        return None
    try:
        seen = protocol.observation_of(ghl, seen_at=now)
    except ValueError:
        return None
    for record in appointment_repo.of_contact(conn, location_id, ghl.contact_id):
        if protocol.is_our_create(appointment_repo.sync_record(record), seen):
            return outbox.open_for_appointment(conn, record.id)
    return None


def rv3_context(work: Work, location: location_repo.LocationRecord) -> Rv3Context | None:
    """What the RV3 pass needs, when RV3's own tables are synced with this location (RV3_SQL_URL); else None."""
    settings = work.settings
    if not rv3_source.configured(settings):
        return None
    with work.transaction() as conn:
        where = rv3_source.location(settings, conn)
        if where is None or where.id != location.id:
            return None
        scan = rv3_capture.next_scan(conn, where, work.now())
    statuses = work.rv3.statuses()
    with work.transaction() as conn:
        rules = rv3_source.mapping_rules(settings, conn, where, work.now(), statuses=statuses)
    return Rv3Context(rules=rules, next_scan=scan)


def reconcile_rv3_day(run: Run, context: Rv3Context, day: Rv3Day) -> None:
    """RV3's rows filed on the day that start in its part of the window, page by page; then the sync's RV3
    appointments starting in it whose RV3 row is gone or starts outside the window (else compared above)."""
    source, tz = run.work.rv3, run.location.timezone
    after_id = 0
    while True:
        run.lease.keep()
        rows = source.appointments_on(day.day, after_id=after_id, limit=RV3_PAGE)
        here = [row for row in rows if starts_between(row, tz, day.start, day.end)]
        with run.work.transaction() as conn:
            linked = stored.rv3_linked(conn, run.location.id, [row.id for row in here])
        for row in here:
            run.report.seen_rv3_row()
            _note_rv3(run, classify_rv3(row, linked.get(row.id), context))
        if len(rows) < RV3_PAGE:
            break
        after_id = rows[-1].id
    desde, hasta = run.window
    for chunk in stored.stream_rv3_linked(run.work.database, run.location.id, day.start, day.end, chunk=RV3_PAGE):
        found = {row.id: row for row in source.appointments([a.rv3_id for a in chunk if a.rv3_id is not None])}
        for appointment in chunk:
            rv3_row = found.get(appointment.rv3_id) if appointment.rv3_id is not None else None
            if isinstance(rv3_row, Rv3Unreadable):
                continue  # RV3's row cannot be mapped: the capture lists it in the status, there is nothing to heal
            if rv3_row is not None and starts_between(rv3_row, tz, desde, hasta):
                continue
            if rv3_row is not None:
                run.report.seen_rv3_row()
            _note_rv3(run, classify_rv3(rv3_row, appointment, context))


def _note_rv3(run: Run, finding: Rv3Finding) -> None:
    run.report.record(finding.kind, finding.entry() if finding.drift else {})
    if run.message.heal and finding.drift and finding.heal is not None:
        run.rv3_fixes.append(finding)


def heal_rv3(
    conn: sa.Connection, run: Run, finding: Rv3Finding, patients: dict[int, Rv3Patient], now: datetime
) -> tuple[str, list[outbox.OutboxEntry]]:
    """Send one RV3-side fix down the normal path: the capture applies RV3's row again (into the outbox), or the
    link is marked for the write-back. Its reference for the report, and the outbox entries to send."""
    assert finding.heal is not None
    if finding.heal.direction is HealDirection.to_rv3:
        assert finding.appointment_id is not None
        rv3_writeback.request_writeback(conn, finding.appointment_id, now)
        return f"rv3-writeback:{finding.appointment_id}", []
    assert finding.rv3_id is not None and finding.recapture is not None and run.rv3 is not None
    outcome, entries = rv3_capture.recapture(
        conn, run.location, finding.rv3_id, finding.recapture, rules=run.rv3.rules, patients=patients, now=now
    )
    return ",".join(entry.op_id for entry in entries) or f"rv3-capture:{outcome}", entries


def heal_message(run_id: str, location_id: str, finding: Finding, now: datetime) -> WebhookMessage:
    """The `ghl-to-rv3` message of GHL's state as read now, as if GHL's missed webhook had arrived (read at
    `now`: GHL held it then, which the protocol knows to weigh)."""
    action: Action
    if finding.ghl is None:
        assert finding.rv3 is not None and finding.rv3.ghl_event_id is not None
        appointment = GhlAppointment(id=finding.rv3.ghl_event_id, location_id=location_id)
        action, event_type = "delete", "AppointmentDelete"
    elif finding.rv3 is None:
        appointment, action, event_type = finding.ghl.appointment, "create", "AppointmentCreate"
    else:
        appointment, action, event_type = finding.ghl.appointment, "update", "AppointmentUpdate"
    event = GhlAppointmentEvent(type=event_type, location_id=location_id, action=action, appointment=appointment)
    return WebhookMessage(
        # One fix per event and run: a resumed run that finds it again is deduplicated by the inbox.
        dedupe_key=f"reconcile:{run_id}:{appointment.id}",
        payload_hash=payload_hash(event.model_dump(mode="json")),
        received_at=now,
        observed_at=now,
        event=event,
    )
