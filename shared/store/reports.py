"""Reconciliation runs and their reports: one row per run and location, leased, checkpointed, then finished."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.schema import reconciliation_reports as runs

QUEUED = "queued"  # its message is on the `reconcile` queue
RUNNING = "running"  # walked up to its checkpoint
COMPLETED = "completed"
FAILED = "failed"
OPEN = (QUEUED, RUNNING)


@dataclass(frozen=True)
class RunRecord:
    id: int
    run_id: str
    location_id: str
    window_start: datetime
    window_end: datetime
    status: str
    heal: bool
    checkpoint: datetime | None
    calendar_ids: list[str] | None
    calendar_index: int
    drift_count: int
    report: dict[str, Any]
    error: str | None
    lease_until: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _run(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(**{k: row._mapping[k] for k in RunRecord.__dataclass_fields__})


def create(
    conn: Connection,
    *,
    run_id: str,
    location_id: str,
    window: tuple[datetime, datetime],
    heal: bool,
    report: Mapping[str, Any],
    now: datetime,
) -> int:
    """A queued run; (run_id, location_id) is unique, so a repeated fan-out raises IntegrityError."""
    return inserted_id(
        conn.execute(
            runs.insert().values(
                run_id=run_id,
                location_id=location_id,
                window_start=window[0],
                window_end=window[1],
                status=QUEUED,
                heal=heal,
                report=dict(report),
                created_at=now,
            )
        )
    )


def get(conn: Connection, report_id: int) -> RunRecord | None:
    row = conn.execute(sa.select(runs).where(runs.c.id == report_id)).first()
    return _run(row) if row else None


def find(conn: Connection, run_id: str, location_id: str) -> RunRecord | None:
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id, runs.c.location_id == location_id)).first()
    return _run(row) if row else None


def claim(conn: Connection, report_id: int, now: datetime, until: datetime) -> bool:
    """Take the run's lease; False while another worker holds an unexpired one or the run is over."""
    result = conn.execute(
        runs.update()
        .where(
            runs.c.id == report_id,
            runs.c.status.in_(OPEN),
            sa.or_(runs.c.lease_until.is_(None), runs.c.lease_until < now),
        )
        .values(lease_until=until)
    )
    return result.rowcount == 1


def renew(conn: Connection, report_id: int, held_until: datetime, until: datetime) -> bool:
    """Extend our lease (known by its current expiry); False if it expired and another worker took the run."""
    result = conn.execute(
        runs.update().where(runs.c.id == report_id, runs.c.lease_until == held_until).values(lease_until=until)
    )
    return result.rowcount == 1


def release(conn: Connection, report_id: int, held_until: datetime) -> None:
    conn.execute(runs.update().where(runs.c.id == report_id, runs.c.lease_until == held_until).values(lease_until=None))


def start(conn: Connection, report_id: int, held_until: datetime, calendar_ids: Sequence[str], now: datetime) -> bool:
    """Fix the calendars the run walks and mark it running, from the start of its window."""
    result = conn.execute(
        runs.update()
        .where(runs.c.id == report_id, runs.c.lease_until == held_until)
        .values(
            status=RUNNING,
            calendar_ids=list(calendar_ids),
            calendar_index=0,
            checkpoint=runs.c.window_start,
            started_at=now,
        )
    )
    return result.rowcount == 1


def save_checkpoint(
    conn: Connection,
    report_id: int,
    held_until: datetime,
    *,
    calendar_index: int,
    checkpoint: datetime,
    report: Mapping[str, Any],
    drift: int,
    until: datetime,
) -> bool:
    """Store the report so far and where the walk is, renewing the lease; False if the lease was lost."""
    result = conn.execute(
        runs.update()
        .where(runs.c.id == report_id, runs.c.lease_until == held_until)
        .values(
            calendar_index=calendar_index,
            checkpoint=checkpoint,
            report=dict(report),
            drift_count=drift,
            lease_until=until,
        )
    )
    return result.rowcount == 1


def finish(
    conn: Connection,
    report_id: int,
    held_until: datetime,
    *,
    report: Mapping[str, Any],
    drift: int,
    now: datetime,
) -> bool:
    result = conn.execute(
        runs.update()
        .where(runs.c.id == report_id, runs.c.lease_until == held_until)
        .values(status=COMPLETED, report=dict(report), drift_count=drift, finished_at=now, lease_until=None)
    )
    return result.rowcount == 1


def fail(conn: Connection, report_id: int, error: str, now: datetime) -> bool:
    """Mark an unfinished run failed (whoever holds it): its message gave up. False if it had already ended."""
    result = conn.execute(
        runs.update()
        .where(runs.c.id == report_id, runs.c.status.in_(OPEN))
        .values(status=FAILED, error=error[:2000], finished_at=now, lease_until=None)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class ListFilter:
    location_id: str | None = None
    run_id: str | None = None
    status: str | None = None


def page(conn: Connection, flt: ListFilter, *, offset: int, limit: int) -> tuple[list[RunRecord], int]:
    """Newest runs first, and how many match."""
    where: list[sa.ColumnElement[bool]] = []
    if flt.location_id:
        where.append(runs.c.location_id == flt.location_id)
    if flt.run_id:
        where.append(runs.c.run_id == flt.run_id)
    if flt.status:
        where.append(runs.c.status == flt.status)
    total = conn.execute(sa.select(sa.func.count()).select_from(runs).where(*where)).scalar_one()
    rows = conn.execute(
        sa.select(runs).where(*where).order_by(runs.c.created_at.desc(), runs.c.id.desc()).offset(offset).limit(limit)
    )
    return [_run(row) for row in rows], int(total)


def latest(conn: Connection, location_id: str, *, status: str | None = None) -> RunRecord | None:
    """The location's most recent run (of that status); for a completed one, the last to finish."""
    query = sa.select(runs).where(runs.c.location_id == location_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    order = runs.c.finished_at.desc() if status == COMPLETED else runs.c.created_at.desc()
    row = conn.execute(query.order_by(order, runs.c.id.desc()).limit(1)).first()
    return _run(row) if row else None


@dataclass(frozen=True)
class RunDay:
    """A run as the drift calendar shows it (no report body)."""

    id: int
    location_id: str
    window_start: datetime
    status: str
    drift_count: int
    created_at: datetime


def created_since(conn: Connection, start: datetime, limit: int = 5000) -> list[RunDay]:
    """Runs created since `start`, oldest first (at most `limit`)."""
    query = (
        sa.select(
            runs.c.id, runs.c.location_id, runs.c.window_start, runs.c.status, runs.c.drift_count, runs.c.created_at
        )
        .where(runs.c.created_at >= start)
        .order_by(runs.c.created_at, runs.c.id)
        .limit(limit)
    )
    return [RunDay(**row._mapping) for row in conn.execute(query)]
