"""The stored appointments as the reconciliation reads them: streamed in key order, chunk by chunk, per slice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.database import Database
from shared.store.outbox import DISPATCHED, PENDING
from shared.store.rv3 import PENDING_WRITES, WRITE_FAILED, WRITE_REVIEW
from shared.store.schema import appointments, outbox, rv3_appointments
from sync_core.models import AppointmentStatus
from sync_core.rv3_mapping import Rv3Snapshot, SyncedAppointment
from sync_core.rv3_reconcile import LinkedAppointment

CHUNK = 500

# The merge-join compares GHL event ids in code-point order; a database's default collation may ignore case
# (Azure SQL) or follow a locale (PostgreSQL), so the ids are sorted and compared under a binary one.
_BINARY_COLLATIONS = {
    "postgresql": "C",
    "mssql": "Latin1_General_BIN2",
    "mysql": "utf8mb4_bin",
    "mariadb": "utf8mb4_bin",
}


@dataclass(frozen=True)
class StoredAppointment:
    """The columns the reconciliation compares, and whether a change of it is still on its way to GHL."""

    id: int
    calendar_id: str
    contact_id: str | None
    title: str
    assigned_user_id: str | None
    start_at: datetime
    end_at: datetime
    status: str
    ghl_event_id: str | None
    in_flight: bool


_open_outbox = (
    sa.exists()
    .where(outbox.c.appointment_id == appointments.c.id, outbox.c.status.in_([PENDING, DISPATCHED]))
    .label("in_flight")
)
_COLUMNS = [
    appointments.c.id,
    appointments.c.calendar_id,
    appointments.c.contact_id,
    appointments.c.title,
    appointments.c.assigned_user_id,
    appointments.c.start_at,
    appointments.c.end_at,
    appointments.c.status,
    appointments.c.ghl_event_id,
    _open_outbox,
]


def _stored(row: sa.Row[Any]) -> StoredAppointment:
    data = dict(row._mapping)
    data["in_flight"] = bool(data["in_flight"])
    return StoredAppointment(**data)


def binary(column: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[str]:
    """`column` under the dialect's binary collation (SQLite compares binary already)."""
    collation = _BINARY_COLLATIONS.get(dialect)
    return sa.collate(column, collation) if collation else column


def in_slice(location_id: int, calendar_id: str, start: datetime, end: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        appointments.c.location_id == location_id,
        appointments.c.calendar_id == calendar_id,
        appointments.c.start_at >= start,
        appointments.c.start_at < end,
    ]


def stream_slice(
    db: Database, location_id: int, calendar_id: str, start: datetime, end: datetime, *, chunk: int = CHUNK
) -> Iterator[StoredAppointment]:
    """The calendar's appointments starting in [start, end): those without a GHL event id first (by id), then
    by GHL event id in code-point order. Read `chunk` rows at a time, each chunk its own short transaction
    (keyset pagination), so neither memory nor a held lock grows with the number of appointments."""
    where = in_slice(location_id, calendar_id, start, end)
    after_id = 0
    while True:
        with db.transaction() as conn:
            rows = conn.execute(
                sa.select(*_COLUMNS)
                .where(*where, appointments.c.ghl_event_id.is_(None), appointments.c.id > after_id)
                .order_by(appointments.c.id)
                .limit(chunk)
            ).all()
        yield from (_stored(row) for row in rows)
        if len(rows) < chunk:
            break
        after_id = rows[-1].id
    after_key: str | None = None
    while True:
        with db.transaction() as conn:
            rows = conn.execute(linked_chunk(where, conn.dialect.name, after_key, chunk)).all()
        yield from (_stored(row) for row in rows)
        if len(rows) < chunk:
            return
        after_key = rows[-1].ghl_event_id


def linked_chunk(
    where: list[sa.ColumnElement[bool]], dialect: str, after_key: str | None, chunk: int
) -> sa.Select[Any]:
    """The next `chunk` appointments linked to a GHL event, after `after_key` in binary order."""
    key = binary(appointments.c.ghl_event_id, dialect)
    query = sa.select(*_COLUMNS).where(*where, appointments.c.ghl_event_id.isnot(None))
    if after_key is not None:
        query = query.where(key > after_key)
    return query.order_by(key).limit(chunk)


def by_event(conn: Connection, location_id: int, ghl_event_id: str) -> StoredAppointment | None:
    row = conn.execute(
        sa.select(*_COLUMNS).where(
            appointments.c.location_id == location_id, appointments.c.ghl_event_id == ghl_event_id
        )
    ).first()
    return _stored(row) if row else None


def calendars_in_window(conn: Connection, location_id: int, start: datetime, end: datetime) -> list[str]:
    """The calendars the location's appointments starting in [start, end) are booked on."""
    rows = conn.execute(
        sa.select(appointments.c.calendar_id)
        .where(
            appointments.c.location_id == location_id, appointments.c.start_at >= start, appointments.c.start_at < end
        )
        .group_by(appointments.c.calendar_id)
    )
    return [row.calendar_id for row in rows]


def count_in_slice(conn: Connection, location_id: int, calendar_id: str, start: datetime, end: datetime) -> int:
    query = sa.select(sa.func.count()).select_from(appointments).where(*in_slice(location_id, calendar_id, start, end))
    return int(conn.execute(query).scalar_one())


# --- RV3's appointments (with RV3_SQL_URL): the sync's side of each, by RV3 id or streamed by start ---

_linked_to_rv3 = appointments.outerjoin(rv3_appointments, rv3_appointments.c.appointment_id == appointments.c.id)
_RV3_COLUMNS = [
    appointments.c.id,
    appointments.c.rv3_appointment_id,
    appointments.c.ghl_event_id,
    appointments.c.calendar_id,
    appointments.c.title,
    appointments.c.assigned_user_id,
    appointments.c.start_at,
    appointments.c.end_at,
    appointments.c.status,
    rv3_appointments.c.snapshot,
    rv3_appointments.c.writeback,
    rv3_appointments.c.last_error,
    _open_outbox,
]


def _linked(row: sa.Row[Any]) -> LinkedAppointment:
    return LinkedAppointment(
        appointment_id=row.id,
        rv3_id=int(row.rv3_appointment_id) if row.rv3_appointment_id is not None else None,
        ghl_event_id=row.ghl_event_id,
        values=SyncedAppointment(
            calendar_id=row.calendar_id,
            start=row.start_at,
            end=row.end_at,
            status=AppointmentStatus(row.status),
            title=row.title,
            assigned_user_id=row.assigned_user_id,
        ),
        snapshot=Rv3Snapshot.model_validate(row.snapshot) if row.snapshot else None,
        pending=bool(row.in_flight) or row.writeback in PENDING_WRITES,
        in_review=row.writeback == WRITE_REVIEW,
        refused=row.last_error if row.writeback == WRITE_FAILED else None,
    )


def rv3_linked(conn: Connection, location_id: int, rv3_ids: Sequence[int]) -> dict[int, LinkedAppointment]:
    """{RV3 appointment id: the sync's appointment linked to it} for those the sync knows."""
    found: dict[int, LinkedAppointment] = {}
    for start in range(0, len(rv3_ids), CHUNK):
        chunk = [str(rv3_id) for rv3_id in rv3_ids[start : start + CHUNK]]
        rows = conn.execute(
            sa.select(*_RV3_COLUMNS)
            .select_from(_linked_to_rv3)
            .where(appointments.c.location_id == location_id, appointments.c.rv3_appointment_id.in_(chunk))
        )
        for row in rows:
            linked = _linked(row)
            assert linked.rv3_id is not None
            found[linked.rv3_id] = linked
    return found


def stream_rv3_linked(
    db: Database, location_id: int, start: datetime, end: datetime, *, chunk: int = CHUNK
) -> Iterator[list[LinkedAppointment]]:
    """The location's appointments starting in [start, end) that belong to RV3 (linked to an RV3 row, or booked
    in GHL for RV3), `chunk` at a time by id, each chunk its own short transaction."""
    after_id = 0
    while True:
        with db.transaction() as conn:
            rows = conn.execute(
                sa.select(*_RV3_COLUMNS)
                .select_from(_linked_to_rv3)
                .where(
                    appointments.c.location_id == location_id,
                    appointments.c.start_at >= start,
                    appointments.c.start_at < end,
                    sa.or_(appointments.c.rv3_appointment_id.isnot(None), rv3_appointments.c.id.isnot(None)),
                    appointments.c.id > after_id,
                )
                .order_by(appointments.c.id)
                .limit(chunk)
            ).all()
        if rows:
            yield [_linked(row) for row in rows]
        if len(rows) < chunk:
            return
        after_id = rows[-1].id
