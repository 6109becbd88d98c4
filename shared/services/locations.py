"""Location settings and their GHL calendars: CRUD, default calendar, calendar cache refreshed from GHL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from shared import telemetry
from shared.api.schemas import (
    CalendarList,
    CalendarOut,
    LocationList,
    LocationSettings,
    LocationSettingsIn,
)
from shared.ghl.errors import GhlError
from shared.http import ApiError
from shared.services.ghl_errors import api_error_from_ghl
from shared.store import locations as repo
from shared.work import Work

log = telemetry.get_logger("locations")

CALENDAR_CACHE_TTL = timedelta(minutes=15)

LOCATION_NOT_FOUND = ApiError(404, "location_not_found", "La sede no existe.")


def _out(record: repo.LocationRecord) -> LocationSettings:
    return LocationSettings.model_validate(record, from_attributes=True)


def _calendar_out(record: repo.CalendarRecord, location: repo.LocationRecord) -> CalendarOut:
    return CalendarOut(
        id=record.ghl_calendar_id,
        name=record.name,
        description=record.description,
        timezone=record.timezone or location.timezone,
        isActive=record.is_active,
        locationId=location.ghl_location_id,
    )


def list_settings(work: Work, *, active_only: bool = False) -> LocationList:
    with work.transaction() as conn:
        records = repo.list_locations(conn, active_only=active_only)
    return LocationList(count=len(records), results=[_out(r) for r in records])


def get_settings(work: Work, location_id: int) -> LocationSettings:
    with work.transaction() as conn:
        record = repo.get_location(conn, location_id)
    if record is None:
        raise LOCATION_NOT_FOUND
    return _out(record)


def _duplicate() -> ApiError:
    return ApiError(409, "location_exists", "Ya existe una sede con ese ghl_location_id.")


def create_settings(work: Work, body: LocationSettingsIn) -> LocationSettings:
    try:
        with work.transaction() as conn:
            if repo.find_location(conn, body.ghl_location_id):
                raise _duplicate()
            record = repo.insert_location(conn, body.model_dump(), work.now())
    except sa.exc.IntegrityError as exc:  # a concurrent create of the same location
        raise _duplicate() from exc
    return _out(record)


def update_settings(work: Work, location_id: int, body: LocationSettingsIn) -> LocationSettings:
    try:
        with work.transaction() as conn:
            if repo.get_location(conn, location_id) is None:
                raise LOCATION_NOT_FOUND
            other = repo.find_location(conn, body.ghl_location_id)
            if other is not None and other.id != location_id:
                raise _duplicate()
            repo.update_location(conn, location_id, body.model_dump(), work.now())
            record = repo.get_location(conn, location_id)
    except sa.exc.IntegrityError as exc:
        raise _duplicate() from exc
    assert record is not None
    return _out(record)


def delete_settings(work: Work, location_id: int) -> None:
    with work.transaction() as conn:
        if repo.get_location(conn, location_id) is None:
            raise LOCATION_NOT_FOUND
        if repo.has_appointments(conn, location_id):
            raise ApiError(
                409,
                "location_has_appointments",
                "La sede tiene citas registradas; desactívela (is_active=false) en lugar de eliminarla.",
            )
        repo.delete_location(conn, location_id)


def _refresh_calendars(work: Work, location: repo.LocationRecord) -> list[repo.CalendarRecord]:
    try:
        fetched = work.ghl.list_calendars(location.ghl_location_id)
    except GhlError as exc:
        raise api_error_from_ghl(exc, not_found="La sede no existe en GoHighLevel.") from exc
    snapshot = [
        repo.CalendarSnapshot(
            ghl_calendar_id=cal.id,
            name=cal.name,
            description=cal.description,
            timezone=getattr(cal, "timezone", None),
            is_active=cal.isActive is not False,
        )
        for cal in fetched
    ]
    with work.transaction() as conn:
        return repo.replace_calendars(conn, location.id, snapshot, work.now())


def cached_calendars(work: Work, location: repo.LocationRecord, *, refresh: bool = False) -> list[repo.CalendarRecord]:
    with work.transaction() as conn:
        cached = repo.list_calendars(conn, location.id)
    fresh = cached and min(c.synced_at for c in cached) > work.now() - CALENDAR_CACHE_TTL
    return cached if fresh and not refresh else _refresh_calendars(work, location)


def _location_or_404(work: Work, location_id: int) -> repo.LocationRecord:
    with work.transaction() as conn:
        location = repo.get_location(conn, location_id)
    if location is None:
        raise LOCATION_NOT_FOUND
    return location


def calendars(work: Work, location_id: int, *, refresh: bool = False) -> CalendarList:
    location = _location_or_404(work, location_id)
    records = cached_calendars(work, location, refresh=refresh)
    return CalendarList(calendars=[_calendar_out(r, location) for r in records], total=len(records))


def set_default_calendar(work: Work, location_id: int, calendar_id: str) -> LocationSettings:
    location = _location_or_404(work, location_id)
    records = cached_calendars(work, location, refresh=False)
    if not any(r.ghl_calendar_id == calendar_id and r.is_active for r in records):
        records = _refresh_calendars(work, location)  # it may have been created in GHL since the last sync
    if not any(r.ghl_calendar_id == calendar_id and r.is_active for r in records):
        raise ApiError(
            422,
            "calendar_unavailable",
            f"El calendario {calendar_id} no existe o no está disponible.",
            details=[{"field": "calendar_id", "message": "No pertenece a esta sede o está inactivo."}],
        )
    with work.transaction() as conn:
        repo.update_location(conn, location_id, {"default_calendar_id": calendar_id}, work.now())
        record = repo.get_location(conn, location_id)
    assert record is not None
    return _out(record)


def _provision_configured_location(work: Work, ghl_location_id: str) -> repo.LocationRecord:
    """Private-integration mode names its one location in settings: register it from GHL on first use."""
    try:
        found = work.ghl.get_location(ghl_location_id)
    except GhlError as exc:
        raise api_error_from_ghl(exc, not_found="La sede configurada no existe en GoHighLevel.") from exc
    values = {
        "ghl_location_id": ghl_location_id,
        "name": found.name or ghl_location_id,
        "timezone": found.timezone or work.settings.timezone,
        "is_active": True,
    }
    try:
        with work.transaction() as conn:
            record = repo.insert_location(conn, values, work.now())
    except sa.exc.IntegrityError:  # provisioned concurrently by another request
        with work.transaction() as conn:
            existing = repo.find_location(conn, ghl_location_id)
        assert existing is not None
        return existing
    log.info("registered the configured GHL location", extra={"operation": "location_provision"})
    return record


def resolve_location(work: Work, ghl_location_id: str | None) -> repo.LocationRecord:
    """The location a request means: the one named, else the configured one, else the only active one."""
    settings = work.settings
    wanted = ghl_location_id or settings.ghl_location_id
    with work.transaction() as conn:
        if wanted:
            location = repo.find_location(conn, wanted)
        active = repo.list_locations(conn, active_only=True)
    if wanted:
        if location is not None:
            return location
        if wanted == settings.ghl_location_id and settings.ghl_mode == "private":
            return _provision_configured_location(work, wanted)
        raise ApiError(404, "location_not_found", f"La sede {wanted} no está configurada.")
    if len(active) != 1:
        raise ApiError(
            422,
            "location_required",
            "Indique location_id: hay varias sedes activas." if active else "No hay sedes activas configuradas.",
        )
    return active[0]


def ghl_calendars(work: Work, ghl_location_id: str | None, *, refresh: bool = False) -> CalendarList:
    location = resolve_location(work, ghl_location_id)
    records = cached_calendars(work, location, refresh=refresh)
    return CalendarList(calendars=[_calendar_out(r, location) for r in records], total=len(records))
