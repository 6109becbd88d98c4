"""Every table of the app, both wings': the one metadata the migrations are checked against and tests empty."""

from shared.store import miasalud_schema, schema
from shared.store.columns import metadata

__all__ = ["metadata", "miasalud_schema", "schema"]
