"""Locations (GHL sub-accounts / clinic branches) and their cached GHL calendars."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.schema import appointments, calendars, locations

LOCATION_FIELDS = (
    "ghl_location_id",
    "name",
    "timezone",
    "is_active",
    "default_calendar_id",
    "working_hours",
    "validation_mode",
    "default_duration_min",
    "create_patients_from_ghl",
    "send_document_id",
)


@dataclass(frozen=True)
class LocationRecord:
    id: int
    ghl_location_id: str
    name: str
    timezone: str
    is_active: bool
    default_calendar_id: str | None
    working_hours: str | None
    validation_mode: str | None
    default_duration_min: int | None
    create_patients_from_ghl: bool
    send_document_id: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CalendarRecord:
    id: int
    location_id: int
    ghl_calendar_id: str
    name: str
    description: str | None
    timezone: str | None
    is_active: bool
    synced_at: datetime


_BY_GHL_ID = sa.select(locations).where(locations.c.ghl_location_id == sa.bindparam("b_ghl_id"))  # every webhook


def _location(row: sa.Row[Any]) -> LocationRecord:
    return LocationRecord(**{k: row._mapping[k] for k in LocationRecord.__dataclass_fields__})


def _calendar(row: sa.Row[Any]) -> CalendarRecord:
    return CalendarRecord(**{k: row._mapping[k] for k in CalendarRecord.__dataclass_fields__})


def list_locations(conn: Connection, *, active_only: bool = False) -> list[LocationRecord]:
    query = sa.select(locations).order_by(locations.c.id)
    if active_only:
        query = query.where(locations.c.is_active.is_(True))
    return [_location(row) for row in conn.execute(query)]


def get_location(conn: Connection, location_id: int) -> LocationRecord | None:
    row = conn.execute(sa.select(locations).where(locations.c.id == location_id)).first()
    return _location(row) if row else None


def find_location(conn: Connection, ghl_location_id: str) -> LocationRecord | None:
    row = conn.execute(_BY_GHL_ID, {"b_ghl_id": ghl_location_id}).first()
    return _location(row) if row else None


def insert_location(conn: Connection, values: Mapping[str, Any], now: datetime) -> LocationRecord:
    data = {k: values[k] for k in LOCATION_FIELDS if k in values}
    new_id = inserted_id(conn.execute(locations.insert().values(**data, created_at=now, updated_at=now)))
    record = get_location(conn, new_id)
    assert record is not None
    return record


def update_location(conn: Connection, location_id: int, values: Mapping[str, Any], now: datetime) -> None:
    data = {k: values[k] for k in LOCATION_FIELDS if k in values}
    conn.execute(locations.update().where(locations.c.id == location_id).values(**data, updated_at=now))


def has_appointments(conn: Connection, location_id: int) -> bool:
    query = sa.select(appointments.c.id).where(appointments.c.location_id == location_id).limit(1)
    return conn.execute(query).first() is not None


def delete_location(conn: Connection, location_id: int) -> None:
    conn.execute(calendars.delete().where(calendars.c.location_id == location_id))
    conn.execute(locations.delete().where(locations.c.id == location_id))


def list_calendars(conn: Connection, location_id: int) -> list[CalendarRecord]:
    query = sa.select(calendars).where(calendars.c.location_id == location_id).order_by(calendars.c.name)
    return [_calendar(row) for row in conn.execute(query)]


def get_calendar(conn: Connection, location_id: int, ghl_calendar_id: str) -> CalendarRecord | None:
    row = conn.execute(
        sa.select(calendars).where(
            calendars.c.location_id == location_id, calendars.c.ghl_calendar_id == ghl_calendar_id
        )
    ).first()
    return _calendar(row) if row else None


@dataclass(frozen=True)
class CalendarSnapshot:
    """A calendar as GHL reported it."""

    ghl_calendar_id: str
    name: str
    description: str | None
    timezone: str | None
    is_active: bool


def replace_calendars(
    conn: Connection, location_id: int, snapshot: Iterable[CalendarSnapshot], now: datetime
) -> list[CalendarRecord]:
    """Make the cache equal GHL's list; calendars GHL no longer returns are kept but marked inactive."""
    seen: set[str] = set()
    for cal in snapshot:
        seen.add(cal.ghl_calendar_id)
        values = {
            "name": cal.name,
            "description": cal.description,
            "timezone": cal.timezone,
            "is_active": cal.is_active,
            "synced_at": now,
        }
        updated = conn.execute(
            calendars.update()
            .where(calendars.c.location_id == location_id, calendars.c.ghl_calendar_id == cal.ghl_calendar_id)
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(
                calendars.insert().values(location_id=location_id, ghl_calendar_id=cal.ghl_calendar_id, **values)
            )
    stale = calendars.c.location_id == location_id
    if seen:
        stale = sa.and_(stale, calendars.c.ghl_calendar_id.not_in(seen))
    conn.execute(calendars.update().where(stale).values(is_active=False, synced_at=now))
    return list_calendars(conn, location_id)
