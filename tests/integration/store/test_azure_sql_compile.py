"""Azure SQL cannot run here: every migration must still render to valid T-SQL for `mssql+pyodbc`."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mssql
from sqlalchemy.schema import CreateTable

from shared.store import migrate
from shared.store.database import Database
from shared.store.schema import appointments
from shared.store.tables import metadata


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


# A text type Azure SQL stores in the database's code page ("?" for emoji and non-Latin letters), not as Unicode.
_NON_UNICODE = re.compile(r"(?<![\wN])(VARCHAR|CHAR|TEXT|VARCHAR\(max\))\b", re.IGNORECASE)
_COLUMN = r"(\[?\w+\]?) ([A-Z]+(?:\([^)]*\))?)"


def test_every_declared_text_column_is_unicode_on_azure_sql() -> None:
    dialect = mssql.pyodbc.dialect(deprecate_large_types=True)  # type: ignore[attr-defined]
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert not _NON_UNICODE.search(ddl), f"{table.name}: {ddl}"


def _final_column_types(script: str) -> dict[tuple[str, str], str]:
    """Each column's type after running the whole T-SQL script: CREATE TABLE, then ADD / ALTER / DROP COLUMN."""
    types: dict[tuple[str, str], str] = {}
    for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\)", script, re.DOTALL):
        for line in body.splitlines():
            found = re.match(r"\s+" + _COLUMN, line)
            if found and found[1].upper() not in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN"):
                types[(table, found[1].strip("[]"))] = found[2]
    for table, column, kind in re.findall(r"ALTER TABLE (\w+) (?:ADD|ALTER COLUMN) " + _COLUMN, script):
        types[(table, column.strip("[]"))] = kind
    for table, column in re.findall(r"ALTER TABLE (\w+) DROP COLUMN (\w+)", script):
        types.pop((table, column), None)
    return types


def _non_unicode(types: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """Alembic's own `alembic_version` (our ASCII revision ids) aside."""
    return {
        column: kind for column, kind in types.items() if _NON_UNICODE.search(kind) and column[0] != "alembic_version"
    }


def test_the_migrated_azure_sql_schema_has_no_non_unicode_text_column(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.store.__main__ import main

    assert main(["sql", "--url", "mssql+pyodbc://"]) == 0
    types = _final_column_types(capsys.readouterr().out)
    assert ("appointments", "title") in types and ("webhook_inbox", "error") in types
    assert _non_unicode(types) == {}
    assert types[("appointments", "title")] == "NVARCHAR(255)"
    assert types[("appointments", "notes")] == "NVARCHAR(max)"
    declared = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns}
    assert declared <= set(types) | {("alembic_version", "version_num")}


def test_the_unicode_check_sees_the_varchar_columns_before_revision_0006() -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        migrate.offline_sql("mssql+pyodbc://", "0005_sync_protocol")
    before = _non_unicode(_final_column_types(buffer.getvalue()))
    assert before[("appointments", "title")] == "VARCHAR(255)"
    assert before[("appointments", "notes")] == "VARCHAR(max)"
