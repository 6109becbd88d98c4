"""ir.model.fields: the demo database has the x_ fields; an admin may create more (state manual), others may not."""

from __future__ import annotations

from tools.odoo_sandbox import DEMO_ADMIN_KEY, DEMO_STAGES, SandboxServer

from .conftest import Odoo


def model_id(odoo: Odoo, model: str) -> int:
    (found,) = odoo.json2("ir.model", "search_read", domain=[["model", "=", model]], fields=["id"]).json()
    return int(found["id"])


def test_the_demo_database_has_the_x_fields_and_the_stages(odoo: Odoo) -> None:
    fields = odoo.json2(
        "ir.model.fields", "search_read", domain=[["state", "=", "manual"]], fields=["model", "name", "ttype"]
    ).json()
    assert {(f["model"], f["name"], f["ttype"]) for f in fields} == {
        ("res.partner", "x_manychat_id", "char"),
        ("crm.lead", "x_manychat_id", "char"),
        ("crm.lead", "x_campaign_id", "integer"),
    }
    stages = odoo.json2("crm.stage", "search_read", domain=[], fields=["name"]).json()
    assert tuple(s["name"] for s in stages) == DEMO_STAGES


def test_an_admin_creates_a_custom_field_that_records_then_accept(odoo: Odoo) -> None:
    values = {
        "name": "x_canal",
        "field_description": "Canal",
        "model_id": model_id(odoo, "res.partner"),
        "ttype": "char",
        "state": "manual",
    }
    created = odoo.json2("ir.model.fields", "create", key=DEMO_ADMIN_KEY, vals_list=[values])
    assert created.status_code == 200
    assert odoo.json2("res.partner", "fields_get", allfields=["x_canal"], attributes=["type"]).json() == {
        "x_canal": {"type": "char"}
    }
    assert odoo.json2("res.partner", "create", vals_list=[{"name": "Ana", "x_canal": "Facebook"}]).status_code == 200


def test_the_api_user_may_not_create_fields(odoo: Odoo, sandbox: SandboxServer) -> None:
    values = {
        "name": "x_canal",
        "field_description": "Canal",
        "model_id": model_id(odoo, "res.partner"),
        "ttype": "char",
    }
    response = odoo.json2("ir.model.fields", "create", vals_list=[values])
    assert response.status_code == 403
    body = response.json()
    assert body["name"] == "odoo.exceptions.AccessError"
    assert body["message"].startswith("You are not allowed to create 'Fields' (ir.model.fields) records.")
    assert "x_canal" not in [f["name"] for f in sandbox.admin.records("ir.model.fields")]


def test_a_custom_field_must_start_with_x_and_be_new(odoo: Odoo) -> None:
    partner_model = model_id(odoo, "res.partner")
    for name in ("canal", "x_manychat_id"):
        values = {
            "name": name,
            "field_description": "Canal",
            "model_id": partner_model,
            "ttype": "char",
            "state": "manual",
        }
        response = odoo.json2("ir.model.fields", "create", key=DEMO_ADMIN_KEY, vals_list=[values])
        assert response.status_code == 422
        assert response.json()["name"] == "odoo.exceptions.ValidationError"


def test_removing_a_custom_field_removes_it_from_its_model(odoo: Odoo) -> None:
    (field,) = odoo.json2(
        "ir.model.fields",
        "search_read",
        domain=[["model", "=", "crm.lead"], ["name", "=", "x_campaign_id"]],
        fields=["id"],
    ).json()
    assert odoo.json2("ir.model.fields", "unlink", key=DEMO_ADMIN_KEY, ids=[field["id"]]).json() is True
    assert "x_campaign_id" not in odoo.json2("crm.lead", "fields_get", attributes=["type"]).json()
