"""The MiaSalud wing's SQL: events taken once, references found or created once, records merged under a version.

Every function works inside the caller's transaction. Two workers may race for the same row; what the database
enforces (unique keys, the `version` guard) decides, and the loser reads again (`Contention` when it keeps losing).
"""

from __future__ import annotations

import contextlib
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
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_events,
    miasalud_odoo_state,
    miasalud_stage_map,
)
from sync_core.miasalud.events import Stamp
from sync_core.miasalud.merge import decode_clocks, encode_clocks, merge, newest
from sync_core.text import fold

# Event statuses. applied / unchanged: the worker's outcome. rejected: refused at intake (its body kept for review).
# held: storage could not queue it, so SQL keeps it until the sweep queues it again (then `queued`).
APPLIED, UNCHANGED, REJECTED, HELD, QUEUED = "applied", "unchanged", "rejected", "held", "queued"
MAX_KEPT_BODY_CHARS = 64 * 1024
MAX_REDO = 5
ODOO_STATE_ROW = 1


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


# --- the push to Odoo: one worker per row (a lease), the version Odoo took, the outcome for staff ----------------


def touch_leads(conn: Connection, where: sa.ColumnElement[bool], now: datetime) -> list[int]:
    """The campaign contacts `where` selects changed through a row their lead copies (its contact, campaign or
    advisor): each takes a new version and goes back to pending, so its push carries the change and a push already
    in flight, which read the old values, is not recorded as success. Returns their ids (their pushes to queue)."""
    table = miasalud_campaign_contacts
    ids = [int(row_id) for row_id in conn.execute(sa.select(table.c.id).where(where)).scalars()]
    if ids:
        pending = {"odoo_sync_status": ODOO_SYNC_PENDING, "odoo_sync_error": None, "odoo_sync_attempts": 0}
        conn.execute(
            table.update().where(table.c.id.in_(ids)).values(**pending, version=table.c.version + 1, updated_at=now)
        )
    return ids


def claim_push(conn: Connection, table: sa.Table, row_id: int, *, now: datetime, until: datetime) -> sa.Row[Any] | None:
    """Take the row for pushing until `until`; None when another worker holds it (or it is gone)."""
    lease = table.c.odoo_lease_until
    taken = conn.execute(
        table.update().where(table.c.id == row_id, sa.or_(lease.is_(None), lease < now)).values(odoo_lease_until=until)
    )
    if taken.rowcount != 1:
        return None
    return conn.execute(sa.select(table).where(table.c.id == row_id)).first()


def record_pushed(conn: Connection, table: sa.Table, row_id: int, *, odoo_id: int, version: int, now: datetime) -> bool:
    """Odoo holds `version` of the row as record `odoo_id`: success, unless the row changed meanwhile (then it
    stays pending and this returns False: its newer version is still to push)."""
    id_column = "odoo_partner_id" if "odoo_partner_id" in table.c else "odoo_lead_id"
    conn.execute(
        table.update()
        .where(table.c.id == row_id)
        .values({id_column: odoo_id, "odoo_pushed_version": version, "odoo_lease_until": None})
    )
    done = conn.execute(
        table.update()
        .where(table.c.id == row_id, table.c.version == version)
        .values(odoo_sync_status="success", odoo_sync_error=None, odoo_sync_attempts=0, odoo_synced_at=now)
    )
    return bool(done.rowcount)


def record_push_failure(
    conn: Connection, table: sa.Table, row_id: int, *, status: str, reason: str, attempt: bool = True
) -> None:
    """The push failed (`status` error) or was set aside (`skipped`, `pending` while Odoo is paused): the reason
    is for staff, in Spanish."""
    values: dict[str, Any] = {"odoo_sync_status": status, "odoo_sync_error": reason[:2000], "odoo_lease_until": None}
    if attempt:
        values["odoo_sync_attempts"] = table.c.odoo_sync_attempts + 1
    conn.execute(table.update().where(table.c.id == row_id).values(values))


def release_push(conn: Connection, table: sa.Table, row_id: int) -> None:
    conn.execute(table.update().where(table.c.id == row_id).values(odoo_lease_until=None))


def due_pushes(conn: Connection, table: sa.Table, *, now: datetime, quiet_since: datetime, limit: int) -> list[int]:
    """Rows waiting for Odoo that no push is on: pending, untouched since `quiet_since` (their own push message
    had time to run), not leased."""
    lease = table.c.odoo_lease_until
    query = (
        sa.select(table.c.id)
        .where(
            table.c.odoo_sync_status == ODOO_SYNC_PENDING,
            table.c.updated_at < quiet_since,
            sa.or_(lease.is_(None), lease < now),
        )
        .order_by(table.c.updated_at, table.c.id)
        .limit(limit)
    )
    return [int(row_id) for row_id in conn.execute(query).scalars()]


def stage_mapping(conn: Connection) -> dict[str, str]:
    """`ultimo_estado` → Odoo stage name, as staff keep it."""
    return {row.state: row.stage_name for row in conn.execute(sa.select(miasalud_stage_map))}


def odoo_paused(conn: Connection) -> bool:
    found = conn.execute(
        sa.select(miasalud_odoo_state.c.auth_failed_at).where(miasalud_odoo_state.c.id == ODOO_STATE_ROW)
    ).scalar_one_or_none()
    return found is not None


def set_odoo_state(conn: Connection, *, now: datetime, auth_error: str | None) -> None:
    """Pause the pushes (`auth_error`: why) or resume them (None, after a call Odoo accepted)."""
    values: dict[str, Any] = {
        "auth_failed_at": now if auth_error else None,
        "auth_error": auth_error,
        "updated_at": now,
    }
    if auth_error is None:
        values["last_success_at"] = now
    changed = conn.execute(
        miasalud_odoo_state.update().where(miasalud_odoo_state.c.id == ODOO_STATE_ROW).values(values)
    )
    if changed.rowcount == 0:
        with contextlib.suppress(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(miasalud_odoo_state.insert().values(id=ODOO_STATE_ROW, **values))
