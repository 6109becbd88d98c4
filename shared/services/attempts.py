"""Every call to GHL and Odoo recorded in SQL (`sync_attempts`): the source of the GHL metrics endpoints and health."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from shared import telemetry
from shared.store.schema import sync_attempts

if TYPE_CHECKING:
    from shared.calls import CallRecord
    from shared.store.database import Database

log = telemetry.get_logger("attempts")

FLUSH_AFTER_S = 1.0
MAX_BATCH = 200


class CallLog:
    """GHL and Odoo calls written to SQL in batches: the calls of up to `flush_after_s` in one insert, not one
    transaction per call (which was a third of a change's transactions). Readers `flush` first, so what they read
    is complete for this process; another instance's calls show within `flush_after_s`. A database hiccup, or the
    process being killed, loses the metrics of that batch, never a call's result."""

    def __init__(
        self,
        database: Callable[[], Database],
        *,
        flush_after_s: float = FLUSH_AFTER_S,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self._flush_after_s = flush_after_s
        self._max_batch = max_batch
        self._clock = clock
        self._pending: list[dict[str, Any]] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def record(self, call: CallRecord) -> None:
        row = {
            "operation": call.operation,
            "location_id": call.location_id,
            "success": call.success,
            "status_code": call.status_code,
            "error_code": call.error_code,
            "duration_ms": call.duration_ms,
            "trace_id": call.trace_id,
            "attempted_at": self._clock(),
        }
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= self._max_batch
            if not full and self._timer is None:
                self._timer = threading.Timer(self._flush_after_s, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        """Write what was recorded so far, in one transaction."""
        with self._lock:
            rows, self._pending = self._pending, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if not rows:
            return
        try:
            with self._database().transaction() as conn:
                conn.execute(sync_attempts.insert(), rows)
        except SQLAlchemyError as exc:
            log.warning("%d GHL calls not recorded for metrics: %s", len(rows), type(exc).__name__)
