"""SQL ⇄ Odoo comparison: missing, doubled, diverged field by field (both values), and unknown records."""

from __future__ import annotations

from sync_core.miasalud.reconcile import Difference, compare, odoo_value


def test_equal_sides_have_no_difference() -> None:
    expected = {"MC1": (1, {"name": "Ana", "phone": False, "user_id": False})}
    found = [("MC1", {"id": 10, "name": "Ana", "phone": False, "user_id": False})]
    assert compare("res.partner", expected, found) == []


def test_missing_doubled_diverged_and_unknown_are_each_reported() -> None:
    expected = {
        "MC1": (1, {"name": "Ana", "stage_id": 3}),
        "MC2": (2, {"name": "Luis"}),
        "MC3": (3, {"name": "Eva"}),
    }
    found = [
        ("MC1", {"id": 11, "name": "Ana G.", "stage_id": [3, "Calificado"]}),
        ("MC3", {"id": 31, "name": "Eva"}),
        ("MC3", {"id": 30, "name": "Eva"}),
        ("MC9", {"id": 90, "name": "Hecho a mano"}),
    ]
    assert compare("crm.lead", expected, found) == [
        Difference("crm.lead", "MC1", "diverged", sql_id=1, odoo_ids=(11,), fields={"name": ("Ana", "Ana G.")}),
        Difference("crm.lead", "MC2", "missing_in_odoo", sql_id=2),
        Difference("crm.lead", "MC3", "duplicated_in_odoo", sql_id=3, odoo_ids=(30, 31)),
        Difference("crm.lead", "MC9", "unknown_in_odoo", odoo_ids=(90,)),
    ]


def test_odoo_values_read_as_sql_would() -> None:
    assert [odoo_value(v) for v in (False, [4, "Nuevo"], "x", 0)] == [None, 4, "x", 0]
