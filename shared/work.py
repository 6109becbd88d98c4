"""What a service works with, handed to it: the database, the queues, GHL, RV3's database, Odoo, settings, the clock.

Triggers and HTTP handlers build one with `Work.current()` (the process's adapters); tests build their own.
Each adapter is only reached when first used: a handler that needs no SQL (the webhook intake) never opens the
database, and one whose settings are broken finds out where it can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.lazy import serial_imports

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.ghl.client import GhlClient
    from shared.odoo.client import OdooClient
    from shared.queues import Queues
    from shared.rv3.database import Rv3Database
    from shared.services.attempts import CallLog
    from shared.settings import Settings
    from shared.store.database import Database


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_odoo() -> OdooClient:
    raise RuntimeError("this unit of work has no Odoo client")


@dataclass(frozen=True)
class Work:
    """A unit of work's adapters. `transaction()` opens one SQL transaction; `now()` is the clock."""

    _settings: Callable[[], Settings] = field(repr=False)
    _database: Callable[[], Database] = field(repr=False)
    _queues: Callable[[], Queues] = field(repr=False)
    _ghl: Callable[[], GhlClient] = field(repr=False)
    _rv3: Callable[[], Rv3Database] = field(repr=False)
    clock: Callable[[], datetime] = utc_now
    _call_log: Callable[[], CallLog | None] = field(default=lambda: None, repr=False)
    _odoo: Callable[[], OdooClient] = field(default=_no_odoo, repr=False)

    @classmethod
    def current(cls) -> Work:
        """The process's adapters (built once per worker process, see `shared.runtime`)."""
        with serial_imports:
            from shared import runtime

        return cls(
            _settings=runtime.settings,
            _database=runtime.database,
            _queues=runtime.queues,
            _ghl=runtime.ghl,
            _rv3=runtime.rv3,
            _call_log=runtime.call_log,
            _odoo=runtime.odoo,
        )

    @property
    def settings(self) -> Settings:
        return self._settings()

    @property
    def database(self) -> Database:
        return self._database()

    @property
    def queues(self) -> Queues:
        return self._queues()

    @property
    def ghl(self) -> GhlClient:
        return self._ghl()

    @property
    def rv3(self) -> Rv3Database:
        """RV3's own database; `Rv3Unavailable` when RV3_SQL_URL is not set."""
        return self._rv3()

    @property
    def odoo(self) -> OdooClient:
        """MiaSalud's Odoo (ODOO_URL); the MiaSalud services only reach it when it is configured."""
        return self._odoo()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.database.transaction() as conn:
            yield conn

    def flush_call_log(self) -> None:
        """Write the GHL calls this process recorded and has not written yet, before reading `sync_attempts`."""
        calls = self._call_log()
        if calls is not None:
            calls.flush()

    def now(self) -> datetime:
        return self.clock()
