"""The MiaSalud wing's SQL: events taken once, references found or created once, records merged under a version.

Every function works inside the caller's transaction. Two workers may race for the same row; what the database
enforces (unique keys, the `version` guard) decides, and the loser reads again (`Contention` when it keeps losing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.store.ids import inserted_id
from shared.store.miasalud_schema import (
    ODOO_SYNC_PENDING,
    miasalud_advisors,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_events,
)
from sync_core.miasalud.events import Stamp
from sync_core.miasalud.merge import decode_clocks, encode_clocks, merge, newest
from sync_core.text import fold

# Event statuses. applied / unchanged: the worker's outcome. rejected: refused at intake (its body kept for review).
# held: storage could not queue it, so SQL keeps it until the sweep queues it again (then `queued`).
APPLIED, UNCHANGED, REJECTED, HELD, QUEUED = "applied", "unchanged", "rejected", "held", "queued"
MAX_KEPT_BODY_CHARS = 64 * 1024
MAX_REDO = 5


class Contention(Exception):
    """Other writers kept changing the row between our read and our write: try the message again shortly."""


# --- events -----------------------------------------------------------------------------------------------------


def keep_event(
    conn: Connection,
    *,
    event_key: str,
    kind: str,
    status: str,
    received_at: datetime,
    manychat_id: str | None = None,
    occurred_at: datetime | None = None,
    body: str | None = None,
    detail: Any = None,
) -> bool:
    """Record an event the intake refused or could not queue, with its body; False when it was already kept."""
    values = {
        "event_key": event_key,
        "kind": kind,
        "status": status,
        "received_at": received_at,
        "manychat_id": manychat_id,
        "occurred_at": occurred_at,
        "body": body[:MAX_KEPT_BODY_CHARS] if body is not None else None,
        "detail": json.dumps(detail, ensure_ascii=False) if detail is not None else None,
    }
    try:
        with conn.begin_nested():
            conn.execute(miasalud_events.insert().values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def claim_event(
    conn: Connection, *, event_key: str, kind: str, manychat_id: str, occurred_at: datetime, received_at: datetime
) -> bool:
    """Take an event for applying; False when it was applied before (a repeated delivery). A held or re-queued
    one is taken over (its body is no longer needed once applied)."""
    status = conn.execute(
        sa.select(miasalud_events.c.status).where(miasalud_events.c.event_key == event_key)
    ).scalar_one_or_none()
    if status is None:
        conn.execute(
            miasalud_events.insert().values(
                event_key=event_key,
                kind=kind,
                manychat_id=manychat_id,
                occurred_at=occurred_at,
                received_at=received_at,
                status=QUEUED,
            )
        )
        return True
    if status not in (HELD, QUEUED):
        return False
    taken = conn.execute(
        miasalud_events.update()
        .where(miasalud_events.c.event_key == event_key, miasalud_events.c.status.in_((HELD, QUEUED)))
        .values(status=QUEUED, body=None)
    )
    return taken.rowcount == 1


def finish_event(conn: Connection, event_key: str, *, status: str, detail: Any, processed_at: datetime) -> None:
    conn.execute(
        miasalud_events.update()
        .where(miasalud_events.c.event_key == event_key)
        .values(status=status, detail=json.dumps(detail, ensure_ascii=False), processed_at=processed_at)
    )


def held_events(conn: Connection, limit: int) -> list[sa.Row[Any]]:
    """Events storage could not queue, oldest first, with the message to send again."""
    query = (
        sa.select(miasalud_events.c.event_key, miasalud_events.c.kind, miasalud_events.c.body)
        .where(miasalud_events.c.status == HELD)
        .order_by(miasalud_events.c.received_at, miasalud_events.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def mark_queued(conn: Connection, event_key: str) -> None:
    conn.execute(
        miasalud_events.update()
        .where(miasalud_events.c.event_key == event_key, miasalud_events.c.status == HELD)
        .values(status=QUEUED)
    )


# --- references: found, or created from the event that names them -----------------------------------------------


def channel_id(conn: Connection, name: str, now: datetime) -> int:
    """The channel called `name` (case, accents and spacing aside), created from the event when new."""
    key = fold(name)[:200]
    return _found_or_created(
        conn,
        miasalud_channels,
        miasalud_channels.c.name_key == key,
        {"name": name[:200], "name_key": key, "from_event": True, "created_at": now, "updated_at": now},
    )


def advisor_id(conn: Connection, external_id: str, now: datetime) -> int:
    """The advisor ManyChat knows as `external_id` (comercial_id / medico_id), created from the event when new."""
    return _found_or_created(
        conn,
        miasalud_advisors,
        miasalud_advisors.c.external_id == external_id,
        {"external_id": external_id, "from_event": True, "created_at": now, "updated_at": now},
    )


def campaign_id(conn: Connection, number: int, now: datetime) -> int:
    """The campaign ManyChat numbers `number`, created from the event (for staff to complete) when new."""
    return _found_or_created(
        conn,
        miasalud_campaigns,
        miasalud_campaigns.c.manychat_campaign_id == number,
        {"manychat_campaign_id": number, "from_event": True, "created_at": now, "updated_at": now},
    )


def _found_or_created(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool], values: dict[str, Any]) -> int:
    query = sa.select(table.c.id).where(where)
    found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return int(found)
    try:
        with conn.begin_nested():
            return inserted_id(conn.execute(table.insert().values(**values)))
    except sa.exc.IntegrityError:  # created meanwhile by another worker: theirs is the one
        return int(conn.execute(query).scalar_one())


# --- records: merged field by field, in event order ----------------------------------------------------------------


def merge_record(
    conn: Connection,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    *,
    identity: Mapping[str, Any],
    fields: Mapping[str, Any],
    stamp: Stamp,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Apply `fields`, stamped `stamp`, to the row `where` selects (created with `identity` when missing); returns
    its id and the fields that changed. A change sends the row back to `odoo_sync_status` pending."""
    for _ in range(MAX_REDO):
        row = conn.execute(sa.select(table.c.id, table.c.version, table.c.field_clocks).where(where)).first()
        clocks = decode_clocks(row.field_clocks) if row is not None else {}
        merged = merge(clocks, fields, stamp)
        tracked = {"field_clocks": encode_clocks(merged.clocks), "event_at": newest(merged.clocks), "updated_at": now}
        if row is None:
            values = {**identity, **merged.values, **tracked, "version": 1, "created_at": now}
            try:
                with conn.begin_nested():
                    return inserted_id(conn.execute(table.insert().values(**values))), merged.values
            except sa.exc.IntegrityError:
                continue  # another worker created it meanwhile: merge into theirs
        if not merged.changed:
            return int(row.id), {}
        pending = {"odoo_sync_status": ODOO_SYNC_PENDING, "odoo_sync_error": None, "odoo_sync_attempts": 0}
        changed = conn.execute(
            table.update()
            .where(table.c.id == row.id, table.c.version == row.version)
            .values(**merged.values, **tracked, **pending, version=row.version + 1)
        )
        if changed.rowcount == 1:
            return int(row.id), merged.values
    raise Contention(f"{table.name}: changed by other writers {MAX_REDO} times in a row")
