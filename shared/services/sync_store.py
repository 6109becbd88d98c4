"""Storing the sync protocol's outcomes: GHL's state taken locally, conflicts, write-backs, pushes still due.

Every worker that learns what GHL holds (the webhook worker, the push worker's lookups and refusals, the
reconciliation's heal) stores it through `store_observed`, in its own transaction; `decided` logs each decision
with the appointment's id, the event and the decision (never patient data), so a run can be followed in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from shared import telemetry
from shared.services import dispatch, rv3_writeback
from shared.store import appointments as repo
from shared.store import conflicts as conflict_repo
from shared.store import outbox
from shared.store.appointments import Contention
from shared.work import Work
from shared.worker import Later
from sync_core.models import ConflictPolicy
from sync_core.protocol import Observed
from sync_core.retry import ErrorKind

log = telemetry.get_logger("sync")

T = TypeVar("T")
TRANSITION_TRIES = 5


def transition(work: Work, appointment_id: int, change: Callable[[Connection, repo.AppointmentRecord], T]) -> T:
    """Run `change` on the appointment as it is now, in one transaction; when another worker changed it in
    between (`Contention`), read it again and redo (the protocol's transitions are pure: redoing is safe)."""
    for _ in range(TRANSITION_TRIES):
        try:
            with work.transaction() as conn:
                row = repo.get(conn, appointment_id)
                if row is None:
                    raise LookupError(f"appointment {appointment_id} does not exist")
                return change(conn, row)
        except Contention:
            continue
    raise Later(ErrorKind.rate_limited, "appointment changed by others meanwhile", retry_after=1.0)


def decided(appointment_id: int | str, event: str, decision: str, **details: Any) -> None:
    """One structured line per sync decision: which appointment, on what event, what was decided."""
    log.info(
        "sync %s: %s",
        event,
        decision,
        extra={"operation": "sync_decision", "appointment_id": appointment_id, "event": event, "decision": decision,
               **details},
    )  # fmt: skip


@dataclass
class Stored:
    """What storing an outcome left for after the commit: outbox entries to dispatch, a stray event to remove."""

    entries: list[outbox.OutboxEntry] = field(default_factory=list)
    remove_event: str | None = None


def store_observed(
    work: Work,
    conn: Connection,
    row: repo.AppointmentRecord,
    observed: Observed,
    *,
    event: str,
    policy: ConflictPolicy,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
) -> Stored:
    """Store `observed` for the appointment read as `row` (in the caller's transaction): its new content if it
    took GHL's (a new version, RV3 told), the conflict, and an outbox entry when GHL must be sent the local state.
    Raises `Contention` when the appointment changed since `row` was read (see `transition`)."""
    record = observed.record
    if observed.changes is not None:
        content = {**repo.content_values(record.appointment), **(extra or {})}
        repo.save_sync(conn, row, record, content=content, now=now)
        rv3_writeback.record_ghl_change(work.settings, conn, row.id, now)
    else:
        repo.save_sync(conn, row, record)
    if observed.conflict is not None:
        conflict = observed.conflict
        conflict_repo.record(
            conn,
            appointment_id=row.id,
            policy=policy.value,
            winner=conflict.winner.value,
            rv3_values=conflict.local.model_dump(mode="json"),
            ghl_values=conflict.ghl.model_dump(mode="json") if conflict.ghl is not None else {"deleted": True},
            now=now,
        )
    stored = Stored(remove_event=observed.remove_event)
    if observed.push and not outbox.open_for_appointment(conn, row.id):
        version = row.version + (1 if observed.changes is not None else 0)
        stored.entries.append(
            dispatch.record_change(
                conn, appointment_id=row.id, operation="sync", version=version, now=now, correlation_id=correlation_id
            )
        )
    decided(
        row.id,
        event,
        observed.decision.value,
        conflict=observed.conflict.reason if observed.conflict else None,
        push=observed.push,
        sync_state=record.appointment.sync_state.value,
    )
    return stored
