"""The sync database: schema, engine, migrations and the statements the services run."""
