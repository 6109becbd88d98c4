"""The sync database as the services see it: transactions, readiness, and migrations on the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared import telemetry
from shared.store import migrate
from shared.store.engine import create_db_engine


@dataclass(frozen=True)
class SchemaStatus:
    revision: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


class Database:
    """One engine, one way to open a transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def connect_url(cls, url: str, *, sql_auth: str = "password", entra_client_id: str | None = None) -> Database:
        """Open `url`; the embedded SQLite database migrates itself, real servers use `python -m shared.store`."""
        db = cls(create_db_engine(url, sql_auth=sql_auth, entra_client_id=entra_client_id))
        if db.engine.dialect.name == "sqlite":
            migrate.upgrade(db.engine)
        return db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success and rolled back on any exception."""
        with (
            telemetry.span("sql.transaction", attributes={"db.system": self.engine.dialect.name}),
            self.engine.begin() as connection,
        ):
            yield connection

    def schema_status(self) -> SchemaStatus:
        """Reach the database and compare its schema revision with the code's (raises if unreachable)."""
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            revision = migrate.current_revision(connection)
        return SchemaStatus(revision=revision, head=migrate.head_revision())

    def dispose(self) -> None:
        self.engine.dispose()
