"""The columns every table of the app is built from: one metadata, UTC datetimes, ids, stamps, partial uniques."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in every database (SQLite, PostgreSQL and Azure SQL alike)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite: text for MAX() etc.
        if not isinstance(moment, datetime):
            raise TypeError(f"unexpected {type(moment).__name__} from a UTC datetime column")
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Every text column is Unicode: NVARCHAR on Azure SQL, whose VARCHAR (without a UTF-8 collation) stores emoji and
# non-Latin letters as "?"; SQLite and PostgreSQL (UTF-8 databases) store any text in VARCHAR/TEXT alike.

# SQLite only auto-increments INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def pk() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def stamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    ]


def unique_when_set(name: str, *columns: sa.Column[Any]) -> sa.Index:
    """A unique index ignoring NULLs: Azure SQL would otherwise allow only one NULL in a unique constraint."""
    condition = sa.and_(*(c.isnot(None) for c in columns if c.nullable))
    return sa.Index(
        name, *columns, unique=True, mssql_where=condition, postgresql_where=condition, sqlite_where=condition
    )
