"""The `rv3-db` adapter: RV3's own database (MySQL/MariaDB today, Azure SQL tomorrow) through SQLAlchemy Core.

RV3's tables are reflected as they are, only the columns the sync needs (clinical and billing columns are never
selected), and never created or altered. Writes are the few columns a GHL change sets, each in one transaction
under a row lock. RV3's timestamps are Django's (`auto_now`: naive Lima wall time with microseconds, no DB default
nor `ON UPDATE`), so every write stamps `updated_at` (and `created_at`) with the `stamp` the caller computed the same
way (`sync_core.rv3_mapping.rv3_wall_clock`), never with the database's clock (UTC on a UTC server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.rv3.port import Decide, Rv3Refused, Rv3Unavailable
from shared.store.engine import create_db_engine
from sync_core.rv3_mapping import (
    Cursor,
    NewRv3Appointment,
    NewRv3Patient,
    Rv3Appointment,
    Rv3Patient,
    Rv3Therapist,
    Rv3Unreadable,
    Rv3Write,
)
from sync_core.rv3_statuses import Rv3Status

RV3_TABLES = ("appointments", "patients", "therapists", "appointment_statuses")
_REQUIRED = {
    "appointments": (
        "id",
        "patient_id",
        "therapist_id",
        "appointment_date",
        "hour",
        "appointment_status_id",
        "appointment_type",
        "room",
        "updated_at",
    ),
    "patients": ("id", "name", "last_name_paternal", "last_name_maternal", "phone1", "email", "updated_at"),
    "therapists": ("id", "first_name", "last_name_paternal"),
    "appointment_statuses": ("id", "name"),
}
# Columns some RV3 generations have and others lack (`deleted_at` only in the older appointments schema).
_OPTIONAL = {
    "appointments": ("deleted_at", "created_at"),
    "patients": ("phone2", "document_number", "deleted_at", "created_at"),
    "therapists": ("last_name_maternal", "is_active", "deleted_at"),
    "appointment_statuses": (),
}
# Columns RV3's Django models fill with a Python-side default (no DB default): the sync's inserts must set them,
# as Django would, when RV3's table has them NOT NULL. The values are RV3's own model defaults.
_INSERT_FILLS: dict[str, dict[str, Any]] = {"appointments": {"social_benefit": False}}
# MySQL / MariaDB error codes. A refused write stays refused; an outage, a lost connection, a lock wait or a
# deadlock passes. Told apart by the code, not by the exception class: PyMySQL raises 1364 as OperationalError.
REFUSED_CODES = frozenset(
    {
        1048,  # column cannot be null
        1054,  # unknown column (RV3's schema changed)
        1062,  # duplicate entry
        1142,  # command denied (a missing GRANT)
        1143,  # column command denied
        1216,  # foreign key: no parent row (older servers)
        1264,  # out of range
        1265,  # data truncated
        1292,  # incorrect date / time value
        1364,  # field has no default value
        1366,  # incorrect value for a column (charset, type)
        1406,  # data too long
        1451,  # foreign key: row is referenced
        1452,  # foreign key: no parent row
        3819,  # check constraint violated
        4025,  # MariaDB: check constraint violated
    }
)
OUTAGE_CODES = frozenset(
    {1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}
)  # too many connections, shutdown, lock wait timeout, deadlock, can't connect, gone away, lost connection
_IN_CHUNK = 500
_CANDIDATES = 20


@dataclass(frozen=True)
class Rv3Tables:
    """RV3's tables as reflected, restricted to the columns the sync uses; `appointment_inserts` is the
    appointments table with the NOT NULL columns the sync's inserts must fill too (`appointment_fills`), for
    inserts only: those columns are never read."""

    appointments: sa.Table
    patients: sa.Table
    therapists: sa.Table
    statuses: sa.Table
    appointment_inserts: sa.Table
    appointment_fills: dict[str, Any]

    def all(self) -> tuple[sa.Table, ...]:
        return self.appointments, self.patients, self.therapists, self.statuses


def reflect(conn: Connection) -> Rv3Tables:
    """Reflect RV3's four tables; Rv3Unavailable names a missing table or column (RV3 is not what we expect)."""
    metadata = sa.MetaData()
    tables: dict[str, sa.Table] = {}
    inspector = sa.inspect(conn)
    for name in RV3_TABLES:
        if not inspector.has_table(name):
            raise Rv3Unavailable(f"RV3 database has no table {name}")
        present = {column["name"] for column in inspector.get_columns(name)}
        missing = [column for column in _REQUIRED[name] if column not in present]
        if missing:
            raise Rv3Unavailable(f"RV3 table {name} lacks column(s) {', '.join(missing)}")
        wanted = [*_REQUIRED[name], *(c for c in _OPTIONAL[name] if c in present)]
        tables[name] = sa.Table(name, metadata, autoload_with=conn, include_columns=wanted, resolve_fks=False)
    fills = {
        column["name"]: _INSERT_FILLS["appointments"][column["name"]]
        for column in inspector.get_columns("appointments")
        if column["name"] in _INSERT_FILLS["appointments"] and not column["nullable"] and column["default"] is None
    }
    inserts = sa.Table(
        "appointments",
        sa.MetaData(),
        autoload_with=conn,
        include_columns=[*(c.name for c in tables["appointments"].c), *fills],
        resolve_fks=False,
    )
    return Rv3Tables(
        tables["appointments"],
        tables["patients"],
        tables["therapists"],
        tables["appointment_statuses"],
        inserts,
        fills,
    )


def _error_code(exc: sa.exc.DBAPIError) -> int | None:
    """The MySQL / MariaDB error number of a driver error (PyMySQL: `args[0]`); None on other engines."""
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def rv3_error(exc: sa.exc.DBAPIError) -> Rv3Unavailable | Rv3Refused:
    """A database error as the sync acts on it: RV3 refused the write (for good), or RV3 is unavailable (for now).
    The error code decides; without one (SQLite, another driver), integrity and data errors are refusals."""
    code = _error_code(exc)
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    reason = str(args[1]) if code is not None and len(args) > 1 else str(exc.orig)
    if code in REFUSED_CODES:
        return Rv3Refused(code, reason[:300])
    if code in OUTAGE_CODES or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return Rv3Unavailable(f"RV3 database unreachable ({type(exc.orig).__name__}{f' {code}' if code else ''})")
    return Rv3Refused(code, reason[:300])


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def _as_time(value: Any) -> time | None:
    if value is None or isinstance(value, time):
        return value
    if isinstance(value, timedelta):  # MySQL TIME through a driver that does not convert it
        return (datetime.min + value).time()
    return time.fromisoformat(str(value))


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        yield unique[start : start + _IN_CHUNK]


def _after(table: sa.Table, cursor: Cursor) -> sa.ColumnElement[bool]:
    """Past `cursor` in (updated_at, id) order: rows sharing one second are told apart by id, none skipped."""
    stamp = table.c.updated_at
    return sa.or_(stamp > cursor.updated_at, sa.and_(stamp == cursor.updated_at, table.c.id > cursor.id))


def _mapped_only(rows: Iterable[Rv3Appointment | Rv3Unreadable]) -> list[Rv3Appointment]:
    return [row for row in rows if isinstance(row, Rv3Appointment)]


def _live(table: sa.Table) -> list[sa.ColumnElement[bool]]:
    return [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []


class Rv3Database:
    """The `rv3-db` adapter of the RV3 source port (see `shared.rv3.port.Rv3Source`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tables: Rv3Tables | None = None
        self._lock = threading.Lock()

    @classmethod
    def connect_url(cls, url: str) -> Rv3Database:
        """An adapter on `url` (RV3_SQL_URL); nothing is created or migrated there."""
        return cls(create_db_engine(url))

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def tables(self) -> Rv3Tables:
        with self._lock:
            if self._tables is None:
                with self._connect() as conn:
                    self._tables = reflect(conn)
            return self._tables

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise rv3_error(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise rv3_error(exc) from exc

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # --- appointments ---

    def _appointment_select(self) -> sa.Select[Any]:
        t = self.tables
        a, s = t.appointments, t.statuses
        columns: list[Any] = [
            a.c.id,
            a.c.patient_id,
            a.c.therapist_id,
            a.c.appointment_date,
            a.c.hour,
            a.c.appointment_status_id,
            s.c.name.label("status_name"),
            a.c.appointment_type,
            a.c.room,
            a.c.updated_at,
        ]
        if "deleted_at" in a.c:
            columns.append(a.c.deleted_at)
        return sa.select(*columns).select_from(a.outerjoin(s, s.c.id == a.c.appointment_status_id))

    @staticmethod
    def _appointment(row: sa.Row[Any]) -> Rv3Appointment | Rv3Unreadable:
        """The row mapped, or why it cannot be (RV3 accepts a null `appointment_date`): one such row must not stop
        the others."""
        data = row._mapping
        try:
            stamp = _as_datetime(data["updated_at"])
        except ValueError:
            stamp = None
        if data["appointment_date"] is None:
            return Rv3Unreadable(id=data["id"], updated_at=stamp, reason="no_date")
        try:
            return Rv3Database._mapped(data, stamp)
        except (ValueError, TypeError):
            return Rv3Unreadable(id=data["id"], updated_at=stamp, reason="invalid_row")

    @staticmethod
    def _mapped(data: Any, stamp: datetime | None) -> Rv3Appointment:
        return Rv3Appointment(
            id=data["id"],
            patient_id=data["patient_id"],
            therapist_id=data["therapist_id"],
            appointment_date=_as_date(data["appointment_date"]),
            hour=_as_time(data["hour"]),
            status_id=data["appointment_status_id"],
            status_name=data["status_name"],
            appointment_type=data["appointment_type"],
            room=data["room"],
            updated_at=stamp,
            deleted=data.get("deleted_at") is not None,
        )

    def _day_value(self, day: date) -> date | datetime:
        """A day in the type of `appointment_date` (a DATETIME in RV3, a DATE in some dumps)."""
        column = self.tables.appointments.c.appointment_date
        return datetime.combine(day, time.min) if isinstance(column.type, sa.DateTime) else day

    def changed_appointments(self, *, after: Cursor, limit: int) -> list[Rv3Appointment | Rv3Unreadable]:
        a = self.tables.appointments
        query = self._appointment_select().where(_after(a, after)).order_by(a.c.updated_at, a.c.id).limit(limit)
        with self._connect() as conn:
            return [self._appointment(row) for row in conn.execute(query)]

    def appointments(self, ids: Sequence[int]) -> list[Rv3Appointment | Rv3Unreadable]:
        a = self.tables.appointments
        found: list[Rv3Appointment | Rv3Unreadable] = []
        with self._connect() as conn:
            for chunk in _chunks(ids):
                query = self._appointment_select().where(a.c.id.in_(chunk)).order_by(a.c.id)
                found.extend(self._appointment(row) for row in conn.execute(query))
        return found

    def appointments_on(self, day: date, *, after_id: int, limit: int) -> list[Rv3Appointment]:
        a = self.tables.appointments
        query = (
            self._appointment_select()
            .where(
                a.c.appointment_date >= self._day_value(day),
                a.c.appointment_date < self._day_value(day + timedelta(days=1)),
                a.c.id > after_id,
            )
            .order_by(a.c.id)
            .limit(limit)
        )
        with self._connect() as conn:
            return _mapped_only(self._appointment(row) for row in conn.execute(query))

    def find_appointments(self, *, patient_id: int, day: date) -> list[Rv3Appointment]:
        a = self.tables.appointments
        query = (
            self._appointment_select()
            .where(
                a.c.patient_id == patient_id,
                a.c.appointment_date >= self._day_value(day),
                a.c.appointment_date < self._day_value(day + timedelta(days=1)),
                *_live(a),
            )
            .order_by(a.c.id)
        )
        with self._connect() as conn:
            return _mapped_only(self._appointment(row) for row in conn.execute(query))

    def _read_appointment(self, conn: Connection, appointment_id: int) -> Rv3Appointment | None:
        """The row, if it exists and can be mapped (a write-back leaves an unmappable row alone)."""
        row = conn.execute(self._appointment_select().where(self.tables.appointments.c.id == appointment_id)).first()
        found = self._appointment(row) if row else None
        return found if isinstance(found, Rv3Appointment) else None

    def write_appointment(
        self, appointment_id: int, decide: Decide, *, stamp: datetime
    ) -> tuple[Rv3Appointment | None, Rv3Appointment | None]:
        a = self.tables.appointments
        with self._transaction() as conn:
            # Locks the row until commit (SQLite: the whole database, from BEGIN IMMEDIATE): a front-desk save
            # waits for this transaction or happened before it, never in between the check and the write.
            lock = (
                sa.select(a.c.appointment_date, a.c.hour)
                .where(a.c.id == appointment_id)
                .with_for_update()
                .with_hint(a, "WITH (UPDLOCK, ROWLOCK)", dialect_name="mssql")  # Azure SQL has no FOR UPDATE
            )
            stored = conn.execute(lock).first()
            before = self._read_appointment(conn, appointment_id)
            write = decide(before)
            if stored is None or before is None or write is None:
                return before, before
            values: dict[str, Any] = {
                "appointment_date": self._moved_day(stored.appointment_date, _as_time(stored.hour), write),
                "hour": write.hour,
                "updated_at": stamp,
            }
            if write.status_id is not None:
                values["appointment_status_id"] = write.status_id
            conn.execute(a.update().where(a.c.id == appointment_id).values(**values))
            return before, self._read_appointment(conn, appointment_id)

    def _moved_day(self, stored: Any, stored_hour: time | None, write: Rv3Write) -> date | datetime:
        """`appointment_date` moved to the written day. RV3 reads only its date part; the time part some rows
        carry (midnight, or the hour itself) is kept, or moved along with the hour."""
        if not isinstance(self.tables.appointments.c.appointment_date.type, sa.DateTime):
            return write.day
        clock = _as_datetime(stored).time() if isinstance(stored, datetime | str) else time.min  # type: ignore[union-attr]
        if stored_hour is not None and clock == stored_hour and clock != time.min:
            clock = write.hour
        return datetime.combine(write.day, clock)

    def create_appointment(self, new: NewRv3Appointment, *, stamp: datetime) -> Rv3Appointment:
        tables = self.tables
        a = tables.appointment_inserts
        values: dict[str, Any] = {
            **tables.appointment_fills,
            "patient_id": new.patient_id,
            "therapist_id": new.therapist_id,
            "appointment_date": self._day_value(new.day),
            "hour": new.hour,
            "appointment_status_id": new.status_id,
            "updated_at": stamp,
        }
        if "created_at" in a.c:
            values["created_at"] = stamp
        with self._transaction() as conn:
            key = conn.execute(a.insert().values(**values)).inserted_primary_key
            assert key is not None
            created = self._read_appointment(conn, int(key[0]))
        assert created is not None
        return created

    # --- patients ---

    def _patient_select(self) -> sa.Select[Any]:
        p = self.tables.patients
        return sa.select(*p.c)

    @staticmethod
    def _patient(row: sa.Row[Any]) -> Rv3Patient:
        data = row._mapping
        return Rv3Patient(
            id=data["id"],
            name=data["name"],
            last_name_paternal=data["last_name_paternal"],
            last_name_maternal=data["last_name_maternal"],
            phone1=data["phone1"],
            phone2=data.get("phone2"),
            email=data["email"],
            document_number=data.get("document_number"),
            updated_at=_as_datetime(data["updated_at"]),
            deleted=data.get("deleted_at") is not None,
        )

    def changed_patients(self, *, after: Cursor, limit: int) -> list[Rv3Patient]:
        p = self.tables.patients
        query = self._patient_select().where(_after(p, after)).order_by(p.c.updated_at, p.c.id).limit(limit)
        with self._connect() as conn:
            return [self._patient(row) for row in conn.execute(query)]

    def patients(self, ids: Sequence[int]) -> list[Rv3Patient]:
        p = self.tables.patients
        found: list[Rv3Patient] = []
        with self._connect() as conn:
            for chunk in _chunks(ids):
                query = self._patient_select().where(p.c.id.in_(chunk)).order_by(p.c.id)
                found.extend(self._patient(row) for row in conn.execute(query))
        return found

    def find_patients(self, *, email: str | None, phone_digits: str | None) -> list[Rv3Patient]:
        p = self.tables.patients
        matches: list[sa.ColumnElement[bool]] = []
        if email:
            matches.append(sa.func.lower(p.c.email) == email.lower())
        if phone_digits:
            phones = [p.c.phone1, *([p.c.phone2] if "phone2" in p.c else [])]
            matches.extend(phone.like(f"%{phone_digits}") for phone in phones)
        if not matches:
            return []
        query = self._patient_select().where(sa.or_(*matches), *_live(p)).order_by(p.c.id).limit(_CANDIDATES)
        with self._connect() as conn:
            return [self._patient(row) for row in conn.execute(query)]

    def create_patient(self, new: NewRv3Patient, *, stamp: datetime) -> Rv3Patient:
        p = self.tables.patients
        values: dict[str, Any] = {**new.model_dump(), "updated_at": stamp}
        if "created_at" in p.c:
            values["created_at"] = stamp
        with self._transaction() as conn:
            key = conn.execute(p.insert().values(**values)).inserted_primary_key
            assert key is not None
            row = conn.execute(self._patient_select().where(p.c.id == int(key[0]))).first()
        assert row is not None
        return self._patient(row)

    # --- reference data ---

    def therapists(self) -> list[Rv3Therapist]:
        t = self.tables.therapists
        with self._connect() as conn:
            rows = conn.execute(sa.select(*t.c).where(*_live(t)).order_by(t.c.id))
            return [
                Rv3Therapist(
                    id=row.id,
                    first_name=row.first_name,
                    last_name_paternal=row.last_name_paternal,
                    last_name_maternal=row._mapping.get("last_name_maternal"),
                    is_active=row._mapping.get("is_active") in (None, True, 1),
                )
                for row in rows
            ]

    def statuses(self) -> list[Rv3Status]:
        s = self.tables.statuses
        with self._connect() as conn:
            return [Rv3Status(id=row.id, name=row.name) for row in conn.execute(sa.select(s).order_by(s.c.id))]
