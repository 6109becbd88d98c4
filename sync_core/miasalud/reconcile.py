"""SQL ⇄ Odoo, compared: which partners and leads are missing, doubled or different in Odoo, field by field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Problem = Literal["missing_in_odoo", "diverged", "duplicated_in_odoo", "unknown_in_odoo"]


@dataclass(frozen=True)
class Difference:
    """One record that is not as SQL says: `fields` holds, per field that differs, (SQL value, Odoo value)."""

    model: str
    key: str  # x_manychat_id, or x_manychat_id/x_campaign_id for a lead
    problem: Problem
    sql_id: int | None = None
    odoo_ids: tuple[int, ...] = ()
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def odoo_value(value: Any) -> Any:
    """Odoo's way of saying a value, as SQL would: `False` for empty, `[id, "name"]` for a many2one."""
    if value is False:
        return None
    if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], int):
        return value[0]
    return value


def compare(
    model: str,
    expected: Mapping[str, tuple[int, Mapping[str, Any]]],
    found: Iterable[tuple[str, Mapping[str, Any]]],
) -> list[Difference]:
    """`expected`: per key, the SQL row's id and the values its push sends; `found`: Odoo's records with their key.
    Every expected record must be in Odoo once with those values; a record whose key SQL does not know is
    reported too (made by hand, or by a push SQL lost track of)."""
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for key, record in found:
        by_key.setdefault(key, []).append(record)
    differences = []
    for key, (sql_id, values) in sorted(expected.items()):
        records = sorted(by_key.pop(key, []), key=lambda r: int(r["id"]))
        if not records:
            differences.append(Difference(model, key, "missing_in_odoo", sql_id=sql_id))
            continue
        ids = tuple(int(r["id"]) for r in records)
        if len(records) > 1:
            differences.append(Difference(model, key, "duplicated_in_odoo", sql_id=sql_id, odoo_ids=ids))
        diverged = {
            name: (odoo_value(want), odoo_value(records[0].get(name)))
            for name, want in values.items()
            if odoo_value(want) != odoo_value(records[0].get(name))
        }
        if diverged:
            differences.append(Difference(model, key, "diverged", sql_id=sql_id, odoo_ids=ids[:1], fields=diverged))
    for key, records in sorted(by_key.items()):
        ids = tuple(sorted(int(r["id"]) for r in records))
        differences.append(Difference(model, key, "unknown_in_odoo", odoo_ids=ids))
    return differences
