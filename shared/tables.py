"""Azure Table storage of the adapters (rate budgets of GHL and Odoo, GHL's OAuth tokens): one client per table,
short timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import telemetry
from shared.lazy import serial_imports

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from shared.settings import Settings

# One entity per budget: a GHL location id, or `odoo:<db>` (the name predates the second client; infra creates it).
RATE_BUDGET_TABLE = "ghlratebudget"
CONNECTION_TIMEOUT_S = 5
READ_TIMEOUT_S = 10

log = telemetry.get_logger("tables")


def table_client(settings: Settings, name: str) -> TableClient:
    """A client of table `name` in the app's storage account (connection string locally, identity in Azure)."""
    with serial_imports:
        from azure.data.tables import TableServiceClient

        from shared.queues import storage_credential, storage_transport

    options: dict[str, Any] = {
        "transport": storage_transport(connection_timeout=CONNECTION_TIMEOUT_S, read_timeout=READ_TIMEOUT_S),
        "retry_total": 2,
        "retry_backoff_factor": 0.2,
    }
    conn = settings.storage_connection_string
    if conn is not None:
        service = TableServiceClient.from_connection_string(conn, **options)
    else:
        service = TableServiceClient(
            endpoint=settings.storage_service_uri("table"), credential=storage_credential(settings), **options
        )
    return service.get_table_client(name)


def ensure_table(table: TableClient) -> None:
    """Create the table when missing (local stack); infra creates it in Azure, where creating may be denied."""
    with serial_imports:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

    try:
        table.create_table()
    except ResourceExistsError:
        pass
    except HttpResponseError as exc:
        log.info("table %s not created (%s); assuming infra created it", table.table_name, exc.status_code)
