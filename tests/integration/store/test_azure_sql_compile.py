"""Azure SQL cannot run here: every migration must still render to valid T-SQL for `mssql+pyodbc`."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from shared.store import migrate
from shared.store.database import Database
from shared.store.schema import appointments


def _offline_sql(url: str) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        command.upgrade(migrate.alembic_config(url), "head", sql=True)
    return buffer.getvalue()


def test_every_migration_renders_for_azure_sql() -> None:
    sql = _offline_sql("mssql+pyodbc://")
    revisions = [s.revision for s in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()]
    for revision in revisions:
        assert f"'{revision}'" in sql, f"migration {revision} missing from the rendered T-SQL"
    assert "CREATE TABLE appointments" in sql
    assert "BIGINT NOT NULL IDENTITY" in sql
    # SQL Server would allow only one NULL under a plain unique constraint: the index must be filtered.
    assert "ON appointments (location_id, ghl_event_id) WHERE ghl_event_id IS NOT NULL" in sql
    assert "DATETIME2" in sql or "DATETIME" in sql


@pytest.mark.parametrize("url", ["postgresql+psycopg://", "sqlite://"])
def test_every_migration_renders_for_the_local_engines(url: str) -> None:
    assert "CREATE TABLE outbox" in _offline_sql(url)


def test_a_statement_sqlite_accepts_but_azure_sql_cannot_run_is_caught(tmp_path: Path) -> None:
    from tests.fixtures import sql as fixture

    db = Database.connect_url(f"sqlite:///{tmp_path / 'sync.db'}")
    with db.transaction() as conn:
        conn.execute(sa.select(appointments).limit(5).offset(3))  # no ORDER BY: fine in SQLite, not in T-SQL
    caught = list(fixture.mssql_failures)
    fixture.mssql_failures.clear()
    db.dispose()
    assert any("order_by" in failure for failure in caught)
