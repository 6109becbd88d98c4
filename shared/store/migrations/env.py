"""Alembic environment: online with a connection handed over by `shared.store.migrate`, or offline to SQL."""

from alembic import context

from shared.store.tables import metadata

config = context.config


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    options: dict[str, object] = {"paramstyle": "named"}
    if url.startswith("mssql"):
        # Without a connection the dialect cannot see the server's version; Azure SQL has NVARCHAR(max), where an
        # unknown (pre-2012) server would get the deprecated NTEXT.
        options["deprecate_large_types"] = True
    context.configure(url=url, target_metadata=metadata, literal_binds=True, dialect_opts=options)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
