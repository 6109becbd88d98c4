"""GHL calls recorded for metrics in batches: one transaction for many calls, nothing lost, written without a reader."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from shared.calls import CallRecord
from shared.services.attempts import CallLog
from shared.store.database import Database
from shared.store.schema import sync_attempts


def _call(n: int) -> CallRecord:
    return CallRecord(
        operation="appointments.update", location_id=f"loc_{n % 3}", method="PUT",
        path_template="/calendars/events/appointments/{eventId}", status_code=200, duration_ms=12.5,
        success=True, error_code=None, trace_id=None,
    )  # fmt: skip


def _count(db: Database) -> int:
    with db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sync_attempts)).scalar_one())


def test_calls_from_many_threads_are_written_in_few_transactions_and_all_of_them_once(db: Database) -> None:
    transactions = []
    sa.event.listen(db.engine, "commit", lambda _conn: transactions.append(1))
    calls = CallLog(lambda: db, flush_after_s=60)
    threads = [threading.Thread(target=lambda n=n: [calls.record(_call(n)) for _ in range(50)]) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls.flush()  # what a reader does first
    written_in = len(transactions)
    assert _count(db) == 400
    # Batches of 200 and the rest; threads that see a batch full at the same moment may each flush what
    # came meanwhile, so a few more: never a transaction per call.
    assert written_in <= 400 // 200 + len(threads) + 1


def test_a_lone_call_is_written_soon_without_anyone_reading(db: Database) -> None:
    calls = CallLog(lambda: db, flush_after_s=0.05)
    calls.record(_call(1))
    deadline = time.monotonic() + 10
    while _count(db) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _count(db) == 1
