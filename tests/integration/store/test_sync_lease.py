"""The sync lease as `save_sync` renews and gives it back, on SQLite and PostgreSQL: a worker whose lease was
taken over must never record a write (it would then send it), and giving a lease back never frees another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Connection

from shared.store import appointments as repo
from shared.store.database import Database
from tests.integration.store.test_schema import _appointment_values, _location

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _appointments(db: Database, count: int = 1) -> list[int]:
    location_id = _location(db)
    with db.transaction() as conn:
        return [repo.insert(conn, _appointment_values(location_id)) for _ in range(count)]


def _read(conn: Connection, appointment_id: int) -> repo.AppointmentRecord:
    row = repo.get(conn, appointment_id)
    assert row is not None
    return row


def _claimed(db: Database, appointment_id: int) -> repo.AppointmentRecord:
    """The appointment as a worker reads it right after taking its sync lease (until NOW + LEASE)."""
    with db.transaction() as conn:
        assert repo.claim_sync(conn, appointment_id, NOW, NOW + LEASE)
        return _read(conn, appointment_id)


def _lease_of(db: Database, appointment_id: int) -> datetime | None:
    with db.transaction() as conn:
        return _read(conn, appointment_id).sync_lease_until


def test_a_save_renews_the_lease_it_holds_in_the_same_statement(db: Database) -> None:
    [appointment_id] = _appointments(db)
    row = _claimed(db, appointment_id)
    with db.transaction() as conn:
        repo.save_sync(conn, row, repo.sync_record(row), lease=repo.LeaseChange(NOW + LEASE, NOW + 2 * LEASE))
    assert _lease_of(db, appointment_id) == NOW + 2 * LEASE


def test_a_worker_whose_lease_was_taken_over_records_nothing(db: Database) -> None:
    [appointment_id] = _appointments(db)
    row = _claimed(db, appointment_id)
    later = NOW + 2 * LEASE  # ours expired; another worker takes the appointment
    with db.transaction() as conn:
        assert repo.claim_sync(conn, appointment_id, later, later + LEASE)
    record = repo.sync_record(row)
    errored = record.model_copy(update={"appointment": record.appointment.model_copy(update={"last_error": "x"})})
    with pytest.raises(repo.LeaseLost), db.transaction() as conn:
        repo.save_sync(conn, _read(conn, appointment_id), errored, lease=repo.LeaseChange(NOW + LEASE, later + LEASE))
    with db.transaction() as conn:
        after = _read(conn, appointment_id)
    assert after.last_error is None and after.sync_seq == row.sync_seq


def test_a_save_on_a_stale_read_is_contention_not_a_lost_lease(db: Database) -> None:
    [appointment_id] = _appointments(db)
    stale = _claimed(db, appointment_id)
    with db.transaction() as conn:
        repo.save_sync(conn, stale, repo.sync_record(stale))  # another transition in between
    with pytest.raises(repo.Contention), db.transaction() as conn:
        repo.save_sync(conn, stale, repo.sync_record(stale), lease=repo.LeaseChange(NOW + LEASE, NOW + 2 * LEASE))


def test_giving_the_lease_back_frees_ours_and_leaves_another_workers_alone(db: Database) -> None:
    ours, taken = _appointments(db, 2)
    later = NOW + 2 * LEASE
    with db.transaction() as conn:
        assert repo.claim_sync(conn, ours, NOW, NOW + LEASE)
        assert repo.claim_sync(conn, taken, NOW, NOW + LEASE)
    with db.transaction() as conn:
        assert repo.claim_sync(conn, taken, later, later + LEASE)  # ours expired there, another worker holds it
    for appointment_id in (ours, taken):
        with db.transaction() as conn:
            row = _read(conn, appointment_id)
            repo.save_sync(conn, row, repo.sync_record(row), lease=repo.LeaseChange(NOW + LEASE))
    assert _lease_of(db, ours) is None
    assert _lease_of(db, taken) is not None
    with db.transaction() as conn:
        assert not repo.claim_sync(conn, taken, later, later + LEASE)  # still the other worker's
