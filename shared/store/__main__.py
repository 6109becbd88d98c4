"""`python -m shared.store migrate | status | sql`: manage the sync database's schema from a shell."""

from __future__ import annotations

import argparse
import sys

from shared.settings import SettingsError, get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.store", description=__doc__)
    parser.add_argument("command", choices=["migrate", "status", "sql"])
    parser.add_argument("--url", help="SQLAlchemy URL; default: the SQL_URL app setting")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    url = args.url or settings.sql_url.get_secret_value()

    from shared.store import migrate
    from shared.store.engine import create_db_engine

    if args.command == "sql":
        migrate.offline_sql(url)
        return 0
    engine = create_db_engine(url, sql_auth=settings.sql_auth, entra_client_id=settings.azure_client_id)
    if args.command == "migrate":
        migrate.upgrade(engine)
    with engine.connect() as connection:
        current = migrate.current_revision(connection)
    head = migrate.head_revision()
    state = "up to date" if current == head else "migrations pending"
    print(f"database {engine.url.render_as_string(hide_password=True)}: revision {current} (head {head}): {state}")
    return 0 if current == head else 1


if __name__ == "__main__":
    sys.exit(main())
