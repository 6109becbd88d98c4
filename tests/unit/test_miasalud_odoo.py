"""What a MiaSalud record is in Odoo: partner and lead values, the stage and the salesperson decided on purpose."""

from __future__ import annotations

import pytest

from sync_core.miasalud.odoo import (
    DEFAULT_STAGES,
    Assignment,
    Lead,
    lead_domain,
    lead_values,
    partner_domain,
    partner_search_domain,
    partner_values,
    pushed,
    staff_partner_values,
    stage_name,
)

ANA = Lead("MC99999", "Ana", "García", "+525512345678", True)
CAMPAIGN = Assignment(85, 1, "Campaña Invierno 2025", "Asignado a campaña", "Quiere una cita.", salesperson=None)


@pytest.mark.parametrize(
    ("mode", "contact", "campaign_contact"),
    [("both", True, True), ("contacts", True, False), ("leads", False, True)],
)
def test_odoo_sync_decides_what_is_sent(mode: str, contact: bool, campaign_contact: bool) -> None:
    assert (pushed(mode, "contact"), pushed(mode, "campaign_contact")) == (contact, campaign_contact)  # type: ignore[arg-type]


def test_a_partner_never_carries_mobile_and_only_a_valid_phone() -> None:
    assert partner_values(ANA) == {"name": "Ana García", "phone": "+525512345678", "x_manychat_id": "MC99999"}
    flagged = Lead("MC1", "Ana", None, "+521234567891", False)
    assert partner_values(flagged)["phone"] is False
    assert "mobile" not in partner_values(flagged)


def test_a_lead_without_a_name_is_named_by_its_manychat_id() -> None:
    assert partner_values(Lead("MC7", None, None, None, None))["name"] == "ManyChat MC7"


def test_a_lead_always_sets_type_and_decides_its_salesperson() -> None:
    values = lead_values(ANA, CAMPAIGN, lead_type="opportunity", stage_id=None, partner_id=None)
    assert values["type"] == "opportunity"
    assert values["user_id"] is False  # no mapped advisor: nobody, never the API user by default
    assert "stage_id" not in values and "partner_id" not in values
    assert (values["x_manychat_id"], values["x_campaign_id"]) == ("MC99999", 85)
    staff_made = Assignment(None, 4, "Sin número", None, None, salesperson=None)
    assert lead_values(ANA, staff_made, lead_type="lead", stage_id=None, partner_id=None)["x_campaign_id"] == -4
    assert values["name"] == "Ana García — Campaña Invierno 2025"
    mapped = Assignment(85, 1, None, None, None, salesperson=7)
    with_user = lead_values(ANA, mapped, lead_type="lead", stage_id=3, partner_id=11)
    assert (with_user["user_id"], with_user["stage_id"], with_user["partner_id"], with_user["type"]) == (
        7,
        3,
        11,
        "lead",
    )
    assert with_user["name"] == "Ana García — Campaña 85"


def test_stage_mapping_ignores_case_accents_and_spacing_and_unknown_states_map_to_none() -> None:
    assert stage_name("  asignado a CAMPANA ", DEFAULT_STAGES) == "Calificado"
    assert stage_name("Algo nuevo", DEFAULT_STAGES) is None
    assert stage_name(None, DEFAULT_STAGES) is None


def test_records_are_found_by_their_manychat_ids_archived_ones_too() -> None:
    archived_too = ("active", "in", [True, False])
    assert partner_domain("MC1") == [("x_manychat_id", "=", "MC1"), archived_too]
    assert lead_domain("MC1", 85) == [("x_manychat_id", "=", "MC1"), ("x_campaign_id", "=", 85), archived_too]


def test_staff_partner_values_are_clean_and_invalid_ones_are_refused_not_written() -> None:
    values, problems = staff_partner_values(
        "  Ana  ", "+5215512345678", " Ana@Ejemplo.COM ", " MC1 ", phone_region="MX"
    )
    assert problems == []
    assert values == {"name": "Ana", "phone": "+525512345678", "email": "Ana@ejemplo.com", "x_manychat_id": "MC1"}
    blank, _ = staff_partner_values("Ana", "", "  ", None, phone_region="MX")
    assert (blank["phone"], blank["email"], blank["x_manychat_id"]) == (False, False, False)  # emptied in Odoo
    _, refused = staff_partner_values("Ana", "123", "ana@", "MC1", phone_region="MX")
    assert [(p.field, p.code) for p in refused] == [("phone", "invalid_phone"), ("email", "invalid_email")]


def test_a_staff_search_lists_active_partners_unless_archived_ones_are_asked_for() -> None:
    assert partner_search_domain(None, None, include_archived=False) == [("active", "=", True)]
    assert partner_search_domain("55", "MC1", include_archived=True) == [
        ("active", "in", [True, False]),
        ("x_manychat_id", "=", "MC1"),
        "|", "|", ("name", "ilike", "55"), ("phone", "ilike", "55"), ("x_manychat_id", "=", "55"),
    ]  # fmt: skip
