"""The outbox: appointment changes committed with the change itself, then dispatched to the `rv3-to-ghl` queue."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.schema import outbox

PENDING = "pending"  # committed, not yet handed to the queue
DISPATCHED = "dispatched"  # a queue message exists for it
DONE = "done"
FAILED = "failed"

# Built once (see `appointments`): every queue message reads and closes its entry.
_GET = sa.select(outbox).where(outbox.c.op_id == sa.bindparam("b_op"))
_BY_OP = outbox.update().where(outbox.c.op_id == sa.bindparam("b_op"))


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    op_id: str
    appointment_id: int
    operation: str
    appointment_version: int
    status: str
    attempts: int
    correlation_id: str | None
    created_at: datetime

    def message(self) -> dict[str, Any]:
        """The queue message for this entry: small, and enough for the worker to find everything else."""
        return {
            "op_id": self.op_id,
            "appointment_id": self.appointment_id,
            "operation": self.operation,
            "version": self.appointment_version,
            "correlation_id": self.correlation_id,
        }


def _entry(row: sa.Row[Any]) -> OutboxEntry:
    return OutboxEntry(**{k: row._mapping[k] for k in OutboxEntry.__dataclass_fields__})


def add(
    conn: Connection,
    *,
    appointment_id: int,
    operation: str,
    version: int,
    now: datetime,
    correlation_id: str | None = None,
) -> OutboxEntry:
    op_id = str(uuid.uuid4())
    conn.execute(
        outbox.insert().values(
            op_id=op_id,
            appointment_id=appointment_id,
            operation=operation,
            appointment_version=version,
            status=PENDING,
            correlation_id=correlation_id,
            created_at=now,
        )
    )
    entry = get(conn, op_id)
    assert entry is not None
    return entry


def get(conn: Connection, op_id: str) -> OutboxEntry | None:
    row = conn.execute(_GET, {"b_op": op_id}).first()
    return _entry(row) if row else None


def mark_dispatched(conn: Connection, op_id: str, now: datetime) -> None:
    conn.execute(
        outbox.update()
        .where(outbox.c.op_id == op_id, outbox.c.status == PENDING)
        .values(status=DISPATCHED, dispatched_at=now)
    )


def record_attempt(conn: Connection, op_id: str, error: str | None) -> None:
    conn.execute(
        outbox.update().where(outbox.c.op_id == op_id).values(attempts=outbox.c.attempts + 1, last_error=error)
    )


def finish(conn: Connection, op_id: str, now: datetime, *, failed: bool = False, error: str | None = None) -> None:
    conn.execute(_BY_OP, {"status": FAILED if failed else DONE, "done_at": now, "last_error": error, "b_op": op_id})


def undispatched(conn: Connection, older_than: datetime, limit: int = 200) -> list[OutboxEntry]:
    """Entries committed but never handed to the queue (a crash between commit and enqueue)."""
    rows = conn.execute(
        sa.select(outbox)
        .where(outbox.c.status == PENDING, outbox.c.created_at < older_than)
        .order_by(outbox.c.created_at, outbox.c.id)
        .limit(limit)
    )
    return [_entry(row) for row in rows]


def open_for_appointment(conn: Connection, appointment_id: int) -> bool:
    """Whether a change of this appointment is still on its way to GHL (reconciliation must not call it drift)."""
    query = (
        sa.select(outbox.c.id)
        .where(outbox.c.appointment_id == appointment_id, outbox.c.status.in_([PENDING, DISPATCHED]))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def of_appointment(conn: Connection, appointment_id: int, limit: int = 50) -> list[sa.Row[Any]]:
    """The appointment's outbox entries, newest first: its changes and how each ended."""
    query = (
        sa.select(outbox)
        .where(outbox.c.appointment_id == appointment_id)
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))
