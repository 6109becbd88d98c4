"""Engines for the sync database (and RV3's), with connect timeouts and per-dialect connection set-up."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from shared.lazy import serial_imports

CONNECT_TIMEOUT_S = 15
# A pooled connection unused for longer is pinged before it is handed out (a server, or Azure SQL's gateway,
# may have dropped it meanwhile); one returned a moment ago is not.
IDLE_BEFORE_PING_S = 10.0
DEFAULT_POOL_SIZE = 5  # SQLAlchemy's own default, when the worker's thread count is not set


def pool_size() -> int:
    """One pooled connection per function thread of the worker (`PYTHON_THREADPOOL_THREAD_COUNT`).

    With fewer, the threads beyond the pool open an overflow connection per transaction and close it on
    return: under a queue backlog that was a new server login per transaction (measured in tools/bench).
    """
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_POOL_SIZE


def create_db_engine(url: str, *, entra_client_id: str | None = None, sql_auth: str = "password") -> Engine:
    """An engine for `url`: SQLite in WAL mode with immediate transactions, or a pooled server connection.

    `sql_auth="entra"` (Azure SQL) hands an Entra ID access token to pyodbc on every new connection.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    # hide_parameters: SQL errors must not carry patient data (names, phones) into logs.
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    kwargs["pool_recycle"] = 1800
    kwargs["pool_size"] = pool_size()
    kwargs["max_overflow"] = 10  # HTTP functions and timers beside the function threads, as before
    if backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend in ("mysql", "mariadb"):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": 60, "write_timeout": 60}
    elif backend == "mssql":
        kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        kwargs["fast_executemany"] = True
    engine = sa.create_engine(url, **kwargs)
    _ping_when_idle(engine)
    if backend == "mssql" and sql_auth == "entra":
        with serial_imports:
            from shared.store.entra import install_entra_token, token_source_from_env

        env = dict(os.environ)
        if entra_client_id:
            env.setdefault("AZURE_CLIENT_ID", entra_client_id)
        install_entra_token(engine, token_source_from_env(env))
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for connections that sat idle: pinging on every checkout was one more round
    trip per transaction, most of them on a connection used milliseconds before."""

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises, the connection is unusable
            raise sa.exc.DisconnectionError("idle connection dropped") from exc
        if not alive:
            raise sa.exc.DisconnectionError("idle connection dropped")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, future=True, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, start transactions, so every one can be BEGIN IMMEDIATE:
        # several local host processes then queue for the write lock instead of failing to upgrade it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL's standard durability level: consistent after a crash, no fsync on every commit (local use only).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
