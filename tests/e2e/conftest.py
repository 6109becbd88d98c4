"""Fixtures the end-to-end tests share."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tools.bench.chaos import POSTGRES_ADMIN_URL


@pytest.fixture(scope="module")
def postgres_reachable() -> None:
    """The chaos runs keep their hosts' database in PostgreSQL: skipped, with a message, when it is not there."""
    engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"the chaos run needs PostgreSQL at {POSTGRES_ADMIN_URL.split('@')[-1]}: {type(exc).__name__}")
    finally:
        engine.dispose()
