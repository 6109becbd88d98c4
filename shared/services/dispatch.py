"""From outbox to queue: record a change with the appointment, hand it to `rv3-to-ghl`, sweep what was missed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from shared import telemetry
from shared.queues import RV3_TO_GHL, QueueUnavailable
from shared.setting_defaults import OUTBOX_SWEEP_AFTER_S, seconds
from shared.store import outbox
from shared.work import Work

log = telemetry.get_logger("dispatch")

# Only entries this old: younger ones may still be on their way to the queue from the request that made them.
SWEEP_AFTER = timedelta(seconds=seconds("OUTBOX_SWEEP_AFTER_S", OUTBOX_SWEEP_AFTER_S))


def record_change(
    conn: Connection,
    *,
    appointment_id: int,
    operation: str,
    version: int,
    now: datetime,
    correlation_id: str | None,
) -> outbox.OutboxEntry:
    """Add the outbox row inside the caller's transaction (committed together with the change itself)."""
    return outbox.add(
        conn,
        appointment_id=appointment_id,
        operation=operation,
        version=version,
        now=now,
        correlation_id=correlation_id,
    )


def send(work: Work, entry: outbox.OutboxEntry) -> bool:
    """Enqueue an outbox entry; when storage is down it stays pending and the sweeper sends it later."""
    try:
        work.queues.send(RV3_TO_GHL, {**entry.message(), "traceparent": telemetry.current_traceparent()})
    except QueueUnavailable:
        log.warning(
            "outbox entry left for the sweeper: queue unavailable",
            extra={"operation": "outbox_dispatch", "success": False, "appointment_id": entry.appointment_id},
        )
        return False
    with work.transaction() as conn:
        outbox.mark_dispatched(conn, entry.op_id, work.now())
    return True


def sweep(work: Work, now: datetime | None = None) -> int:
    """Re-send outbox entries committed more than a minute ago but never enqueued (crash, storage outage)."""
    moment = now or work.now()
    with work.transaction() as conn:
        entries = outbox.undispatched(conn, moment - SWEEP_AFTER)
    sent = sum(1 for entry in entries if send(work, entry))
    if entries:
        log.info(
            "outbox sweep re-dispatched %d of %d entries",
            sent,
            len(entries),
            extra={"operation": "outbox_sweep", "success": sent == len(entries)},
        )
    return sent
