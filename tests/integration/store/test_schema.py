"""The schema's guarantees, checked on SQLite and PostgreSQL: what the sync relies on the database to enforce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from shared.store import migrate
from shared.store.database import Database
from shared.store.schema import appointments, contacts, idempotency_keys, locations, outbox, webhook_inbox
from shared.store.tables import metadata

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _location(db: Database, ghl_id: str = "loc_1") -> int:
    with db.transaction() as conn:
        return int(
            conn.execute(
                locations.insert().values(
                    ghl_location_id=ghl_id,
                    name="Sede Principal",
                    timezone="America/Lima",
                    is_active=True,
                    created_at=NOW,
                    updated_at=NOW,
                )
            ).inserted_primary_key[0]
        )


def _appointment_values(location_id: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "location_id": location_id,
        "calendar_id": "cal_1",
        "title": "Consulta Fisioterapia",
        "start_at": NOW,
        "end_at": NOW + timedelta(hours=1),
        "status": "scheduled",
        "sync_state": "pending",
        "source": "rv3",
        "flags": [],
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return values


def test_migrations_bring_a_new_database_to_the_current_schema(db: Database) -> None:
    assert db.schema_status().up_to_date
    inspector = sa.inspect(db.engine)
    assert set(metadata.tables) <= set(inspector.get_table_names())


def test_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_ghl_event_id_is_unique_per_location(db: Database) -> None:
    loc = _location(db)
    with db.transaction() as conn:
        conn.execute(appointments.insert().values(_appointment_values(loc, ghl_event_id="evt_1")))
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as conn:
        conn.execute(appointments.insert().values(_appointment_values(loc, ghl_event_id="evt_1")))


def test_many_appointments_can_wait_for_their_ghl_event_id(db: Database) -> None:
    loc = _location(db)
    with db.transaction() as conn:
        for _ in range(3):
            conn.execute(appointments.insert().values(_appointment_values(loc, ghl_event_id=None)))
        count = conn.execute(sa.select(sa.func.count()).select_from(appointments)).scalar_one()
    assert count == 3


def test_same_ghl_event_id_in_two_locations_is_allowed(db: Database) -> None:
    first, second = _location(db, "loc_a"), _location(db, "loc_b")
    with db.transaction() as conn:
        conn.execute(appointments.insert().values(_appointment_values(first, ghl_event_id="evt_1")))
        conn.execute(appointments.insert().values(_appointment_values(second, ghl_event_id="evt_1")))


def test_a_webhook_is_recorded_once_in_the_inbox(db: Database) -> None:
    row = {
        "dedupe_key": "id:wh_123",
        "webhook_id": "wh_123",
        "payload_hash": "a" * 64,
        "event_type": "AppointmentUpdate",
        "received_at": NOW,
    }
    with db.transaction() as conn:
        conn.execute(webhook_inbox.insert().values(row))
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as conn:
        conn.execute(webhook_inbox.insert().values(row))


def test_idempotency_key_is_unique_per_scope(db: Database) -> None:
    row = {"scope": "citas.create", "key": "k-1", "request_hash": "h", "created_at": NOW}
    with db.transaction() as conn:
        conn.execute(idempotency_keys.insert().values(row))
        conn.execute(idempotency_keys.insert().values({**row, "scope": "other"}))
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as conn:
        conn.execute(idempotency_keys.insert().values(row))


def test_appointment_and_its_outbox_row_commit_or_vanish_together(db: Database) -> None:
    loc = _location(db)
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as conn:
        appt_id = conn.execute(appointments.insert().values(_appointment_values(loc))).inserted_primary_key[0]
        conn.execute(
            outbox.insert().values(
                op_id="op-1",
                appointment_id=appt_id,
                operation="create",
                appointment_version=1,
                status="pending",
                created_at=NOW,
            )
        )
        conn.execute(  # a duplicate op id fails the whole transaction
            outbox.insert().values(
                op_id="op-1",
                appointment_id=appt_id,
                operation="create",
                appointment_version=1,
                status="pending",
                created_at=NOW,
            )
        )
    with db.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(appointments)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


def test_a_stale_version_does_not_overwrite_a_newer_edit(db: Database) -> None:
    loc = _location(db)
    with db.transaction() as conn:
        appt_id = conn.execute(appointments.insert().values(_appointment_values(loc))).inserted_primary_key[0]

    def update_if_version(expected: int, title: str) -> int:
        with db.transaction() as conn:
            return conn.execute(
                appointments.update()
                .where(appointments.c.id == appt_id, appointments.c.version == expected)
                .values(title=title, version=appointments.c.version + 1)
            ).rowcount

    assert update_if_version(1, "Reprogramada") == 1
    assert update_if_version(1, "Edición vieja") == 0
    with db.transaction() as conn:
        row = conn.execute(sa.select(appointments).where(appointments.c.id == appt_id)).one()
    assert (row.title, row.version) == ("Reprogramada", 2)


def test_times_come_back_as_the_same_utc_instant(db: Database) -> None:
    loc = _location(db)
    lima = timezone(timedelta(hours=-5))
    start = datetime(2026, 12, 25, 14, 0, tzinfo=lima)
    with db.transaction() as conn:
        appt_id = conn.execute(
            appointments.insert().values(_appointment_values(loc, start_at=start, end_at=start + timedelta(hours=1)))
        ).inserted_primary_key[0]
        row = conn.execute(sa.select(appointments.c.start_at).where(appointments.c.id == appt_id)).one()
    assert row.start_at == start
    assert row.start_at.tzinfo == UTC
    assert row.start_at.hour == 19


def test_naive_times_are_refused_instead_of_guessed(db: Database) -> None:
    loc = _location(db)
    with pytest.raises(sa.exc.StatementError), db.transaction() as conn:
        conn.execute(appointments.insert().values(_appointment_values(loc, start_at=datetime(2026, 12, 25, 14))))


def test_status_reports_pending_migrations_on_an_empty_database(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    status = Database(engine).schema_status()
    assert not status.up_to_date
    assert status.head == migrate.head_revision()


# Accented Spanish, emoji (4-byte UTF-8), right-to-left scripts, combining marks: what people type in names and notes.
UNICODE_TEXTS = [
    "María José Ñúñez Güemes",
    "Terapia 🦶🏽 reflexología 💆‍♀️",
    "مريم الحسيني",
    "שרה לוי",
    "Zoë e\u0301 — «Consulta» ½",
]


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_unicode_text_round_trips_in_every_text_column(db: Database, text: str) -> None:
    loc = _location(db)
    with db.transaction() as conn:
        conn.execute(locations.update().where(locations.c.id == loc).values(name=text[:200]))
        appointment_id = conn.execute(
            appointments.insert().values(_appointment_values(loc, title=text, notes=text * 3, last_error=text))
        ).inserted_primary_key[0]
        conn.execute(
            contacts.insert().values(
                location_id=loc, patient_key=text, full_name=text, flags=[text], created_at=NOW, updated_at=NOW
            )
        )
    with db.transaction() as conn:
        stored = conn.execute(sa.select(appointments).where(appointments.c.id == appointment_id)).one()
        person = conn.execute(sa.select(contacts).where(contacts.c.patient_key == text)).one()
        name = conn.execute(sa.select(locations.c.name).where(locations.c.id == loc)).scalar_one()
    assert (stored.title, stored.notes, stored.last_error) == (text, text * 3, text)
    assert (person.full_name, person.flags) == (text, [text])
    assert name == text[:200]
