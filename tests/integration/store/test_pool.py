"""Connection reuse on a database server: every function thread keeps its pooled connection."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

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
