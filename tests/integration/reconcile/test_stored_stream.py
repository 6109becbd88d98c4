"""The stored side's stream for the merge-join: in GHL-id code-point order whatever the column's collation,
chunk after chunk, and knowing which appointments still have a change on its way to GHL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.store import appointments as appointment_repo
from shared.store import outbox
from shared.store.database import Database
from shared.store.reconciliation import in_slice, linked_chunk, stream_slice
from tests.fixtures.app import CALENDAR, OTHER_CALENDAR, seed_location
from tests.fixtures.sql import MSSQL

START = datetime(2030, 3, 4, 5, tzinfo=UTC)
IDS = ["aacase", "Abcase", "ZZcase", "b", "B", "evé", "ev9"]


@pytest.fixture
def case_insensitive(db: Database) -> Iterator[Database]:
    """On PostgreSQL, give the GHL event id a locale collation (ICU English) that sorts "aacase" before
    "Abcase", as a server with a non-C locale would; SQLite has only binary order."""
    if db.engine.dialect.name != "postgresql":
        yield db
        return
    with db.transaction() as conn:
        conn.execute(sa.text('ALTER TABLE appointments ALTER COLUMN ghl_event_id TYPE VARCHAR(64) COLLATE "en-x-icu"'))
    try:
        yield db
    finally:
        with db.transaction() as conn:
            conn.execute(
                sa.text('ALTER TABLE appointments ALTER COLUMN ghl_event_id TYPE VARCHAR(64) COLLATE "default"')
            )


def _insert(db: Database, location: int, event_id: str | None, minutes: int, calendar: str = CALENDAR) -> int:
    now = datetime.now(UTC)
    with db.transaction() as conn:
        return appointment_repo.insert(
            conn,
            {
                "location_id": location,
                "calendar_id": calendar,
                "title": "Terapia",
                "start_at": START + timedelta(minutes=minutes),
                "end_at": START + timedelta(minutes=minutes + 30),
                "status": "scheduled",
                "ghl_event_id": event_id,
                "sync_state": "synced",
                "source": "rv3",
                "flags": [],
                "created_at": now,
                "updated_at": now,
            },
        )


def test_appointments_stream_in_binary_id_order_across_chunks(case_insensitive: Database) -> None:
    db = case_insensitive
    location = seed_location(db)
    for i, event_id in enumerate([*IDS, None, None]):
        _insert(db, location, event_id, minutes=i)
    _insert(db, location, "aaaa", minutes=3, calendar=OTHER_CALENDAR)  # another calendar
    _insert(db, location, "aaab", minutes=24 * 60)  # outside the slice
    streamed = list(stream_slice(db, location, CALENDAR, START, START + timedelta(hours=1), chunk=2))
    assert [a.ghl_event_id for a in streamed] == [None, None, *sorted(IDS)]


def test_an_appointment_with_an_open_outbox_entry_is_in_flight(db: Database) -> None:
    location = seed_location(db)
    done, pending = _insert(db, location, "ev1", 0), _insert(db, location, "ev2", 1)
    now = datetime.now(UTC)
    with db.transaction() as conn:
        finished = outbox.add(conn, appointment_id=done, operation="update", version=1, now=now)
        outbox.finish(conn, finished.op_id, now)
        outbox.add(conn, appointment_id=pending, operation="update", version=1, now=now)
    streamed = {a.id: a.in_flight for a in stream_slice(db, location, CALENDAR, START, START + timedelta(hours=1))}
    assert streamed == {done: False, pending: True}


def test_the_keyed_chunk_query_sorts_binary_on_azure_sql() -> None:
    where = in_slice(1, CALENDAR, START, START + timedelta(hours=1))
    sql = str(linked_chunk(where, "mssql", "Abc", 500).compile(dialect=MSSQL))
    assert "SELECT TOP" in sql
    assert "ORDER BY appointments.ghl_event_id COLLATE Latin1_General_BIN2" in sql
    assert "(appointments.ghl_event_id COLLATE Latin1_General_BIN2) >" in sql
