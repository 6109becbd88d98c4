"""The rv3-db adapter on RV3's documented schema: reads it as it is, never changes it, never reads clinical data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

from shared.rv3.database import Rv3Database, rv3_error
from shared.rv3.port import Rv3Refused, Rv3Unavailable
from sync_core.rv3_mapping import Cursor, NewRv3Appointment, Rv3Write
from tests.fixtures import rv3_schema
from tests.fixtures.rv3_schema import CLINICAL, COMPLETADO, FrontDesk, Rv3Clock, create_rv3_database

from .conftest import DAY, TEN, World

START = Cursor(updated_at=datetime(1970, 1, 1), id=0)


@pytest.fixture
def adapter(front_desk: FrontDesk, rv3_url: str) -> Iterator[Rv3Database]:
    source = Rv3Database.connect_url(rv3_url)
    yield source
    source.dispose()


def _schema(engine: sa.Engine) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    return {
        name: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
            inspector.get_indexes(name),
        )
        for name in sorted(inspector.get_table_names())
    }


def test_the_sync_reads_and_writes_rv3_without_ever_changing_its_schema(world: World) -> None:
    before = _schema(world.desk.engine)
    patient = world.desk.add_patient(name="Ana", phone1="987654321")
    rv3_id = world.desk.book(patient, DAY, TEN)
    world.sync()
    event = world.ghl_event(rv3_id)
    assert event is not None
    world.webhook("AppointmentUpdate", world.ghl.change(event["id"], appointmentStatus="showed"))
    world.sync()
    assert world.desk.appointment(rv3_id).appointment_status_id == COMPLETADO  # type: ignore[union-attr]
    assert _schema(world.desk.engine) == before


def test_clinical_and_billing_columns_are_never_even_selected(adapter: Rv3Database) -> None:
    read = {column for table in adapter.tables.all() for column in table.c.keys()}  # noqa: SIM118
    assert not read & {*CLINICAL, "payment", "payment_type_id", "payment_status_id", "social_benefit", "history_id"}
    assert not read & {"birth_date", "address", "gender"}


def test_rows_sharing_one_second_are_all_read_across_pages(front_desk: FrontDesk, adapter: Rv3Database) -> None:
    patient = front_desk.add_patient(name="Ana")
    front_desk.clock = Rv3Clock(frozen=datetime(2030, 3, 1, 9, 0, 0))
    ids = [front_desk.book(patient, DAY, time(8 + i)) for i in range(5)]
    read: list[int] = []
    after = START
    while page := adapter.changed_appointments(after=after, limit=2):
        read += [row.id for row in page]
        after = page[-1].cursor  # type: ignore[assignment]
    assert read == ids


def test_a_row_read_has_its_lima_date_hour_and_status_name(front_desk: FrontDesk, adapter: Rv3Database) -> None:
    patient = front_desk.add_patient(name="Ana")
    rv3_id = front_desk.book(patient, DAY, time(9, 30), status_id=COMPLETADO, room=4)
    [row] = adapter.appointments([rv3_id])
    assert (row.appointment_date, row.hour, row.status_name, row.room, row.deleted) == (
        DAY,
        time(9, 30),
        "Completado",
        "4",
        False,
    )
    front_desk.soft_delete(rv3_id)
    assert adapter.appointments([rv3_id])[0].deleted
    front_desk.hard_delete(rv3_id)
    assert adapter.appointments([rv3_id]) == []


def test_a_write_happens_only_when_the_locked_row_passes_the_check(front_desk: FrontDesk, adapter: Rv3Database) -> None:
    patient = front_desk.add_patient(name="Ana")
    rv3_id = front_desk.book(patient, DAY, TEN)
    write = Rv3Write(day=DAY + timedelta(days=1), hour=time(15), status_id=COMPLETADO, status_name="Completado")
    stamp = datetime(2030, 3, 1, 9, 0, 0, 123456)  # RV3's convention: naive Lima wall time, microseconds
    before, after = adapter.write_appointment(rv3_id, lambda row: None, stamp=stamp)
    assert before == after
    before, after = adapter.write_appointment(rv3_id, lambda row: write, stamp=stamp)
    assert before is not None and after is not None
    assert (after.appointment_date, after.hour, after.status_name) == (DAY + timedelta(days=1), time(15), "Completado")
    assert after.updated_at == stamp  # the caller's stamp, never the database's CURRENT_TIMESTAMP
    assert adapter.write_appointment(10_000, lambda row: write, stamp=stamp) == (None, None)


def test_an_appointment_the_sync_creates_fills_what_rv3_requires_without_a_db_default(
    front_desk: FrontDesk, adapter: Rv3Database
) -> None:
    patient = front_desk.add_patient(name="Ana")
    stamp = datetime(2030, 3, 1, 9, 0, 0, 654321)
    new = NewRv3Appointment(
        patient_id=patient, therapist_id=None, day=DAY, hour=TEN, status_id=1, status_name="Pendiente"
    )
    created = adapter.create_appointment(new, stamp=stamp)
    row = front_desk.appointment(created.id)
    assert row is not None
    assert row.social_benefit is not None and not row.social_benefit  # Django's default=False, set by the writer
    assert (row.created_at, row.updated_at) == (stamp, stamp)


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        *((code, True) for code in (1364, 1048, 1062, 1452, 1406, 1366)),
        *((code, False) for code in (2003, 2006, 2013, 1205, 1213)),
    ],
)
def test_a_refused_write_is_told_from_an_outage_by_mysqls_error_code(code: int, refused: bool) -> None:
    # PyMySQL raises 1364 as OperationalError, like a lost connection: only the code tells them apart.
    driver = pymysql.err.OperationalError(code, "Field 'social_benefit' doesn't have a default value")
    error = rv3_error(sa.exc.OperationalError("INSERT INTO appointments ...", {}, driver))
    assert isinstance(error, Rv3Refused if refused else Rv3Unavailable)
    if refused:
        assert isinstance(error, Rv3Refused) and (error.code, error.reason) == (code, driver.args[1])


def test_the_row_is_locked_for_the_check_on_every_engine_rv3_runs_on(
    front_desk: FrontDesk, adapter: Rv3Database
) -> None:
    rv3_id = front_desk.book(front_desk.add_patient(name="Ana"), DAY, TEN)
    statements: list[Any] = []

    def keep(conn: Any, clause: Any, *args: Any) -> None:
        statements.append(clause)

    sa.event.listen(adapter.engine, "before_execute", keep)
    try:
        adapter.write_appointment(rv3_id, lambda row: None, stamp=datetime(2030, 3, 1, 9))
    finally:
        sa.event.remove(adapter.engine, "before_execute", keep)
    lock = statements[0]
    assert "FOR UPDATE" in str(lock.compile(dialect=mysql.dialect()))
    assert "WITH (UPDLOCK, ROWLOCK)" in str(lock.compile(dialect=mssql.dialect()))  # type: ignore[no-untyped-call]


def test_the_newer_schema_without_soft_deletes_is_read_too(rv3_url: str) -> None:
    engine = sa.create_engine(rv3_url)
    desk = create_rv3_database(engine, soft_delete=False)
    rv3_id = desk.book(desk.add_patient(name="Ana"), DAY, TEN)
    source = Rv3Database.connect_url(rv3_url)
    try:
        [row] = source.changed_appointments(after=START, limit=10)
        assert (row.id, row.deleted) == (rv3_id, False)
    finally:
        source.dispose()
        create_rv3_database(engine)  # back to the session's schema for the tests after this one
        engine.dispose()


def test_a_database_that_is_not_rv3s_is_reported_not_guessed(rv3_url: str) -> None:
    engine = sa.create_engine(rv3_url)
    create_rv3_database(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE appointments"))
    source = Rv3Database.connect_url(rv3_url)
    try:
        with pytest.raises(Rv3Unavailable, match="no table appointments"):
            source.therapists()
    finally:
        source.dispose()
        create_rv3_database(engine)  # back to the session's schema for the tests after this one
        engine.dispose()


def test_an_unreachable_rv3_is_reported_without_its_url() -> None:
    source = Rv3Database.connect_url("mysql+pymysql://rv3:s3cr3t-pw@127.0.0.1:9/reflexo")
    with pytest.raises(Rv3Unavailable) as raised:
        source.ping()
    assert "s3cr3t" not in str(raised.value) and "127.0.0.1" not in str(raised.value)


def test_a_statement_azure_sql_could_not_run_would_be_caught(adapter: Rv3Database) -> None:
    appointments = adapter.tables.appointments
    with adapter.engine.connect() as conn:
        conn.execute(sa.select(appointments.c.id).limit(5).offset(1))  # no ORDER BY: T-SQL cannot page it
    caught = list(rv3_schema.rv3_mssql_failures)
    rv3_schema.rv3_mssql_failures.clear()
    assert caught
