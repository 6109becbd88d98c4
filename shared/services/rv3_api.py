"""The RV3 endpoints' use cases: therapist ⇄ GHL user mapping, GHL bookings waiting for a patient, sync status."""

from __future__ import annotations

from shared import telemetry
from shared.api.schemas import (
    Rv3FailedWrite,
    Rv3RejectedRow,
    Rv3ResolveIn,
    Rv3Review,
    Rv3ReviewContact,
    Rv3ReviewList,
    Rv3StatusList,
    Rv3StatusMapIn,
    Rv3StatusOut,
    Rv3SyncStatus,
    Rv3Therapist,
    Rv3TherapistIn,
    Rv3TherapistList,
)
from shared.http import ApiError
from shared.rv3.port import Rv3Refused, Rv3Source, Rv3Unavailable
from shared.services import locations, rv3_capture, rv3_source, rv3_writeback
from shared.store import appointments as repo
from shared.store import contacts as contact_repo
from shared.store import locations as location_repo
from shared.store import rv3 as store
from shared.work import Work
from sync_core.rv3_mapping import TherapistLink, describe_refusal
from sync_core.rv3_statuses import MappingRefused, Rv3StatusMap, StatusChoice, checked_choices
from sync_core.times import zone

NOT_CONFIGURED = ApiError(
    503, "rv3_not_configured", "La integración con Reflexo V3 no está configurada (falta RV3_SQL_URL)."
)
NO_LOCATION = ApiError(409, "rv3_location_missing", "No hay una sede activa para las citas de Reflexo V3.")
RV3_DOWN = ApiError(
    503, "rv3_unavailable", "No se pudo leer la base de datos de Reflexo V3; reintente en unos minutos."
)
THERAPIST_NOT_FOUND = ApiError(404, "therapist_not_found", "El terapeuta no existe en Reflexo V3.")


def _where(work: Work) -> location_repo.LocationRecord:
    if not rv3_source.configured(work.settings):
        raise NOT_CONFIGURED
    with work.transaction() as conn:
        where = rv3_source.location(work.settings, conn)
    if where is None:
        raise NO_LOCATION
    return where


def _source(work: Work) -> Rv3Source:
    try:
        source = work.rv3
        source.ping()
    except Rv3Unavailable as exc:
        raise RV3_DOWN from exc
    return source


# --- therapists ---


def list_therapists(work: Work) -> Rv3TherapistList:
    where = _where(work)
    try:
        therapists = _source(work).therapists()
    except Rv3Unavailable as exc:
        raise RV3_DOWN from exc
    with work.transaction() as conn:
        links = store.therapist_links(conn, where.id)
    results = [
        Rv3Therapist(
            id=t.id,
            name=t.full_name,
            is_active=t.is_active,
            ghl_user_id=links[t.id].ghl_user_id if t.id in links else None,
            ghl_calendar_id=links[t.id].ghl_calendar_id if t.id in links else None,
        )
        for t in therapists
    ]
    return Rv3TherapistList(count=len(results), results=results)


def get_therapist(work: Work, therapist_id: int) -> Rv3Therapist:
    for therapist in list_therapists(work).results:
        if therapist.id == therapist_id:
            return therapist
    raise THERAPIST_NOT_FOUND


def put_therapist(work: Work, therapist_id: int, body: Rv3TherapistIn) -> Rv3Therapist:
    """Map the therapist to a GHL user; their upcoming appointments are reassigned in GHL."""
    where = _where(work)
    get_therapist(work, therapist_id)
    if body.ghl_calendar_id is not None:
        calendars = locations.cached_calendars(work, where)
        if not any(c.ghl_calendar_id == body.ghl_calendar_id and c.is_active for c in calendars):
            raise ApiError(
                422,
                "calendar_unavailable",
                f"El calendario {body.ghl_calendar_id} no existe o no está disponible.",
                details=[{"field": "ghl_calendar_id", "message": "No pertenece a esta sede o está inactivo."}],
            )
    with work.transaction() as conn:
        link = TherapistLink(ghl_user_id=body.ghl_user_id, ghl_calendar_id=body.ghl_calendar_id)
        store.put_therapist(conn, where.id, therapist_id, link, work.now())
    rv3_capture.remap_therapist(work, therapist_id)
    return get_therapist(work, therapist_id)


def delete_therapist(work: Work, therapist_id: int) -> None:
    """Forget the mapping: the therapist's next appointments reach GHL without an assigned user."""
    where = _where(work)
    with work.transaction() as conn:
        deleted = store.delete_therapist(conn, where.id, therapist_id)
    if not deleted:
        raise ApiError(404, "therapist_mapping_not_found", "El terapeuta no tiene un usuario de GoHighLevel asignado.")
    rv3_capture.remap_therapist(work, therapist_id)


# --- statuses ---

log = telemetry.get_logger("rv3_api")


RV3_REFUSED = ApiError(
    503,
    "rv3_refused",
    "Reflexo V3 no permite leer sus estados de cita: revise los permisos (GRANT) del usuario de la sincronización.",
)


def _status_map(work: Work, where: location_repo.LocationRecord) -> Rv3StatusMap:
    try:
        rows = _source(work).statuses()
    except Rv3Unavailable as exc:
        raise RV3_DOWN from exc
    except Rv3Refused as exc:
        raise RV3_REFUSED from exc
    with work.transaction() as conn:
        return rv3_source.status_map(conn, where, rows)


def _status_list(statuses: Rv3StatusMap) -> Rv3StatusList:
    results = [Rv3StatusOut.model_validate(entry.model_dump()) for entry in statuses.entries()]
    return Rv3StatusList(count=len(results), results=results, missing=statuses.missing(), problems=statuses.problems())


def list_statuses(work: Work) -> Rv3StatusList:
    """RV3's statuses, what each means to the sync (by the location's mapping or by its name), what is missing."""
    return _status_list(_status_map(work, _where(work)))


def put_statuses(work: Work, body: Rv3StatusMapIn) -> Rv3StatusList:
    """Replace the location's mapping, checked against the statuses RV3 has. Linked appointments whose status
    now means something else reach GHL; write-backs refused for want of a status RV3 now has are written again."""
    where = _where(work)
    before = _status_map(work, where)
    wanted = [StatusChoice.model_validate(choice.model_dump()) for choice in body.statuses]
    try:
        choices = checked_choices(before.rows, wanted)
    except MappingRefused as exc:
        raise ApiError(
            422,
            "invalid_status_mapping",
            "El mapeo de estados no se puede aplicar a los estados de Reflexo V3.",
            details=[{"field": "statuses", "message": reason} for reason in exc.reasons],
        ) from exc
    after = Rv3StatusMap.of(before.rows, choices)
    with work.transaction() as conn:
        store.put_status_choices(conn, where.id, choices, work.now())
    sent = rv3_capture.remap_statuses(work, before, after)
    retried = rv3_writeback.retry_missing_statuses(work, where, after)
    log.info(
        "rv3 status mapping saved: %d statuses, %d changes sent to GHL, %d write-backs again",
        len(choices),
        sent,
        retried,
        extra={"operation": "rv3_statuses", "location_id": where.ghl_location_id},
    )
    return _status_list(after)


# --- bookings waiting for a patient ---


def _review_out(work: Work, review: store.Review) -> Rv3Review:
    with work.transaction() as conn:
        record = repo.get(conn, review.appointment_id)
        assert record is not None
        link = contact_repo.get(conn, record.patient_contact_id) if record.patient_contact_id else None
    tz = zone(record.timezone)
    return Rv3Review(
        id=review.id,
        cita_id=record.id,
        ghl_event_id=record.ghl_event_id,
        title=record.title,
        start_time=record.start_at.astimezone(tz),
        end_time=record.end_at.astimezone(tz),
        contact=Rv3ReviewContact(
            ghl_contact_id=record.contact_id,
            name=link.full_name if link else None,
            phone=link.phone if link else None,
            email=link.email if link else None,
        ),
        reason=review.reason,
        status="resolved" if review.status == store.REVIEW_RESOLVED else "open",
        rv3_patient_id=int(review.rv3_patient_id) if review.rv3_patient_id else None,
        rv3_appointment_id=int(record.rv3_appointment_id) if record.rv3_appointment_id else None,
        created_at=review.created_at,
    )


def list_reviews(work: Work) -> Rv3ReviewList:
    where = _where(work)
    with work.transaction() as conn:
        open_reviews = store.reviews(conn, where.id, store.REVIEW_OPEN)
    results = [_review_out(work, review) for review in open_reviews]
    return Rv3ReviewList(count=len(results), results=results)


def resolve_review(work: Work, review_id: int, body: Rv3ResolveIn) -> Rv3Review:
    """Say which RV3 patient a GHL booking is for: the contact is linked to them and the appointment is created
    in RV3 (now, or by the next capture run if RV3 cannot be reached)."""
    where = _where(work)
    with work.transaction() as conn:
        review = store.get_review(conn, review_id)
    if review is None or review.location_id != where.id:
        raise ApiError(404, "review_not_found", "La reserva por revisar no existe.")
    if review.status != store.REVIEW_OPEN:
        raise ApiError(409, "review_not_open", "La reserva ya fue asignada a un paciente.")
    try:
        patients = _source(work).patients([body.rv3_patient_id])
    except Rv3Unavailable as exc:
        raise RV3_DOWN from exc
    if not patients or patients[0].deleted:
        raise ApiError(404, "patient_not_found", "El paciente no existe en Reflexo V3.")
    now = work.now()
    with work.transaction() as conn:
        values = {"writeback": store.WRITE_CREATE, "create_marker": {"patient_id": body.rv3_patient_id}}
        store.update_link(conn, review.appointment_id, values, now)
        store.resolve_review(conn, review.appointment_id, str(body.rv3_patient_id), now)
    rv3_writeback.flush(work, [review.appointment_id])
    with work.transaction() as conn:
        resolved = store.get_review(conn, review_id)
    assert resolved is not None
    return _review_out(work, resolved)


# --- status ---


def _status_problems(work: Work, where: location_repo.LocationRecord) -> list[str]:
    """What is wrong with RV3's statuses; nothing to say when RV3 cannot be read (`last_error` says that)."""
    try:
        rows = work.rv3.statuses()
    except (Rv3Unavailable, Rv3Refused):
        return []
    with work.transaction() as conn:
        return rv3_source.status_map(conn, where, rows).problems()


def status(work: Work) -> Rv3SyncStatus:
    if not rv3_source.configured(work.settings):
        return Rv3SyncStatus(configured=False)
    with work.transaction() as conn:
        where = rv3_source.location(work.settings, conn)
        if where is None:
            return Rv3SyncStatus(configured=True, last_error="rv3_location_missing")
        appointments = store.cursor_state(conn, where.id, store.APPOINTMENTS)
        patients = store.cursor_state(conn, where.id, store.PATIENTS)
        backlog = store.backlog(conn, where.id)
        rejected = store.rejected_rows(conn, where.id)
        failed = store.failed_writes(conn, where.id)
    return Rv3SyncStatus(
        status_problems=_status_problems(work, where),
        configured=True,
        location_id=where.ghl_location_id,
        last_run_at=appointments.last_run_at,
        last_error=appointments.last_error,
        appointments_read_to=store.stamp_text(appointments.mark.updated_at) if appointments.mark else None,
        patients_read_to=store.stamp_text(patients.mark.updated_at) if patients.mark else None,
        swept_at=appointments.swept_at,
        failed_writes=[
            Rv3FailedWrite(
                cita_id=write.appointment_id,
                rv3_appointment_id=int(write.rv3_appointment_id) if write.rv3_appointment_id else None,
                operation="create" if write.create else "update",
                reason=describe_refusal(write.last_error),
                failed_at=write.failed_at,
            )
            for write in failed
        ],
        rejected_rows=[
            Rv3RejectedRow(
                table=row.rv3_table,
                rv3_id=int(row.rv3_id),
                reason=row.reason,
                rv3_updated_at=row.rv3_stamp,
                seen_at=row.seen_at,
            )
            for row in rejected
        ],
        **backlog,
    )
