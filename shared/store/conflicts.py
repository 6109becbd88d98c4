"""Concurrent edits on both sides of an appointment, and how CONFLICT_POLICY settled each one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
