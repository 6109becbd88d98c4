"""SQL ⇄ Odoo reconciliation: every partner and lead SQL says Odoo holds, checked against what Odoo holds.

Both sides are read in pages; what a row's push would send (`odoo_push`) is compared with Odoo's record found by
`x_manychat_id` (`sync_core.miasalud.reconcile`): missing, doubled, diverged field by field (both values), and
records Odoo has that SQL does not know. Rows a push is still on (pending and recently changed) are counted apart,
not as drift. With `heal`, each missing or diverged row is pushed again through the normal path (the push finds
before it creates, so a heal never doubles a record); doubles are reported for staff to merge in Odoo.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from shared import telemetry
from shared.http import ApiError
from shared.odoo.errors import OdooError
from shared.services.miasalud import odoo_push
from shared.services.miasalud.odoo_errors import require_odoo
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts, miasalud_odoo_reports
from shared.work import Work
from sync_core.miasalud.odoo import ARCHIVED_TOO, LEAD, PARTNER, RecordKind, partner_values, pushed
from sync_core.miasalud.reconcile import Difference, compare

log = telemetry.get_logger("odoo")

PAGE = 200
MAX_REPORTED = 500
IN_FLIGHT_S = 600.0
# Odoo keeps `description` as HTML (it wraps and sanitises what is written): compared, it would always differ.
NOT_COMPARED = frozenset({"description"})


def run(work: Work, *, trigger: str, heal: bool) -> dict[str, Any]:
    """One reconciliation, recorded as a report; raises ApiError 409 when Odoo is not configured."""
    settings = work.settings
    require_odoo(bool(settings.odoo_url))
    started = work.now()
    with work.transaction() as conn:
        report_id = int(
            conn.execute(
                miasalud_odoo_reports.insert().values(trigger=trigger, status="running", started_at=started, heal=heal)
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    counts: dict[str, Any] = {}
    differences: list[Difference] = []
    try:
        if pushed(settings.odoo_sync, "contact"):
            differences += _partners(work, counts)
        if pushed(settings.odoo_sync, "campaign_contact"):
            differences += _leads(work, counts)
    except OdooError as failure:
        _finish(
            work, report_id, status="failed", counts=counts, differences=differences, healed=0, error=failure.reason
        )
        raise ApiError(503, "odoo_unavailable", f"Odoo no respondió a la conciliación: {failure.reason}") from None
    healed = _heal(work, differences) if heal else 0
    _finish(work, report_id, status="completed", counts=counts, differences=differences, healed=healed, error=None)
    if differences:
        telemetry.alert(
            "reconciliation_drift",
            f"SQL and Odoo differ on {len(differences)} records",
            operation="odoo_reconcile",
            drift=len(differences),
            detail="odoo",
        )
    return report(work, report_id)


def _partners(work: Work, counts: dict[str, Any]) -> list[Difference]:
    expected: dict[str, tuple[int, dict[str, Any]]] = {}
    in_flight = 0
    for row in _rows(work, miasalud_contacts):
        if _pushing(work, row):
            in_flight += 1
            continue
        expected[row.manychat_id] = (row.id, partner_values(odoo_push.person(row)))
    found = [
        (str(r["x_manychat_id"]), r) for r in _odoo_records(work, PARTNER, ["id", "name", "phone", "x_manychat_id"])
    ]
    differences = compare(PARTNER, expected, found)
    counts[PARTNER] = _counted(len(expected), in_flight, differences)
    return differences


def _leads(work: Work, counts: dict[str, Any]) -> list[Difference]:
    expected: dict[str, tuple[int, dict[str, Any]]] = {}
    in_flight = 0
    with work.transaction() as conn:
        contacts = {row.id: row for row in conn.execute(sa.select(miasalud_contacts))}
    fields: set[str] = {"id", "x_manychat_id", "x_campaign_id"}
    for row in _rows(work, miasalud_campaign_contacts):
        if _pushing(work, row):
            in_flight += 1
            continue
        contact = contacts[row.contact_id]
        partner_id = contact.odoo_partner_id if work.settings.odoo_sync == "both" else None
        values = {
            name: value
            for name, value in odoo_push.lead_push_values(work, row, contact, partner_id).items()
            if name not in NOT_COMPARED
        }
        fields |= values.keys()
        expected[f"{contact.manychat_id}/{values['x_campaign_id']}"] = (row.id, values)
    found = [(f"{r['x_manychat_id']}/{r.get('x_campaign_id')}", r) for r in _odoo_records(work, LEAD, sorted(fields))]
    differences = compare(LEAD, expected, found)
    counts[LEAD] = _counted(len(expected), in_flight, differences)
    return differences


def _rows(work: Work, table: sa.Table) -> list[sa.Row[Any]]:
    """Every row whose kind Odoo holds, in pages of ids."""
    rows: list[sa.Row[Any]] = []
    after = 0
    while True:
        with work.transaction() as conn:
            page = list(
                conn.execute(
                    sa.select(table)
                    .where(table.c.id > after, table.c.odoo_sync_status != "skipped")
                    .order_by(table.c.id)
                    .limit(PAGE * 5)
                )
            )
        rows += page
        if len(page) < PAGE * 5:
            return rows
        after = page[-1].id


def _pushing(work: Work, row: sa.Row[Any]) -> bool:
    """A push is still on this row: it changed a moment ago and Odoo may not have it yet."""
    recent = row.updated_at > work.now() - timedelta(seconds=IN_FLIGHT_S)
    return bool(row.odoo_sync_status == "pending" and recent)


def _odoo_records(work: Work, model: str, fields: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while True:
        page = work.odoo.search_read(
            model,
            [("x_manychat_id", "!=", False), ARCHIVED_TOO],
            fields,
            limit=PAGE,
            offset=len(records),
            order="id asc",
        )
        records += page
        if len(page) < PAGE:
            return records


def _counted(checked: int, in_flight: int, differences: list[Difference]) -> dict[str, int]:
    found: dict[str, int] = {"checked": checked, "in_flight": in_flight}
    for difference in differences:
        found[difference.problem] = found.get(difference.problem, 0) + 1
    return found


def _heal(work: Work, differences: list[Difference]) -> int:
    """Push again every row Odoo lacks or holds differently; returns how many were queued."""
    healed = 0
    for difference in differences:
        if difference.problem in ("missing_in_odoo", "diverged") and difference.sql_id is not None:
            kind: RecordKind = "contact" if difference.model == PARTNER else "campaign_contact"
            table = odoo_push.TABLES[kind]
            with work.transaction() as conn:
                conn.execute(
                    table.update()
                    .where(table.c.id == difference.sql_id)
                    .values(odoo_sync_status="pending", odoo_pushed_version=None, odoo_sync_error=None)
                )
            odoo_push.enqueue(work, kind, difference.sql_id)
            healed += 1
    return healed


def _finish(
    work: Work,
    report_id: int,
    *,
    status: str,
    counts: dict[str, Any],
    differences: list[Difference],
    healed: int,
    error: str | None,
) -> None:
    with work.transaction() as conn:
        conn.execute(
            miasalud_odoo_reports.update()
            .where(miasalud_odoo_reports.c.id == report_id)
            .values(
                status=status,
                finished_at=work.now(),
                counts=json.dumps(counts),
                differences=json.dumps([_difference(d) for d in differences[:MAX_REPORTED]], ensure_ascii=False),
                healed=healed,
                error=error,
            )
        )


def _difference(difference: Difference) -> dict[str, Any]:
    return {
        "model": difference.model,
        "key": difference.key,
        "problem": difference.problem,
        "sql_id": difference.sql_id,
        "odoo_ids": list(difference.odoo_ids),
        "fields": {name: {"sql": sql, "odoo": odoo} for name, (sql, odoo) in difference.fields.items()},
    }


def report(work: Work, report_id: int) -> dict[str, Any]:
    with work.transaction() as conn:
        row = conn.execute(sa.select(miasalud_odoo_reports).where(miasalud_odoo_reports.c.id == report_id)).first()
    if row is None:
        raise ApiError(404, "not_found", "El informe no existe.")
    return {**_summary(row), "differences": json.loads(row.differences or "[]")}


def reports(work: Work, *, limit: int = 30) -> dict[str, Any]:
    with work.transaction() as conn:
        rows = conn.execute(
            sa.select(miasalud_odoo_reports).order_by(miasalud_odoo_reports.c.id.desc()).limit(limit)
        ).all()
    return {"items": [_summary(row) for row in rows]}


def _summary(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "trigger": row.trigger,
        "status": row.status,
        "heal": row.heal,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "counts": json.loads(row.counts or "{}"),
        "healed": row.healed,
        "error": row.error,
    }
