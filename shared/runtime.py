"""Process-wide adapters, built on first use (never at import: cold start) and shared by all invocations."""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from shared.lazy import serial_imports
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.ghl.client import GhlClient
    from shared.odoo.client import OdooClient
    from shared.queues import Queues
    from shared.rv3.database import Rv3Database
    from shared.services.attempts import CallLog
    from shared.store.database import Database

_lock = threading.Lock()
_database: Database | None = None
_queues: Queues | None = None
_ghl: GhlClient | None = None
_call_log: CallLog | None = None
_rv3: Rv3Database | None = None
_odoo: OdooClient | None = None


def settings() -> Settings:
    return get_settings()


def database() -> Database:
    global _database  # noqa: PLW0603 - one engine (and pool) per worker process
    with _lock:
        if _database is None:
            with serial_imports:
                from shared.store.database import Database

            settings = get_settings()
            _database = Database.connect_url(
                settings.sql_url.get_secret_value(),
                sql_auth=settings.sql_auth,
                entra_client_id=settings.azure_client_id,
            )
        return _database


def queues() -> Queues:
    global _queues  # noqa: PLW0603 - one storage client (and connection pool) per worker process
    with _lock:
        if _queues is None:
            with serial_imports:
                from shared.queues import Queues

            _queues = Queues.from_settings(get_settings())
        return _queues


def ghl() -> GhlClient:
    global _ghl  # noqa: PLW0603 - one HTTP connection pool and token cache per worker process
    with _lock:
        if _ghl is None:
            with serial_imports:
                from shared.ghl import build_client

            _ghl = build_client(get_settings(), on_call=_calls().record)
        return _ghl


def _calls() -> CallLog:
    """The call log the GHL and Odoo clients record into (taken under `_lock`)."""
    global _call_log  # noqa: PLW0603 - one batch writer per worker process
    if _call_log is None:
        with serial_imports:
            from shared.services.attempts import CallLog

        # The database is reached when the calls are written, not here: this lock is not reentrant.
        _call_log = CallLog(database)
        atexit.register(_call_log.flush)
    return _call_log


def call_log() -> CallLog | None:
    """The GHL and Odoo calls recorded by this process and not written yet (None until either client is built)."""
    return _call_log


def rv3() -> Rv3Database:
    """RV3's own database (RV3_SQL_URL); Rv3Unavailable when it is not configured."""
    global _rv3  # noqa: PLW0603 - one engine (and pool) per worker process
    with _lock:
        if _rv3 is None:
            with serial_imports:
                from shared.rv3.database import Rv3Database
                from shared.rv3.port import Rv3Unavailable

            url = get_settings().rv3_sql_url
            if url is None:
                raise Rv3Unavailable("RV3_SQL_URL is not set")
            _rv3 = Rv3Database.connect_url(url.get_secret_value())
        return _rv3


def odoo() -> OdooClient:
    """MiaSalud's Odoo (ODOO_URL and its credentials), with its pacing shared by every instance."""
    global _odoo  # noqa: PLW0603 - one HTTP connection pool and session per worker process
    with _lock:
        if _odoo is None:
            with serial_imports:
                from shared.odoo.client import OdooClient

            _odoo = OdooClient.from_settings(get_settings(), on_call=_calls().record)
        return _odoo


def reset() -> None:
    """Forget the adapters and settings (tests, and the local host after changing settings)."""
    global _database, _queues, _ghl, _call_log, _rv3, _odoo  # noqa: PLW0603
    if _call_log is not None:
        _call_log.flush()  # before taking the lock: writing reaches database()
    with _lock:
        if _database is not None:
            _database.dispose()
        if _ghl is not None:
            _ghl.close()
        if _rv3 is not None:
            _rv3.dispose()
        if _odoo is not None:
            _odoo.close()
        _database = None
        _queues = None
        _ghl = None
        _call_log = None
        _rv3 = None
        _odoo = None
    get_settings.cache_clear()
