"""What MiaSalud's operations team sees and does about the push to Odoo: the status, a retry, the stage map."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.http import ApiError
from shared.services.miasalud import odoo_push
from shared.services.miasalud.odoo_errors import require_odoo
from shared.store import miasalud as store
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_odoo_state, miasalud_stage_map
from shared.work import Work
from sync_core.miasalud.odoo import RecordKind, pushed, restaged
from sync_core.text import fold

ROUTE_KINDS: dict[str, RecordKind] = {"contacts": "contact", "campaign-contacts": "campaign_contact"}
MAX_ERRORS_LISTED = 100


def sync_status(work: Work) -> dict[str, Any]:
    """Counts per `odoo_sync_status` for contacts and campaign contacts, the rows in error with their reason, and
    whether pushes are paused (and why)."""
    settings = work.settings
    with work.transaction() as conn:
        kinds: dict[str, Any] = {}
        for route, kind in ROUTE_KINDS.items():
            table = odoo_push.TABLES[kind]
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(table.c.odoo_sync_status, sa.func.count()).group_by(table.c.odoo_sync_status)
                ).all()
            )
            errors = conn.execute(
                sa.select(table.c.id, table.c.odoo_sync_error, table.c.odoo_sync_attempts, table.c.updated_at)
                .where(table.c.odoo_sync_status == "error")
                .order_by(table.c.updated_at.desc(), table.c.id.desc())
                .limit(MAX_ERRORS_LISTED)
            ).all()
            kinds[route.replace("-", "_")] = {
                "pushed": pushed(settings.odoo_sync, kind),
                "counts": {status: int(n) for status, n in counts.items()},
                "errors": [
                    {
                        "id": e.id,
                        "reason": e.odoo_sync_error,
                        "attempts": e.odoo_sync_attempts,
                        "updated_at": e.updated_at,
                    }
                    for e in errors
                ],
            }
        state = conn.execute(sa.select(miasalud_odoo_state)).first()
    return {
        "configured": bool(settings.odoo_url),
        "mode": settings.odoo_sync,
        "paused": bool(state and state.auth_failed_at),
        "paused_reason": state.auth_error if state else None,
        "last_success_at": state.last_success_at if state else None,
        **kinds,
    }


def retry(work: Work, route_kind: str, row_id: int) -> dict[str, Any]:
    """Push one row again now, whatever its status (a fixed record, a replay after an error)."""
    kind = ROUTE_KINDS.get(route_kind)
    if kind is None:
        raise ApiError(404, "not_found", "El recurso no existe.")
    settings = work.settings
    require_odoo(bool(settings.odoo_url))
    if not pushed(settings.odoo_sync, kind):
        raise ApiError(409, "not_pushed", f"Con ODOO_SYNC={settings.odoo_sync} este tipo de registro no va a Odoo.")
    table = odoo_push.TABLES[kind]
    with work.transaction() as conn:
        found = conn.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(odoo_sync_status="pending", odoo_sync_error=None, odoo_sync_attempts=0, odoo_pushed_version=None)
        )
        if found.rowcount != 1:
            raise ApiError(404, "not_found", "El registro no existe.")
    odoo_push.enqueue(work, kind, row_id)
    return {"kind": route_kind, "id": row_id, "odoo_sync_status": "pending"}


def stages(work: Work) -> dict[str, Any]:
    with work.transaction() as conn:
        rows = conn.execute(sa.select(miasalud_stage_map).order_by(miasalud_stage_map.c.state)).all()
    return {"items": [{"state": r.state, "stage": r.stage_name} for r in rows]}


def replace_stages(work: Work, mapping: list[tuple[str, str]]) -> dict[str, Any]:
    """The whole mapping at once (`ultimo_estado` → stage name); two states that differ only in case, accents or
    spacing are one state, and are refused as a repetition."""
    keys = [fold(state) for state, _ in mapping]
    repeated = sorted({state for (state, _), key in zip(mapping, keys, strict=True) if keys.count(key) > 1})
    if repeated:
        raise ApiError(422, "repeated_state", "Un estado aparece más de una vez.", details=repeated)
    now = work.now()
    with work.transaction() as conn:
        before = {row.state_key: row.stage_name for row in conn.execute(sa.select(miasalud_stage_map))}
        conn.execute(miasalud_stage_map.delete())
        if mapping:
            conn.execute(
                miasalud_stage_map.insert(),
                [
                    {"state": state, "state_key": key, "stage_name": stage, "created_at": now, "updated_at": now}
                    for (state, stage), key in zip(mapping, keys, strict=True)
                ],
            )
        moved = restaged(before, dict(zip(keys, (stage for _, stage in mapping), strict=True)))
        pushes = _leads_in_states(conn, moved, now)
    odoo_push.enqueue_all(work, pushes)
    return stages(work)


def _leads_in_states(conn: Any, state_keys: set[str], now: datetime) -> list[tuple[RecordKind, int]]:
    """The leads whose `ultimo_estado` now maps to another stage go back to pending: their push moves them."""
    if not state_keys:
        return []
    table = miasalud_campaign_contacts
    rows = conn.execute(sa.select(table.c.id, table.c.last_state).where(table.c.last_state.is_not(None)))
    ids = [row.id for row in rows if fold(row.last_state) in state_keys]
    if not ids:
        return []
    return [("campaign_contact", link_id) for link_id in store.touch_leads(conn, table.c.id.in_(ids), now)]
