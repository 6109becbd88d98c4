"""Connection reuse on a database server: every function thread keeps its pooled connection."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from shared.store import engine as engine_module
from shared.store.engine import create_db_engine

THREADS = 16


def test_sixteen_function_threads_reuse_their_connections_instead_of_logging_in_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_THREADPOOL_THREAD_COUNT", str(THREADS))
    engine = create_db_engine(postgres_url)
    logins = []
    sa.event.listen(engine, "connect", lambda *_: logins.append(1))
    all_inside = threading.Barrier(THREADS)

    def transaction() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            all_inside.wait(timeout=10)  # every thread holds a connection at the same moment

    try:
        for _round in range(3):
            threads = [threading.Thread(target=transaction) for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        engine.dispose()
    assert len(logins) == THREADS


def test_a_connection_dropped_while_idle_is_replaced_and_a_busy_one_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_db_engine(postgres_url)
    pings: list[int] = []
    monkeypatch.setattr(
        engine.dialect, "do_ping", lambda conn, _real=engine.dialect.do_ping: pings.append(1) or _real(conn)
    )
    try:
        with engine.begin() as conn:
            first_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        for _ in range(5):
            with engine.begin() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert pings == []  # used a moment ago: no extra round trip per transaction
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        admin.dispose()
        monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING_S", 0.0)  # as if it had sat idle for a while
        with engine.begin() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert pings == [1] and pid != first_pid  # the dead connection was noticed and replaced, no error
    finally:
        engine.dispose()
