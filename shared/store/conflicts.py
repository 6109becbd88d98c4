"""Concurrent edits on both sides of an appointment, and how CONFLICT_POLICY settled each one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.schema import conflicts


def record(
    conn: Connection,
    *,
    appointment_id: int,
    policy: str,
    winner: str,
    rv3_values: Mapping[str, Any],
    ghl_values: Mapping[str, Any],
    now: datetime,
) -> int:
    return inserted_id(
        conn.execute(
            conflicts.insert().values(
                appointment_id=appointment_id,
                policy=policy,
                winner=winner,
                rv3_values=dict(rv3_values),
                ghl_values=dict(ghl_values),
                detected_at=now,
            )
        )
    )


@dataclass(frozen=True)
class ConflictRecord:
    policy: str
    winner: str
    rv3_values: dict[str, Any]
    ghl_values: dict[str, Any]
    detected_at: datetime


def of_appointment(conn: Connection, appointment_id: int, limit: int = 50) -> list[ConflictRecord]:
    """The appointment's conflicts, newest first."""
    query = (
        sa.select(conflicts)
        .where(conflicts.c.appointment_id == appointment_id)
        .order_by(conflicts.c.detected_at.desc(), conflicts.c.id.desc())
        .limit(limit)
    )
    return [
        ConflictRecord(r.policy, r.winner, dict(r.rv3_values or {}), dict(r.ghl_values or {}), r.detected_at)
        for r in conn.execute(query)
    ]
