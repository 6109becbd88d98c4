"""The citas API use cases: validate, store the appointment and its outbox row in one transaction, dispatch."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import telemetry
from shared.api.schemas import (
    Cita,
    CitaChange,
    CitaConflict,
    CitaGhlChange,
    CitaHistory,
    CitaIn,
    CitaList,
    CitasQuery,
    CitaUpdateIn,
    PatientOut,
    UpcomingQuery,
    ValidationWarning,
)
from shared.http import ApiError
from shared.services import dispatch, locations
from shared.store import appointments as repo
from shared.store import conflicts as conflict_repo
from shared.store import contacts as contact_repo
from shared.store import inbox, outbox
from shared.store import locations as location_repo
from shared.store.appointments import Contention, to_domain
from shared.store.outbox import OutboxEntry
from shared.store.schema import idempotency_keys
from shared.work import Work
from sync_core import protocol
from sync_core.contacts import Patient, build_contact, patient_key
from sync_core.errors import DomainError, Issue
from sync_core.hashing import payload_hash
from sync_core.models import (
    Appointment,
    AppointmentStatus,
    LocationRules,
    Source,
    SyncState,
    ValidationMode,
    WorkingHours,
)
from sync_core.times import as_utc, local_date_range, parse_client_datetime, zone
from sync_core.validation import AppointmentDraft, CalendarInfo, ValidationResult, validate_appointment

log = telemetry.get_logger("citas")

T = TypeVar("T")

CREATE_SCOPE = "citas.create"
NOT_FOUND = ApiError(404, "appointment_not_found", "La cita no existe.")


def rules_for(work: Work, location: location_repo.LocationRecord) -> LocationRules:
    """The validation rules of a location: its own settings, else the app-wide defaults."""
    settings = work.settings
    return LocationRules(
        timezone=location.timezone,
        working_hours=WorkingHours.parse(location.working_hours or settings.working_hours),
        min_duration_min=settings.min_duration_min,
        validation_mode=ValidationMode(location.validation_mode or settings.validation_mode),
    )


def _cita(
    conn: Connection,
    record: repo.AppointmentRecord,
    warnings: list[Issue] | None = None,
    *,
    patients: Mapping[int, contact_repo.ContactLink] | None = None,
) -> Cita:
    """The API's view of an appointment; `patients`: its page's patient links, read at once (else read here)."""
    tz = zone(record.timezone)
    patient = None
    if record.patient_contact_id is not None:
        if patients is not None:
            link = patients.get(record.patient_contact_id)
        else:
            link = contact_repo.get(conn, record.patient_contact_id)
        if link is not None:
            patient = PatientOut(name=link.full_name, phone=link.phone, email=link.email)
    return Cita(
        id=record.id,
        title=record.title,
        location_id=record.ghl_location_id,
        ghl_calendar_id=record.calendar_id,
        contact_id=record.contact_id,
        patient=patient,
        start_time=record.start_at.astimezone(tz),
        end_time=record.end_at.astimezone(tz),
        status=record.status,
        notes=record.notes,
        assigned_user_id=record.assigned_user_id,
        ghl_event_id=record.ghl_event_id,
        sync_state=record.sync_state,
        last_error=record.last_error,
        version=record.version,
        flags=record.flags,
        source=record.source,
        warnings=[ValidationWarning(code=w.code, message=w.message) for w in warnings or []],
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _issues_error(result: ValidationResult) -> ApiError:
    first = result.errors[0]
    all_conflicts = all(issue.code == "schedule_conflict" for issue in result.errors)
    details = [issue.model_dump(exclude_none=True) for issue in result.errors]
    return ApiError(409 if all_conflicts else 422, first.code, first.message, details=details)


@dataclass(frozen=True)
class _Slot:
    """What validation needs to know about the proposed appointment."""

    calendar_id: str
    start: datetime
    end: datetime


def _times(body: CitaIn, tz: str) -> tuple[datetime, datetime]:
    try:
        start = parse_client_datetime(body.start_time, tz, field="start_time")
        end = parse_client_datetime(body.end_time, tz, field="end_time")
    except DomainError as exc:
        raise ApiError(422, exc.code, exc.issue.message, details=[exc.issue.model_dump(exclude_none=True)]) from exc
    return as_utc(start), as_utc(end)


def _calendar_info(work: Work, location: location_repo.LocationRecord, calendar_id: str) -> CalendarInfo | None:
    records = locations.cached_calendars(work, location)
    if not any(r.ghl_calendar_id == calendar_id for r in records):
        records = locations.cached_calendars(work, location, refresh=True)  # created in GHL after the last sync?
    for record in records:
        if record.ghl_calendar_id == calendar_id:
            return CalendarInfo(
                id=record.ghl_calendar_id,
                location_id=location.ghl_location_id,
                name=record.name,
                is_active=record.is_active,
            )
    return None


def _validate(
    work: Work,
    conn: Connection,
    location: location_repo.LocationRecord,
    slot: _Slot,
    body: CitaIn,
    *,
    calendar: CalendarInfo | None,
    exclude_id: int | None = None,
) -> list[Issue]:
    """Validate under a lock on the calendar, so two overlapping bookings cannot both pass. Returns warnings."""
    repo.lock_calendar(conn, location.id, slot.calendar_id)
    others = [
        to_domain(r)
        for r in repo.overlapping(conn, location.id, slot.calendar_id, slot.start, slot.end, exclude_id=exclude_id)
    ]
    draft = AppointmentDraft(
        id=str(exclude_id) if exclude_id is not None else None,
        location_id=location.ghl_location_id,
        calendar_id=slot.calendar_id,
        title=body.title,
        start=slot.start,
        end=slot.end,
    )
    mode = ValidationMode(body.validation_mode) if body.validation_mode else None
    result = validate_appointment(draft, rules=rules_for(work, location), calendar=calendar, others=others, mode=mode)
    if not result.ok:
        raise _issues_error(result)
    return list(result.warnings)


def _calendar_id(body: CitaIn, location: location_repo.LocationRecord) -> str:
    calendar_id = body.ghl_calendar_id or location.default_calendar_id
    if not calendar_id:
        raise ApiError(
            422,
            "calendar_required",
            "Indique ghl_calendar_id o configure un calendario por defecto para la sede.",
            details=[{"field": "ghl_calendar_id", "message": "Campo obligatorio."}],
        )
    return calendar_id


def _link_patient(
    conn: Connection, location: location_repo.LocationRecord, body: CitaIn, now: datetime
) -> tuple[int | None, str | None, list[str]]:
    """(patient link id, GHL contact id if already known, data flags) for the request's contact or patient."""
    if body.patient is None:
        return None, body.contact_id, []
    patient = Patient(
        name=body.patient.name,
        phone=body.patient.phone,
        email=body.patient.email,
        document_id=body.patient.document_id,
        rv3_patient_id=body.patient.rv3_patient_id,
    )
    draft = build_contact(patient, location.ghl_location_id)
    link = contact_repo.upsert_patient(
        conn,
        location.id,
        patient_key(patient),
        {
            "rv3_patient_id": patient.rv3_patient_id,
            "full_name": draft.name,
            "phone": draft.phone,
            "email": draft.email,
            "flags": draft.flags,
        },
        now,
    )
    return link.id, link.ghl_contact_id, draft.flags


def _replay(conn: Connection, key: str, request_hash: str) -> tuple[int, dict[str, Any]] | None:
    row = conn.execute(
        sa.select(idempotency_keys).where(idempotency_keys.c.scope == CREATE_SCOPE, idempotency_keys.c.key == key)
    ).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "La Idempotency-Key ya se usó con un contenido distinto.",
        )
    return int(row.status_code), json.loads(row.response_body)


def create(
    work: Work, body: CitaIn, *, idempotency_key: str | None, correlation_id: str | None
) -> tuple[int, dict[str, Any]]:
    """Create an appointment; with an Idempotency-Key a repeated request gets the first result back."""
    request_hash = payload_hash(body.model_dump(mode="json"))
    db = work.database
    if idempotency_key:
        with db.transaction() as conn:
            replay = _replay(conn, idempotency_key, request_hash)
        if replay is not None:
            return replay
    location = locations.resolve_location(work, body.location_id)
    if not location.is_active:
        raise ApiError(409, "location_inactive", "La sede está desactivada.")
    calendar_id = _calendar_id(body, location)
    start, end = _times(body, location.timezone)
    calendar = _calendar_info(work, location, calendar_id)
    now = work.now()
    try:
        with db.transaction() as conn:
            if idempotency_key:
                # Claim the key first: a concurrent request with the same key waits here, then replays.
                conn.execute(
                    idempotency_keys.insert().values(
                        scope=CREATE_SCOPE, key=idempotency_key, request_hash=request_hash, created_at=now
                    )
                )
            warnings = _validate(work, conn, location, _Slot(calendar_id, start, end), body, calendar=calendar)
            link_id, contact_id, flags = _link_patient(conn, location, body, now)
            appointment = Appointment(
                id="new",
                location_id=location.ghl_location_id,
                calendar_id=calendar_id,
                contact_id=contact_id,
                title=body.title,
                notes=body.notes,
                assigned_user_id=body.assigned_user_id,
                start=start,
                end=end,
                status=AppointmentStatus.scheduled,
                source=Source.rv3,
                flags=flags,
            )
            record = protocol.new_local(appointment, at=now)
            appointment_id = repo.insert(
                conn,
                {
                    **repo.content_values(record.appointment),
                    **repo.sync_values(record),
                    "location_id": location.id,
                    "patient_contact_id": link_id,
                    "source": Source.rv3.value,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            entry = dispatch.record_change(
                conn,
                appointment_id=appointment_id,
                operation="create",
                version=1,
                now=now,
                correlation_id=correlation_id,
            )
            stored = repo.get(conn, appointment_id)
            assert stored is not None
            response = _cita(conn, stored, warnings).model_dump(mode="json")
            if idempotency_key:
                conn.execute(
                    idempotency_keys.update()
                    .where(idempotency_keys.c.scope == CREATE_SCOPE, idempotency_keys.c.key == idempotency_key)
                    .values(status_code=201, response_body=json.dumps(response, ensure_ascii=False))
                )
    except sa.exc.IntegrityError:
        if not idempotency_key:
            raise
        with db.transaction() as conn:  # the same key committed concurrently: answer with its result
            replay = _replay(conn, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay
    dispatch.send(work, entry)
    return 201, response


def _load(conn: Connection, appointment_id: int) -> repo.AppointmentRecord:
    record = repo.get(conn, appointment_id)
    if record is None:
        raise NOT_FOUND
    return record


def get(work: Work, appointment_id: int) -> Cita:
    with work.transaction() as conn:
        return _cita(conn, _load(conn, appointment_id))


def _check_version(record: repo.AppointmentRecord, if_match: int | None) -> None:
    if if_match is not None and if_match != record.version:
        raise ApiError(
            412,
            "version_mismatch",
            f"La cita fue modificada por otra persona (versión actual {record.version}); recárguela y reintente.",
            details=[{"current_version": record.version}],
        )


def update(
    work: Work, appointment_id: int, body: CitaUpdateIn, *, if_match: int | None, correlation_id: str | None
) -> Cita:
    db = work.database
    with db.transaction() as conn:
        current = _load(conn, appointment_id)
    _check_version(current, if_match)
    if current.status == AppointmentStatus.cancelled.value:
        raise ApiError(409, "appointment_cancelled", "La cita está cancelada; cree una nueva.")
    if body.location_id and body.location_id != current.ghl_location_id:
        raise ApiError(409, "location_change_not_supported", "No se puede mover una cita a otra sede.")
    with db.transaction() as conn:
        location = location_repo.get_location(conn, current.location_id)
    assert location is not None
    calendar_id = body.ghl_calendar_id or current.calendar_id
    start, end = _times(body, location.timezone)
    calendar = _calendar_info(work, location, calendar_id)

    def edit(conn: Connection, now: datetime) -> tuple[OutboxEntry, Cita]:
        warnings = _validate(
            work, conn, location, _Slot(calendar_id, start, end), body, calendar=calendar, exclude_id=current.id
        )
        link_id, contact_id, flags = _link_patient(conn, location, body, now)
        same_contact = (
            link_id == current.patient_contact_id
            if body.patient is not None
            else contact_id is not None and contact_id == current.contact_id
        )
        if not same_contact:
            raise ApiError(
                409,
                "contact_change_not_supported",
                "No se puede cambiar el paciente de una cita; cancélela y cree una nueva.",
            )
        changes = {
            "calendar_id": calendar_id,
            "title": body.title,
            "notes": body.notes,
            "assigned_user_id": body.assigned_user_id,
            "start": start,
            "end": end,
            "status": AppointmentStatus(body.status or current.status),
            "flags": sorted(set(current.flags) | set(flags)),
        }
        entry = _record_edit(conn, current, changes, operation="update", now=now, correlation_id=correlation_id)
        return entry, _cita(conn, _load(conn, current.id), warnings)

    entry, result = _editing(work, edit)
    dispatch.send(work, entry)
    return result


EDIT_TRIES = 5


def _editing(work: Work, edit: Callable[[Connection, datetime], T]) -> T:
    """Run a front-desk edit in one transaction; the sync's own bookkeeping changing the row meanwhile
    (a webhook, the worker's answer) is no reason to refuse the edit: it is simply made again."""
    for _ in range(EDIT_TRIES):
        try:
            with work.transaction() as conn:
                return edit(conn, work.now())
        except Contention:
            continue
    raise ApiError(409, "version_mismatch", "La cita cambió mientras se guardaba; recárguela y reintente.")


def _record_edit(
    conn: Connection,
    current: repo.AppointmentRecord,
    changes: dict[str, Any],
    *,
    operation: str,
    now: datetime,
    correlation_id: str | None,
) -> OutboxEntry:
    """A front-desk edit: the newest edit for the sync (`protocol.local_edit`), a new version, and its outbox
    row; refused when someone else edited the appointment meanwhile."""
    row = _load(conn, current.id)
    if row.version != current.version:
        raise ApiError(409, "version_mismatch", "La cita cambió mientras se guardaba; recárguela y reintente.")
    edited = to_domain(row).model_copy(update=changes)
    record = protocol.local_edit(repo.sync_record(row), edited, at=now)
    repo.save_sync(conn, row, record, content=repo.content_values(record.appointment), now=now)
    return dispatch.record_change(
        conn,
        appointment_id=current.id,
        operation=operation,
        version=current.version + 1,
        now=now,
        correlation_id=correlation_id,
    )


def cancel(work: Work, appointment_id: int, *, if_match: int | None, correlation_id: str | None) -> Cita:
    """Cancel (idempotent: cancelling a cancelled appointment changes nothing and answers the same)."""

    def edit(conn: Connection, now: datetime) -> tuple[OutboxEntry | None, Cita]:
        current = _load(conn, appointment_id)
        _check_version(current, if_match)
        if current.status == AppointmentStatus.cancelled.value:
            return None, _cita(conn, current)
        changes = {"status": AppointmentStatus.cancelled}
        entry = _record_edit(conn, current, changes, operation="cancel", now=now, correlation_id=correlation_id)
        return entry, _cita(conn, _load(conn, current.id))

    entry, result = _editing(work, edit)
    if entry is not None:
        dispatch.send(work, entry)
    return result


def retry(work: Work, appointment_id: int, *, correlation_id: str | None) -> Cita:
    """Send an appointment whose sync failed (GHL refused it, or retrying was used up) to GHL again, as it is now:
    staff fixed the cause (in GHL, or waited out an outage). Refused when its sync has not failed."""

    def edit(conn: Connection, now: datetime) -> tuple[OutboxEntry, Cita]:
        current = _load(conn, appointment_id)
        if current.sync_state != SyncState.error.value:
            raise ApiError(
                409,
                "appointment_not_failed",
                "La sincronización de la cita no ha fallado; no hay nada que reintentar.",
                details=[{"sync_state": current.sync_state}],
            )
        repo.save_sync(conn, current, protocol.retry(repo.sync_record(current)))
        entry = dispatch.record_change(
            conn,
            appointment_id=current.id,
            operation="retry",
            version=current.version,
            now=now,
            correlation_id=correlation_id,
        )
        return entry, _cita(conn, _load(conn, current.id))

    entry, result = _editing(work, edit)
    log.info("sync retry requested", extra={"operation": "citas.retry", "appointment_id": appointment_id})
    dispatch.send(work, entry)
    return result


def history(work: Work, appointment_id: int) -> CitaHistory:
    """Where the appointment's sync stands and its history, newest first: the changes sent to GHL, GHL's webhooks
    about its event (changes made in GHL, echoes of ours), the conflicts and who won them."""
    with work.transaction() as conn:
        record = _load(conn, appointment_id)
        rows = outbox.of_appointment(conn, appointment_id)
        location = location_repo.get_location(conn, record.location_id)
        seen = (
            inbox.of_event(conn, location.ghl_location_id, record.ghl_event_id)
            if location is not None and record.ghl_event_id
            else []
        )
        settled = conflict_repo.of_appointment(conn, appointment_id)
    changes = [
        CitaChange(
            operation=row.operation,
            status=row.status,
            version=row.appointment_version,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            done_at=row.done_at,
        )
        for row in rows
    ]
    return CitaHistory(
        id=record.id,
        sync_state=record.sync_state,
        last_error=record.last_error,
        changes=changes,
        ghl_changes=[CitaGhlChange(**vars(delivery)) for delivery in seen],
        conflicts=[CitaConflict(**vars(conflict)) for conflict in settled],
    )


def _location_filter(work: Work, ghl_location_id: str | None) -> location_repo.LocationRecord | None:
    if not ghl_location_id:
        return None
    with work.transaction() as conn:
        location = location_repo.find_location(conn, ghl_location_id)
    if location is None:
        raise ApiError(404, "location_not_found", f"La sede {ghl_location_id} no está configurada.")
    return location


def list_citas(work: Work, query: CitasQuery) -> CitaList:
    location = _location_filter(work, query.location_id)
    tz = location.timezone if location else work.settings.timezone
    start_from = start_before = None
    if query.desde or query.hasta:
        if query.desde and query.hasta and query.hasta < query.desde:
            raise ApiError(422, "invalid_range", "La fecha 'hasta' es anterior a 'desde'.")
        window = local_date_range(query.desde, query.hasta, tz)
        start_from, start_before = window.start, window.end
    statuses = [s.strip() for s in (query.status or "").split(",") if s.strip()]
    unknown = [s for s in statuses if s not in AppointmentStatus.__members__]
    if unknown:
        raise ApiError(
            400,
            "invalid_query",
            "Estado desconocido: " + ", ".join(unknown),
            details=[{"field": "status", "allowed": list(AppointmentStatus.__members__)}],
        )
    flt = repo.ListFilter(
        location_id=location.id if location else None,
        statuses=statuses,
        sync_state=query.sync_state,
        start_from=start_from,
        start_before=start_before,
    )
    with work.transaction() as conn:
        records, total = repo.list_page(conn, flt, offset=(query.page - 1) * query.page_size, limit=query.page_size)
        results = _citas(conn, records)
    return CitaList(count=total, page=query.page, page_size=query.page_size, results=results)


def _citas(conn: Connection, records: Sequence[repo.AppointmentRecord]) -> list[Cita]:
    """A page of appointments with their patients, read in one statement instead of one per appointment."""
    patients = contact_repo.get_many(conn, (r.patient_contact_id for r in records if r.patient_contact_id is not None))
    return [_cita(conn, r, patients=patients) for r in records]


def upcoming(work: Work, query: UpcomingQuery) -> CitaList:
    location = _location_filter(work, query.location_id)
    flt = repo.ListFilter(
        location_id=location.id if location else None,
        statuses=[s.value for s in AppointmentStatus if s != AppointmentStatus.cancelled],
        start_from=work.now(),
    )
    with work.transaction() as conn:
        records, total = repo.list_page(conn, flt, offset=0, limit=query.limit)
        results = _citas(conn, records)
    return CitaList(count=total, page=1, page_size=query.limit, results=results)
