"""Staff manage Odoo's partners through `/api/v1/odoo/contacts`, over real HTTP to the Odoo sandbox on both
protocols: what they write is what Odoo holds, one partner per x_manychat_id, an archive instead of a delete, and
every Odoo failure a clear status, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from blueprints import miasalud_odoo as api
from shared.api.routing import OPERATIONS
from shared.services.miasalud import odoo_reconcile
from shared.store.miasalud_schema import miasalud_contacts
from shared.work import Work
from tests.integration.miasalud.conftest import SEED_CONTACT, Leads
from tools.odoo_sandbox import DEMO_API_LOGIN, SandboxServer

ANA = {"name": "Ana García", "phone": "55 1234 5678", "email": "Ana@Ejemplo.com", "x_manychat_id": "MC1"}


def _error(answer: Any) -> tuple[int, str]:
    return answer.status, answer.body["error"]["code"]


def _partner(odoo: SandboxServer, partner_id: int) -> dict[str, Any]:
    return next(r for r in odoo.admin.records("res.partner") if r["id"] == partner_id)


def _creates(odoo: SandboxServer) -> list[dict[str, Any]]:
    return [c for c in odoo.admin.calls() if c.get("model") == "res.partner" and c.get("method") == "create"]


def test_a_partner_is_created_read_replaced_listed_and_archived(odoo: SandboxServer, leads: Leads) -> None:
    created = leads.staff(api.odoo_contacts_create, "POST", body=ANA)
    assert created.status == 201, created.body
    partner_id = created.body["id"]
    assert created.body == {
        "id": partner_id,
        "name": "Ana García",
        "phone": "+525512345678",  # national, read in DEFAULT_PHONE_REGION (MX), stored as E.164
        "email": "Ana@ejemplo.com",
        "x_manychat_id": "MC1",
        "active": True,
    }
    assert _partner(odoo, partner_id)["phone"] == "+525512345678"
    assert leads.staff(api.odoo_contacts_get, id=partner_id).body == created.body

    replaced = leads.staff(
        api.odoo_contacts_update, "PUT", id=partner_id, body={"name": "Ana María", "x_manychat_id": "MC1"}
    )
    assert replaced.status == 200, replaced.body
    assert (replaced.body["name"], replaced.body["phone"], replaced.body["email"]) == ("Ana María", None, None)
    assert _partner(odoo, partner_id)["name"] == "Ana María"

    found = leads.staff(api.odoo_contacts_list, params={"q": "ana mar"})
    assert (found.body["count"], [p["id"] for p in found.body["results"]]) == (1, [partner_id])
    assert leads.staff(api.odoo_contacts_list, params={"x_manychat_id": "MC1"}).body["count"] == 1

    assert leads.staff(api.odoo_contacts_archive, "DELETE", id=partner_id).status == 204
    assert _partner(odoo, partner_id)["active"] is False  # archived in Odoo, not unlinked
    assert leads.staff(api.odoo_contacts_list, params={"q": "MC1"}).body["count"] == 0
    archived = leads.staff(api.odoo_contacts_list, params={"q": "MC1", "include_archived": "true"}).body
    assert [(p["id"], p["active"]) for p in archived["results"]] == [(partner_id, False)]
    assert leads.staff(api.odoo_contacts_get, id=partner_id).body["active"] is False
    assert leads.staff(api.odoo_contacts_archive, "DELETE", id=partner_id).status == 204  # again: no change


def test_a_partner_staff_archived_stays_the_one_partner_of_its_contact(odoo: SandboxServer, leads: Leads) -> None:
    """Odoo's searches skip archived records: the push still finds the archived partner and never makes a second."""
    created = leads.staff(api.odoo_contacts_create, "POST", body={**ANA, "x_manychat_id": "MC99999"}).body
    assert leads.staff(api.odoo_contacts_archive, "DELETE", id=created["id"]).status == 204
    leads.post_contact(SEED_CONTACT)  # ManyChat's MC99999, whose partner staff made and archived
    while leads.drain():
        pass
    assert len(_creates(odoo)) == 1
    partner = _partner(odoo, created["id"])
    assert (partner["name"], partner["active"]) == ("Ana García", False)
    [contact] = leads.rows(miasalud_contacts)
    assert (contact.odoo_sync_status, contact.odoo_partner_id) == ("success", created["id"])
    report = odoo_reconcile.run(Work.current(), trigger="api", heal=False)
    assert report["differences"] == []  # the archived partner is there, not missing


def test_the_list_is_paged_newest_first_within_bounds(odoo: SandboxServer, leads: Leads) -> None:
    ids = odoo.admin.create("res.partner", *({"name": f"Paciente {n}", "x_manychat_id": f"P{n}"} for n in range(5)))
    page = leads.staff(api.odoo_contacts_list, params={"q": "Paciente", "limit": "2", "offset": "1"}).body
    assert (page["count"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [p["id"] for p in page["results"]] == sorted(ids, reverse=True)[1:3]
    beyond = leads.staff(api.odoo_contacts_list, params={"q": "Paciente", "offset": "5"}).body
    assert (beyond["count"], beyond["results"]) == (5, [])
    for params in ({"limit": "0"}, {"limit": "101"}, {"offset": "-1"}, {"offset": "10001"}, {"colour": "x"}):
        assert _error(leads.staff(api.odoo_contacts_list, params=params)) == (400, "invalid_query")


def test_a_second_partner_for_a_manychat_id_is_refused(odoo: SandboxServer, leads: Leads) -> None:
    [archived] = odoo.admin.create("res.partner", {"name": "Ana (vieja)", "x_manychat_id": "MC1", "active": False})
    refused = leads.staff(api.odoo_contacts_create, "POST", body=ANA)
    assert _error(refused) == (409, "odoo_manychat_id_taken")
    assert refused.body["error"]["details"] == [{"field": "x_manychat_id", "odoo_ids": [archived]}]
    assert _creates(odoo) == []

    other = leads.staff(api.odoo_contacts_create, "POST", body={**ANA, "x_manychat_id": "MC2"}).body
    moved = leads.staff(api.odoo_contacts_update, "PUT", id=other["id"], body={**ANA, "x_manychat_id": "MC1"})
    assert _error(moved) == (409, "odoo_manychat_id_taken")
    assert _partner(odoo, other["id"])["x_manychat_id"] == "MC2"
    kept = leads.staff(api.odoo_contacts_update, "PUT", id=other["id"], body={**ANA, "x_manychat_id": "MC2"})
    assert kept.status == 200  # its own id is not a conflict


def test_an_invalid_phone_or_email_is_refused_and_nothing_is_written(odoo: SandboxServer, leads: Leads) -> None:
    answer = leads.staff(api.odoo_contacts_create, "POST", body={**ANA, "phone": "123", "email": "ana@"})
    assert _error(answer) == (422, "unprocessable")
    assert [d["field"] for d in answer.body["error"]["details"]] == ["phone", "email"]
    for body in ({**ANA, "name": None}, {"phone": "+525512345678"}, {**ANA, "mobile": "+525512345678"}):
        assert _error(leads.staff(api.odoo_contacts_create, "POST", body=body)) == (400, "validation_error")
    assert _creates(odoo) == []


def test_an_id_odoo_does_not_have_answers_404(odoo: SandboxServer, leads: Leads) -> None:
    assert _error(leads.staff(api.odoo_contacts_get, id=987654)) == (404, "odoo_record_not_found")
    assert _error(leads.staff(api.odoo_contacts_update, "PUT", id=987654, body=ANA)) == (404, "odoo_record_not_found")
    assert _error(leads.staff(api.odoo_contacts_archive, "DELETE", id=987654)) == (404, "odoo_record_not_found")


def test_odoo_refusing_the_credentials_or_the_rights_answers_502(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("access_error", models=["res.partner"], methods=["search_count"], count=1)
    assert _error(leads.staff(api.odoo_contacts_list)) == (502, "odoo_access_denied")
    odoo.admin.expire_keys(DEMO_API_LOGIN)
    refused = leads.staff(api.odoo_contacts_list)
    assert _error(refused) == (502, "odoo_auth_failed")
    assert "ODOO_API_KEY" in refused.body["error"]["message"]


def test_data_odoo_refuses_answers_422(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("validation_error", models=["res.partner"], methods=["create"], count=1)
    assert _error(leads.staff(api.odoo_contacts_create, "POST", body=ANA)) == (422, "odoo_rejected")


def test_odoo_down_answers_503_with_retry_after(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.start_outage(30)
    try:
        answer = leads.staff(api.odoo_contacts_list)
    finally:
        odoo.admin.end_outage()
    assert _error(answer) == (503, "odoo_unavailable") and answer.headers["Retry-After"] == "5"


def test_a_create_whose_answer_was_lost_is_not_repeated_and_answers_504(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("applied_then_dropped", models=["res.partner"], methods=["create"], count=1)
    answer = leads.staff(api.odoo_contacts_create, "POST", body=ANA)
    assert _error(answer) == (504, "odoo_outcome_unknown")
    assert len(_creates(odoo)) == 1  # sent once, never blindly again
    again = leads.staff(api.odoo_contacts_create, "POST", body=ANA)  # the caller retries: the first one is found
    assert _error(again) == (409, "odoo_manychat_id_taken")
    assert len([r for r in odoo.admin.records("res.partner") if r.get("x_manychat_id") == "MC1"]) == 1


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("odoo_contacts_list", "GET"),
        ("odoo_contacts_get", "GET"),
        ("odoo_contacts_create", "POST"),
        ("odoo_contacts_update", "PUT"),
        ("odoo_contacts_archive", "DELETE"),
        ("odoo_reconcile_run", "POST"),
    ],
)
def test_without_odoo_configured_the_routes_say_so(leads: Leads, name: str, method: str) -> None:
    answer = leads.staff(getattr(api, name), method, body=ANA, id=1)
    assert _error(answer) == (409, "odoo_not_configured")


@pytest.mark.parametrize("name", [op.name for op in OPERATIONS if op.name.startswith("odoo_contacts_")])
def test_every_partner_route_takes_the_staff_key(odoo: SandboxServer, leads: Leads, name: str) -> None:
    [operation] = [op for op in OPERATIONS if op.name == name]
    assert operation.api_key
    for headers in ({}, {"X-API-KEY": "not-the-key-at-all"}):
        answer = leads.staff(getattr(api, name), operation.methods[0], body=ANA, id=1, headers=headers)
        assert _error(answer) == (401, "invalid_api_key")
    assert odoo.admin.calls() == []  # refused before Odoo is called
