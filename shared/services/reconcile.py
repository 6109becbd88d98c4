"""Daily reconciliation: fan out per location, walk GHL and the stored appointments in time slices, report drift.

A run of one location walks each calendar's window in time slices (`walk_ghl`: GHL's events endpoint has no
paging), merge-joins each slice with the stored appointments starting in it (`sync_core.reconcile`), looks up
the counterpart of what one slice holds alone (moved to another slice or calendar, outside the window, deleted
in GHL), and checkpoints the report after every slice, so a crash or a redelivered message resumes the walk.
An appointment belongs to the window when its START is in [desde, hasta) (on each side its own start).
With auto-heal every difference is fixed through the normal sync path: an outbox entry (RV3 → GHL) written
with the checkpoint, or a `ghl-to-rv3` message in the inbound worker's format (GHL → RV3).

With RV3's own tables synced (RV3_SQL_URL), the walk then reads RV3's appointments one local day at a time and
compares them with the sync's (`sync_core.rv3_reconcile`); its fixes are the capture's (the row applied again,
into the outbox) and the write-back's (the link marked to be written), in the checkpoint's transaction.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import Field

from shared import telemetry
from shared.api.schemas import (
    ReconciliationLocationState,
    ReconciliationMetrics,
    ReconciliationReportList,
    ReconciliationReportOut,
    ReconciliationReportSummary,
    ReconciliationRun,
    ReconciliationRunIn,
    ReconciliationRunReport,
    ReconciliationRunState,
    ReportsQuery,
    ReportWindowOut,
)
from shared.ghl.errors import GhlError, NotFound
from shared.http import ApiError
from shared.queues import GHL_TO_RV3, RECONCILE, QueueMessage, QueueUnavailable
from shared.rv3.port import Rv3Unavailable
from shared.services import dispatch, locations, rv3_capture, rv3_source, rv3_writeback
from shared.services.webhook_intake import WebhookMessage
from shared.store import appointments as appointment_repo
from shared.store import locations as location_repo
from shared.store import outbox, reports
from shared.store import reconciliation as stored
from shared.work import Work
from shared.worker import Job, Later, Outcome, Result, later_for, run
from sync_core import protocol
from sync_core.ghl_appointments import GhlAppointment, parse_ghl_appointment
from sync_core.hashing import SyncedFields, payload_hash
from sync_core.models import ConflictPolicy, UtcDatetime
from sync_core.reconcile import (
    Finding,
    GhlRecord,
    Heal,
    HealDirection,
    Kind,
    ReconciliationReport,
    ReportWindow,
    Rv3Record,
    SlicePlan,
    classify,
    decide_heal,
    first_slice,
    merge_join,
    next_slice,
)
from sync_core.retry import ErrorKind
from sync_core.rv3_mapping import Rv3Patient
from sync_core.rv3_reconcile import Rv3Context, Rv3Day, Rv3Finding, classify_rv3, rv3_days, starts_between
from sync_core.times import as_utc, local_day_bounds, localize
from sync_core.webhooks import Action, GhlAppointmentEvent

log = telemetry.get_logger("reconcile")

RUN_LEASE = timedelta(seconds=90)
# A run hands over to a fresh message after this long, well inside the host's functionTimeout (10 min).
RUN_BUDGET_S = 240.0
STALE_AFTER = timedelta(hours=26)  # daily schedule plus two hours of grace, as the heartbeat alert
MAX_WINDOW = timedelta(days=31)
MAX_HOLDER_WAITS = 20  # a copy of a message whose run another worker holds comes back at most this often
# The calendar refresh reports GHL's failures as the API would; these two pass.
API_RETRIES = {"ghl_rate_limited": ErrorKind.rate_limited, "ghl_unavailable": ErrorKind.connection}
# RV3's rows are read this many at a time (and the sync's RV3 appointments streamed so), as GHL's time slices
# hold about `SlicePlan.max_events`: what one step holds stays the same however busy a day is.
RV3_PAGE = 100


class ReconcileMessage(QueueMessage):
    """One location's run on the `reconcile` queue; redelivered or continued, it resumes the same report."""

    run_id: str
    location_id: str
    desde: UtcDatetime
    hasta: UtcDatetime
    heal: bool = False
    max_events: int = Field(SlicePlan().max_events, ge=2, le=5000)


class LeaseLost(RuntimeError):
    """Another worker took over the run (our lease expired): stop without writing anything more."""


# --- starting runs -------------------------------------------------------------------------------------------


def _bound(value: datetime | date, tz: str, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value) if value.tzinfo is not None else localize(value, tz)
    bounds = local_day_bounds(value, tz)
    assert bounds.start is not None and bounds.end is not None
    return bounds.end if end else bounds.start


def run_window(
    location: location_repo.LocationRecord,
    desde: datetime | date | None,
    hasta: datetime | date | None,
    *,
    now: datetime,
    hours: int,
) -> tuple[datetime, datetime]:
    """[desde, hasta) in UTC: dates are whole local days (`hasta` included); default the last `hours`."""
    end = _bound(hasta, location.timezone, end=True) if hasta is not None else now
    start = _bound(desde, location.timezone, end=False) if desde is not None else end - timedelta(hours=hours)
    if start >= end:
        raise ApiError(400, "invalid_range", "La fecha 'desde' debe ser anterior a 'hasta'.", details=["desde"])
    if end - start > MAX_WINDOW:
        raise ApiError(400, "window_too_long", "La ventana de conciliación no puede superar 31 días.")
    return start, end


def _empty_report(location_id: str, window: tuple[datetime, datetime], now: datetime) -> ReconciliationReport:
    return ReconciliationReport(
        fecha=now, location_id=location_id, window=ReportWindow(desde=window[0], hasta=window[1])
    )


def start_run(work: Work, request: ReconciliationRunIn, *, now: datetime | None = None) -> ReconciliationRun:
    """Queue one `reconcile` message per location (the one named, else every active one) under a new run id."""
    moment = now or work.now()
    settings = work.settings
    with work.transaction() as conn:
        if request.location_id:
            found = location_repo.find_location(conn, request.location_id)
            if found is None:
                raise ApiError(404, "location_not_found", f"La sede {request.location_id} no está configurada.")
            if not found.is_active:
                raise ApiError(409, "location_inactive", "La sede está desactivada.")
            targets = [found]
        else:
            targets = location_repo.list_locations(conn, active_only=True)
    if not targets:
        raise ApiError(409, "no_active_locations", "No hay sedes activas que conciliar.")
    run_id = str(uuid.uuid4())
    heal = settings.reconcile_autoheal if request.heal is None else request.heal
    windows = {
        t.ghl_location_id: run_window(
            t, request.desde, request.hasta, now=moment, hours=settings.reconcile_window_hours
        )
        for t in targets
    }
    messages: list[ReconcileMessage] = []
    refs: list[ReconciliationRunReport] = []
    with work.transaction() as conn:
        for location_id, window in windows.items():
            report_id = reports.create(
                conn,
                run_id=run_id,
                location_id=location_id,
                window=window,
                heal=heal,
                report=_empty_report(location_id, window, moment).model_dump(mode="json"),
                now=moment,
            )
            refs.append(
                ReconciliationRunReport(
                    id=report_id,
                    location_id=location_id,
                    window=ReportWindowOut(desde=window[0], hasta=window[1]),
                    status="queued",
                )
            )
            messages.append(
                ReconcileMessage(
                    run_id=run_id,
                    location_id=location_id,
                    desde=window[0],
                    hasta=window[1],
                    heal=heal,
                    max_events=request.max_events_per_slice or SlicePlan().max_events,
                )
            )
    try:
        for message in messages:
            work.queues.send(RECONCILE, message.model_dump(mode="json", exclude_none=True))
    except QueueUnavailable:
        with work.transaction() as conn:
            for ref in refs:
                reports.fail(conn, ref.id, "queue_unavailable", work.now())
        _alert_missed(run_id, None, "queue_unavailable")
        raise ApiError(
            503, "queue_unavailable", "No se pudo encolar la conciliación; reintente en unos minutos."
        ) from None
    log.info(
        "reconciliation.started",
        extra={"event": "reconciliation.started", "run_id": run_id, "locations": len(refs), "heal": heal},
    )
    return ReconciliationRun(run_id=run_id, heal=heal, reports=refs)


def scheduled_run(work: Work, now: datetime | None = None) -> ReconciliationRun | None:
    """The timer's run: first flag locations whose last successful run is too old (a missed or failed run:
    timers are not retried), then fan out over every active location."""
    moment = now or work.now()
    for state in location_states(work, moment):
        if state.stale and (state.last_run is not None):
            _alert_missed(state.last_run.run_id, state.location_id, "no_recent_success")
    try:
        return start_run(work, ReconciliationRunIn(), now=moment)
    except ApiError as exc:
        if exc.code == "no_active_locations":
            log.info("reconciliation skipped: no active locations")
            return None
        raise


def _alert_missed(run_id: str, location_id: str | None, reason: str) -> None:
    telemetry.alert(
        "reconciliation_missed",
        f"reconciliation run {run_id} did not complete ({reason})",
        run_id=run_id,
        location_id=location_id,
        detail=reason,
    )


# --- the GHL walk --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GhlSlice:
    """GHL's events of one calendar starting in [start, end), sorted by event id, ready for `merge_join`."""

    start: datetime
    end: datetime
    records: list[GhlRecord]
    unreadable: int


def walk_ghl(
    fetch: Callable[[datetime, datetime], Sequence[Mapping[str, object]]],
    start: datetime,
    end: datetime,
    plan: SlicePlan,
    *,
    tz: str,
    expected: int = 0,
) -> Iterator[GhlSlice]:
    """Walk [start, end) in time slices through `fetch(slice_start, slice_end)` (GHL's events overlapping it).

    A slice in which `plan.max_events` or more events start is fetched again half as long, so a response
    holds about the limit at most (plus the few events overlapping from before, which belong to an earlier
    slice and are dropped: each event is yielded once, in the slice holding its start). `expected`, the
    events expected over the whole span, sizes the first slice.
    """
    length = first_slice(end - start, expected, plan)
    position = start
    while position < end:
        stop = min(end, position + length)
        records, unreadable = _read_slice(fetch(position, stop), position, stop, tz)
        accepted, length = next_slice(stop - position, len(records) + unreadable, plan)
        if not accepted:
            continue
        if len(records) >= plan.max_events:
            log.warning("reconciliation: %d GHL events start in one %s slice", len(records), stop - position)
        yield GhlSlice(position, stop, [records[key] for key in sorted(records)], unreadable)
        position = stop


def _read_slice(
    events: Sequence[Mapping[str, object]], start: datetime, stop: datetime, tz: str
) -> tuple[dict[str, GhlRecord], int]:
    """The events starting in [start, stop) by id, and how many events could not be read."""
    records: dict[str, GhlRecord] = {}
    unreadable = 0
    for raw in events:
        try:
            record = GhlRecord.of(parse_ghl_appointment(raw, tz=tz))
        except ValueError:  # GhlShapeError too: no id, or no readable start or end
            unreadable += 1
            continue
        if start <= record.fields.start < stop:
            records[record.id] = record
    return records, unreadable


# --- one location's run --------------------------------------------------------------------------------------


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


@dataclass
class _Lease:
    """Our hold on the run; renewed at each checkpoint and before GHL calls once half of it has passed."""

    work: Work
    report_id: int
    until: datetime
    held: bool = True

    def keep(self) -> None:
        now = self.work.now()
        if self.until - now > RUN_LEASE / 2:
            return
        until = now + RUN_LEASE
        with self.work.transaction() as conn:
            renewed = reports.renew(conn, self.report_id, self.until, until)
        if not renewed:
            self.held = False
            raise LeaseLost(f"reconciliation report {self.report_id}")
        self.until = until


@dataclass
class _Run:
    """One location's run in progress: its inputs, its report so far, and the fixes of the current slice."""

    work: Work
    message: ReconcileMessage
    location: location_repo.LocationRecord
    row: reports.RunRecord
    lease: _Lease
    report: ReconciliationReport
    calendars: list[str]
    policy: ConflictPolicy
    to_ghl: list[tuple[Finding, Heal]] = field(default_factory=list)
    to_rv3: list[tuple[Finding, Heal]] = field(default_factory=list)
    rv3_fixes: list[Rv3Finding] = field(default_factory=list)

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.message.desde, self.message.hasta

    def in_scope(self, appointment: stored.StoredAppointment) -> bool:
        """Whether the stored walk of this run meets the appointment (its start in the window)."""
        start, end = self.window
        return appointment.calendar_id in self.calendars and start <= appointment.start_at < end

    def fetch(self, calendar_id: str) -> Callable[[datetime, datetime], Sequence[Mapping[str, object]]]:
        def events(start: datetime, end: datetime) -> list[dict[str, Any]]:
            self.lease.keep()
            found = self.work.ghl.list_events(
                self.location.ghl_location_id, calendar_id=calendar_id, start=start, end=end
            )
            return [event.model_dump() for event in found]

        return events

    def ghl_event(self, event_id: str) -> GhlRecord | None:
        """GHL's event by id, None when GHL no longer has it (deleted)."""
        self.lease.keep()
        try:
            event = self.work.ghl.get_event(self.location.ghl_location_id, event_id)
        except NotFound:
            return None
        return GhlRecord.of(parse_ghl_appointment(event.model_dump(), tz=self.location.timezone))


def process(raw: dict[str, Any], work: Work | None = None, *, dequeue_count: int = 1) -> Result:
    """Handle one `reconcile` message: run (or resume) the location's reconciliation (see `shared.worker.run`)."""
    return run(JOB, raw, work or Work.current(), dequeue_count=dequeue_count)


def _handle(work: Work, message: ReconcileMessage) -> Result:
    now = work.now()
    with work.transaction() as conn:
        location = location_repo.find_location(conn, message.location_id)
        row = reports.find(conn, message.run_id, message.location_id)
    if location is None:
        return Result(Outcome.failed, "location not configured")
    if row is None:
        row = _adopt(work, message, now)
    if row.status not in reports.OPEN:
        return Result(Outcome.duplicate, f"run already {row.status}")
    until = now + RUN_LEASE
    with work.transaction() as conn:
        claimed = reports.claim(conn, row.id, now, until)
    if not claimed:
        return _wait_for_holder(message, row, now)
    result = _run_claimed(work, message, location, row, _Lease(work, row.id, until))
    if result.outcome is Outcome.continued:
        following = message.model_copy(update={"attempt": 1})
        work.queues.send(RECONCILE, following.model_dump(mode="json", exclude_none=True))
    return result


def _run_claimed(
    work: Work,
    message: ReconcileMessage,
    location: location_repo.LocationRecord,
    row: reports.RunRecord,
    lease: _Lease,
) -> Result:
    """Walk under our lease; what may pass (rate limits, outages) resumes later from the checkpoint."""
    try:
        return _walk(work, message, location, row, lease)
    except LeaseLost:
        return Result(Outcome.skipped, "another worker took the run over")
    except (GhlError, ApiError, Rv3Unavailable) as exc:
        return _after_failure(work, message, exc)
    finally:
        if lease.held:
            with work.transaction() as conn:
                reports.release(conn, row.id, lease.until)


def _after_failure(work: Work, message: ReconcileMessage, exc: GhlError | ApiError | Rv3Unavailable) -> Result:
    """Rate limits and outages (GHL, RV3's database; SQL's the kernel's own) come back later as `Later`, and
    resume from the checkpoint; what retrying cannot help (auth, scope, an unknown calendar) fails the run."""
    if isinstance(exc, Rv3Unavailable):
        raise Later(ErrorKind.connection, "rv3_unavailable") from exc
    if isinstance(exc, ApiError):
        if exc.code not in API_RETRIES:
            return _failed(work, message, exc.code)
        raise Later(API_RETRIES[exc.code], exc.code) from exc
    if exc.retry is None:
        return _failed(work, message, f"ghl_{exc.code}")
    raise later_for(exc, note=f"ghl_{exc.code}") from exc


def _adopt(work: Work, message: ReconcileMessage, now: datetime) -> reports.RunRecord:
    """The run row of a message whose row is missing (enqueued by hand or replayed from the poison queue)."""
    window = (message.desde, message.hasta)
    try:
        with work.transaction() as conn:
            reports.create(
                conn,
                run_id=message.run_id,
                location_id=message.location_id,
                window=window,
                heal=message.heal,
                report=_empty_report(message.location_id, window, now).model_dump(mode="json"),
                now=now,
            )
    except sa.exc.IntegrityError:
        pass  # created concurrently by a redelivery of the same message
    with work.transaction() as conn:
        row = reports.find(conn, message.run_id, message.location_id)
    assert row is not None
    return row


def _plan_calendars(work: Work, location: location_repo.LocationRecord, window: tuple[datetime, datetime]) -> list[str]:
    """Every calendar the sync knows in the location (GHL's list, cached) and every calendar the stored
    appointments of the window are booked on."""
    known = {calendar.ghl_calendar_id for calendar in locations.cached_calendars(work, location)}
    with work.transaction() as conn:
        known.update(stored.calendars_in_window(conn, location.id, *window))
    return sorted(known)


def _walk(
    work: Work,
    message: ReconcileMessage,
    location: location_repo.LocationRecord,
    row: reports.RunRecord,
    lease: _Lease,
) -> Result:
    deadline = time.monotonic() + RUN_BUDGET_S
    calendars = row.calendar_ids
    if calendars is None:
        calendars = _plan_calendars(work, location, (message.desde, message.hasta))
        with work.transaction() as conn:
            if not reports.start(conn, row.id, lease.until, calendars, work.now()):
                lease.held = False
                raise LeaseLost(f"reconciliation report {row.id}")
        row = dataclasses.replace(row, calendar_ids=calendars, calendar_index=0, checkpoint=message.desde)
    run = _Run(
        work=work,
        message=message,
        location=location,
        row=row,
        lease=lease,
        report=ReconciliationReport.model_validate(row.report),
        calendars=calendars,
        policy=ConflictPolicy(work.settings.conflict_policy),
    )
    plan = SlicePlan(max_events=message.max_events)
    index, position = row.calendar_index, row.checkpoint or message.desde
    while index < len(calendars):
        calendar_id = calendars[index]
        with work.transaction() as conn:
            expected = stored.count_in_slice(conn, location.id, calendar_id, position, message.hasta)
        slices = walk_ghl(
            run.fetch(calendar_id), position, message.hasta, plan, tz=location.timezone, expected=expected
        )
        for ghl_slice in slices:
            _reconcile_slice(run, calendar_id, ghl_slice)
            done = ghl_slice.end >= message.hasta
            _checkpoint(run, index + 1 if done else index, message.desde if done else ghl_slice.end)
            if time.monotonic() > deadline and not (done and index + 1 == len(calendars)):
                return Result(Outcome.continued, "time budget used; a new message continues the run")
        index, position = index + 1, message.desde
    context = _rv3_context(work, location)
    if context is not None:
        for day in rv3_days(position, message.hasta, location.timezone):
            _reconcile_rv3_day(run, context, day)
            _checkpoint(run, len(calendars), day.end)
            if time.monotonic() > deadline and day.end < message.hasta:
                return Result(Outcome.continued, "time budget used; a new message continues the run")
    _complete(run)
    return Result(Outcome.applied, f"drift {run.report.drift}")


def _reconcile_slice(run: _Run, calendar_id: str, ghl_slice: GhlSlice) -> None:
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


def _resolve(run: _Run, rv3: Rv3Record | None, ghl: GhlRecord | None) -> Finding | None:
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


def _resolve_ghl_alone(run: _Run, ghl: GhlRecord) -> Finding | None:
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


# --- RV3's own tables ---------------------------------------------------------------------------------------


def _rv3_context(work: Work, location: location_repo.LocationRecord) -> Rv3Context | None:
    """What the RV3 pass needs, when RV3's own tables are synced with this location (RV3_SQL_URL); else None."""
    settings = work.settings
    if not rv3_source.configured(settings):
        return None
    with work.transaction() as conn:
        where = rv3_source.location(settings, conn)
        if where is None or where.id != location.id:
            return None
        rules = rv3_source.mapping_rules(settings, conn, where, work.now())
        scan = rv3_capture.next_scan(conn, where.id)
    return Rv3Context(rules=rules, statuses=work.rv3.statuses(), next_scan=scan)


def _reconcile_rv3_day(run: _Run, context: Rv3Context, day: Rv3Day) -> None:
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
            if rv3_row is not None and starts_between(rv3_row, tz, desde, hasta):
                continue
            if rv3_row is not None:
                run.report.seen_rv3_row()
            _note_rv3(run, classify_rv3(rv3_row, appointment, context))


def _note_rv3(run: _Run, finding: Rv3Finding) -> None:
    run.report.record(finding.kind, finding.entry() if finding.drift else {})
    if run.message.heal and finding.drift and finding.heal is not None:
        run.rv3_fixes.append(finding)


def _heal_rv3(
    conn: sa.Connection, run: _Run, finding: Rv3Finding, patients: dict[int, Rv3Patient], now: datetime
) -> tuple[str, list[outbox.OutboxEntry]]:
    """Send one RV3-side fix down the normal path: the capture applies RV3's row again (into the outbox), or the
    link is marked for the write-back. Its reference for the report, and the outbox entries to send."""
    assert finding.heal is not None
    if finding.heal.direction is HealDirection.to_rv3:
        assert finding.appointment_id is not None
        rv3_writeback.request_writeback(conn, finding.appointment_id, now)
        return f"rv3-writeback:{finding.appointment_id}", []
    assert finding.rv3_id is not None and finding.recapture is not None
    outcome, entries = rv3_capture.recapture(
        run.work.settings, conn, run.location, finding.rv3_id, finding.recapture, patients=patients, now=now
    )
    return ",".join(entry.op_id for entry in entries) or f"rv3-capture:{outcome}", entries


def _checkpoint(run: _Run, calendar_index: int, position: datetime) -> None:
    """Store the report and the position in one transaction with the outbox entries of the slice's fixes;
    hand the fixes to the queues after the commit (a lost GHL → RV3 fix is found again by the next run)."""
    now = run.work.now()
    entries: list[outbox.OutboxEntry] = []
    messages: list[WebhookMessage] = []
    until = now + RUN_LEASE
    # RV3 rows the capture never took are applied with their patients, read from RV3 before the transaction.
    unlinked = [f.recapture.patient_id for f in run.rv3_fixes if f.recapture is not None and f.appointment_id is None]
    patients = rv3_capture.new_patients(run.work, run.location, unlinked) if unlinked else {}
    with run.work.transaction() as conn:
        for finding, heal in run.to_ghl:
            assert finding.rv3 is not None
            record = appointment_repo.get(conn, int(finding.rv3.id))
            assert record is not None
            entry = dispatch.record_change(
                conn,
                appointment_id=record.id,
                operation="reconcile",
                version=record.version,
                now=now,
                correlation_id=run.message.run_id,
            )
            run.report.add_action(finding, heal, entry.op_id)
            entries.append(entry)
        for finding, heal in run.to_rv3:
            message = heal_message(run.message.run_id, run.location.ghl_location_id, finding, now)
            run.report.add_action(finding, heal, message.dedupe_key)
            messages.append(message)
        for rv3_finding in run.rv3_fixes:
            reference, sent = _heal_rv3(conn, run, rv3_finding, patients, now)
            run.report.record_action(rv3_finding.action(reference))
            entries.extend(sent)
        saved = reports.save_checkpoint(
            conn,
            run.row.id,
            run.lease.until,
            calendar_index=calendar_index,
            checkpoint=position,
            report=run.report.model_dump(mode="json"),
            drift=run.report.drift,
            until=until,
        )
        if not saved:
            run.lease.held = False
            raise LeaseLost(f"reconciliation report {run.row.id}")
    run.lease.until = until
    run.to_ghl.clear()
    run.to_rv3.clear()
    run.rv3_fixes.clear()
    for entry in entries:
        dispatch.send(run.work, entry)
    for message in messages:
        try:
            run.work.queues.send(GHL_TO_RV3, message.model_dump(mode="json"))
        except QueueUnavailable:
            log.warning("reconciliation fix not enqueued (storage unavailable); the next run finds it again")


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


def _complete(run: _Run) -> None:
    now = run.work.now()
    run.report.fecha = now
    report = run.report
    with run.work.transaction() as conn:
        if not reports.finish(
            conn, run.row.id, run.lease.until, report=report.model_dump(mode="json"), drift=report.drift, now=now
        ):
            run.lease.held = False
            raise LeaseLost(f"reconciliation report {run.row.id}")
    run.lease.held = False
    counts = {kind.value: report.totales.get(kind.value, 0) for kind in Kind}
    dimensions = {"run_id": run.message.run_id, "location_id": run.location.ghl_location_id, "heal": run.message.heal}
    log.info(
        "reconciliation.completed",
        extra={
            "event": "reconciliation.completed",
            **dimensions,
            "counts": counts,
            "drift": report.drift,
            "count": report.totales.get("acciones", 0),
            "duration_ms": round((now - (run.row.started_at or run.row.created_at)).total_seconds() * 1000),
        },
    )
    if report.drift:
        telemetry.alert(
            "reconciliation_drift",
            f"reconciliation found {report.drift} differences between RV3 and GHL",
            drift=report.drift,
            **dimensions,
        )


def _wait_for_holder(message: ReconcileMessage, row: reports.RunRecord, now: datetime) -> Result:
    """Another worker holds the run. Come back when its lease ends, in case it died (its own message may come
    back before that); once the bound is used up the holder is evidently alive, and this copy is dropped."""
    if message.requeues >= MAX_HOLDER_WAITS:
        return Result(Outcome.duplicate, "run held by a live worker")
    held = row.lease_until or now
    delay = max(1.0, (held - now).total_seconds() + 1)
    raise Later(ErrorKind.rate_limited, "run held by another worker", retry_after=delay)


def _failed(work: Work, message: ReconcileMessage, error: str) -> Result:
    """The run cannot finish (retrying cannot help, or is used up): marked failed, as the reports and metrics
    show, and the missed-run alert raised."""
    with work.transaction() as conn:
        row = reports.find(conn, message.run_id, message.location_id)
        failed = row is not None and reports.fail(conn, row.id, error, work.now())
    if failed:
        _alert_missed(message.run_id, message.location_id, error)
    return Result(Outcome.failed, error)


JOB = Job(
    queue=RECONCILE,
    model=ReconcileMessage,
    handle=_handle,
    exhausted=_failed,
    subject=lambda message: {"run_id": message.run_id, "location_id": message.location_id},
)


# --- reading reports -----------------------------------------------------------------------------------------


def _summary_fields(row: reports.RunRecord) -> dict[str, Any]:
    report = ReconciliationReport.model_validate(row.report)
    return {
        "id": row.id,
        "run_id": row.run_id,
        "location_id": row.location_id,
        "status": row.status,
        "heal": row.heal,
        "fecha": row.finished_at or row.created_at,
        "window": ReportWindowOut(desde=row.window_start, hasta=row.window_end),
        "drift": report.drift,
        "totales": report.totales,
        "error": row.error,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def list_reports(work: Work, query: ReportsQuery) -> ReconciliationReportList:
    flt = reports.ListFilter(location_id=query.location_id, run_id=query.run_id, status=query.status)
    with work.transaction() as conn:
        rows, total = reports.page(conn, flt, offset=(query.page - 1) * query.page_size, limit=query.page_size)
    return ReconciliationReportList(
        count=total,
        page=query.page,
        page_size=query.page_size,
        results=[ReconciliationReportSummary(**_summary_fields(row)) for row in rows],
    )


def get_report(work: Work, report_id: int) -> ReconciliationReportOut:
    with work.transaction() as conn:
        row = reports.get(conn, report_id)
    if row is None:
        raise ApiError(404, "report_not_found", "El reporte de conciliación no existe.")
    report = ReconciliationReport.model_validate(row.report)
    return ReconciliationReportOut(
        **_summary_fields(row),
        faltantes_local=report.faltantes_local,
        faltantes_ghl=report.faltantes_ghl,
        canceladas_no_actualizadas=report.canceladas_no_actualizadas,
        desincronizadas=report.desincronizadas,
        acciones=report.acciones,
        checkpoint=row.checkpoint if row.status in reports.OPEN else None,
    )


def _state(row: reports.RunRecord | None) -> ReconciliationRunState | None:
    if row is None:
        return None
    return ReconciliationRunState(
        run_id=row.run_id,
        report_id=row.id,
        status=row.status,
        created_at=row.created_at,
        finished_at=row.finished_at,
        drift=row.drift_count,
        error=row.error,
    )


def location_states(work: Work, now: datetime | None = None) -> list[ReconciliationLocationState]:
    """Per active location: its last run, its last successful run, and whether that is too long ago."""
    moment = now or work.now()
    states = []
    with work.transaction() as conn:
        for location in location_repo.list_locations(conn, active_only=True):
            last = reports.latest(conn, location.ghl_location_id)
            success = reports.latest(conn, location.ghl_location_id, status=reports.COMPLETED)
            age = moment - success.finished_at if success is not None and success.finished_at else None
            states.append(
                ReconciliationLocationState(
                    location_id=location.ghl_location_id,
                    last_run=_state(last),
                    last_success=_state(success),
                    hours_since_success=round(age.total_seconds() / 3600, 2) if age is not None else None,
                    stale=age is None or age > STALE_AFTER,
                )
            )
    return states


def metrics(work: Work, now: datetime | None = None) -> ReconciliationMetrics:
    states = location_states(work, now)
    return ReconciliationMetrics(
        stale_after_hours=STALE_AFTER.total_seconds() / 3600,
        healthy=not any(state.stale for state in states),
        locations=states,
    )
