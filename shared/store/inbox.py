"""The webhook inbox: each GHL delivery recorded once by its dedupe key, with its outcome and duration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.schema import webhook_inbox

# Built once (see `appointments`): every webhook claims and finishes its delivery.
_CLAIMED = sa.select(webhook_inbox.c.id, webhook_inbox.c.success).where(
    webhook_inbox.c.dedupe_key == sa.bindparam("b_key")
)
_INSERT = webhook_inbox.insert()
_BY_KEY = webhook_inbox.update().where(webhook_inbox.c.dedupe_key == sa.bindparam("b_key"))


@dataclass(frozen=True)
class Delivery:
    """What identifies one webhook delivery; written with the change it causes."""

    dedupe_key: str
    webhook_id: str | None
    payload_hash: str
    event_type: str
    location_id: str | None
    ghl_event_id: str | None
    received_at: datetime


@dataclass(frozen=True)
class Result:
    success: bool
    outcome: str
    duration_ms: float
    processed_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Sample:
    """One processed delivery, as the metrics see it."""

    event_type: str
    success: bool
    duration_ms: float


def is_processed(conn: Connection, dedupe_key: str) -> bool:
    """Whether this delivery was already applied (a failed attempt does not count)."""
    query = sa.select(webhook_inbox.c.success).where(webhook_inbox.c.dedupe_key == dedupe_key)
    return conn.execute(query).scalar_one_or_none() is True


@dataclass(frozen=True)
class Claim:
    """A delivery taken for processing in the caller's transaction, to `finish` in the same transaction."""

    delivery: Delivery
    first: bool  # no attempt of it was recorded before: its row is written by `finish`


def claim(conn: Connection, delivery: Delivery) -> Claim | None:
    """Take the delivery for processing inside the caller's transaction; None when it was already applied.

    A first delivery's row is written with its outcome, by `finish`: a concurrent first delivery of the same key
    then fails there on the unique key, and its transaction rolls back. A failed attempt's row is taken over at
    once, which locks it: a concurrent claim waits for this transaction and then finds the delivery applied.
    """
    existing = conn.execute(_CLAIMED, {"b_key": delivery.dedupe_key}).first()
    if existing is None:
        return Claim(delivery, first=True)
    if existing.success:
        return None
    taken = conn.execute(
        webhook_inbox.update()
        .where(webhook_inbox.c.id == existing.id, _not_applied())
        .values(success=None, outcome=None, error=None)
    )
    return Claim(delivery, first=False) if taken.rowcount == 1 else None


def finish(conn: Connection, claim: Claim, result: Result) -> None:
    """Record how a claimed delivery ended (committed with its change)."""
    if claim.first:
        conn.execute(_INSERT, {**_identity(claim.delivery), **_result(result)})
    else:
        conn.execute(_BY_KEY, {**_result(result), "b_key": claim.delivery.dedupe_key})


def record_failure(conn: Connection, delivery: Delivery, result: Result) -> None:
    """Record a failed attempt (its own transaction, after the change rolled back); never hides a success."""
    updated = conn.execute(
        webhook_inbox.update()
        .where(webhook_inbox.c.dedupe_key == delivery.dedupe_key, _not_applied())
        .values(**_result(result))
    )
    if updated.rowcount == 0 and not _exists(conn, delivery.dedupe_key):
        conn.execute(webhook_inbox.insert().values(**_identity(delivery), **_result(result)))


def samples_since(conn: Connection, since: datetime) -> list[Sample]:
    """Every processed delivery received at or after `since` (oldest first)."""
    rows = conn.execute(
        sa.select(webhook_inbox.c.event_type, webhook_inbox.c.success, webhook_inbox.c.duration_ms)
        .where(webhook_inbox.c.received_at >= since, webhook_inbox.c.success.is_not(None))
        .order_by(webhook_inbox.c.received_at, webhook_inbox.c.id)
    )
    return [Sample(row.event_type, bool(row.success), float(row.duration_ms or 0.0)) for row in rows]


def _not_applied() -> sa.ColumnElement[bool]:
    # Spelled out: `IS NOT 1` would be accepted by SQLite but is not T-SQL.
    return sa.or_(webhook_inbox.c.success.is_(None), webhook_inbox.c.success == sa.false())


def _exists(conn: Connection, dedupe_key: str) -> bool:
    query = sa.select(webhook_inbox.c.id).where(webhook_inbox.c.dedupe_key == dedupe_key)
    return conn.execute(query).first() is not None


def _identity(delivery: Delivery) -> dict[str, object]:
    return {
        "dedupe_key": delivery.dedupe_key,
        "webhook_id": delivery.webhook_id,
        "payload_hash": delivery.payload_hash,
        "event_type": delivery.event_type[:64],
        "location_id": delivery.location_id,
        "ghl_event_id": delivery.ghl_event_id,
        "received_at": delivery.received_at,
    }


def _result(result: Result) -> dict[str, object]:
    return {
        "success": result.success,
        "outcome": result.outcome[:32],
        "error": result.error,
        "duration_ms": result.duration_ms,
        "processed_at": result.processed_at,
    }


@dataclass(frozen=True)
class Seen:
    """One GHL delivery about an event, as an appointment's history shows it."""

    event_type: str
    received_at: datetime
    outcome: str | None
    success: bool | None


def of_event(conn: Connection, location_id: str, ghl_event_id: str, limit: int = 50) -> list[Seen]:
    """GHL's deliveries about one of its events, newest first."""
    query = (
        sa.select(
            webhook_inbox.c.event_type, webhook_inbox.c.received_at, webhook_inbox.c.outcome, webhook_inbox.c.success
        )
        .where(webhook_inbox.c.location_id == location_id, webhook_inbox.c.ghl_event_id == ghl_event_id)
        .order_by(webhook_inbox.c.received_at.desc(), webhook_inbox.c.id.desc())
        .limit(limit)
    )
    return [Seen(r.event_type, r.received_at, r.outcome, r.success) for r in conn.execute(query)]
