"""Every call to GHL recorded in SQL (`sync_attempts`): the source of the GHL metrics endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from shared import telemetry
from shared.store.schema import sync_attempts

if TYPE_CHECKING:
    from shared.ghl.client import CallRecord
    from shared.store.database import Database

log = telemetry.get_logger("attempts")


def record_call(database: Database, call: CallRecord) -> None:
    """Store one GHL call; a database hiccup loses the metric, never the call's result."""
    try:
        with database.transaction() as conn:
            conn.execute(
                sync_attempts.insert().values(
                    operation=call.operation,
                    location_id=call.location_id,
                    success=call.success,
                    status_code=call.status_code,
                    error_code=call.error_code,
                    duration_ms=call.duration_ms,
                    trace_id=call.trace_id,
                    attempted_at=datetime.now(UTC),
                )
            )
    except SQLAlchemyError as exc:
        log.warning("GHL call not recorded for metrics: %s", type(exc).__name__)
