"""MiaSalud into Odoo end to end: the seed's ManyChat bodies over HTTP to the local Functions host, through its
queues, into SQL and on to the Odoo sandbox — over JSON-RPC and JSON-2, in each ODOO_SYNC mode."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts
from tests.fixtures.stack import MANYCHAT_KEY, Stack
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT
from tools.odoo_sandbox import DEMO_API_LOGIN, SandboxServer

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

PARTNER, LEAD = "res.partner", "crm.lead"
COMBOS = [(protocol, sync) for protocol in ("jsonrpc", "json2") for sync in ("leads", "contacts", "both")]


def _id(value: Any) -> int | None:
    """A stored many2one (an id, or [id, name]) as its id; unset as None."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value or None


def records(odoo: SandboxServer, model: str) -> list[dict[str, Any]]:
    return [r for r in odoo.admin.records(model) if r.get("x_manychat_id")]


def created(odoo: SandboxServer) -> list[tuple[str, dict[str, Any]]]:
    """(model, values) of every create Odoo applied, whichever protocol carried it."""
    made = []
    for call in odoo.admin.calls():
        if call["method"] != "create" or not call["applied"]:
            continue
        raw = call["args"][0] if call["args"] else call["kwargs"].get("vals_list") or call["kwargs"].get("values")
        made += [(call["model"], values) for values in ([raw] if isinstance(raw, dict) else raw)]
    return made


def statuses(stack: Stack, table: sa.Table) -> list[str]:
    with stack.db.transaction() as conn:
        return list(conn.execute(sa.select(table.c.odoo_sync_status).order_by(table.c.id)).scalars())


@pytest.mark.parametrize(
    "stack",
    [{"odoo": {"protocol": protocol, "sync": sync}} for protocol, sync in COMBOS],
    ids=[f"{protocol}-{sync}" for protocol, sync in COMBOS],
    indirect=True,
)
def test_the_seed_bodies_end_as_the_partner_and_lead_their_mode_asks_for(stack: Stack) -> None:
    odoo = stack.odoo
    assert odoo is not None
    protocol, sync = stack.env["ODOO_PROTOCOL"], stack.env["ODOO_SYNC"]
    partners_wanted, leads_wanted = int(sync != "leads"), int(sync != "contacts")
    salesperson = next(u["id"] for u in odoo.admin.records("res.users") if u["login"] not in (DEMO_API_LOGIN, "admin"))
    mapped = protocol == "json2"  # over JSON-2 the seed's doctor is mapped to an Odoo user; over JSON-RPC nobody is
    # Odoo already holds a partner for this ManyChat id (made by hand): it is adopted, never created again.
    held = odoo.admin.create(PARTNER, {"name": "Ana (a mano)", "x_manychat_id": "MCE2EHELD"}) if sync != "leads" else []
    with httpx.Client(base_url=f"{stack.host.base_url}/api", headers={"X-API-KEY": MANYCHAT_KEY}, timeout=30) as client:
        if mapped:
            doctor = {"name": "Dra. Laura", "external_id": SEED_CAMPAIGN["medico_id"], "odoo_user_id": salesperson}
            assert client.post("/v1/advisors/", json=doctor).status_code == 201
        bodies = [
            ("/v1/manychat/webhook/contact", SEED_CONTACT),
            ("/v1/manychat/webhook/campaign-assignment/", SEED_CAMPAIGN),
            ("/v1/manychat/webhook/contact", {**SEED_CONTACT, "manychat_id": "MCE2EHELD", "nombre_lead": "Berta"}),
        ]
        for route, body in bodies:
            assert client.post(route, json=body).status_code == 202

    def pushed() -> bool:
        contacts = statuses(stack, miasalud_contacts)
        links = statuses(stack, miasalud_campaign_contacts)
        return (
            len(records(odoo, PARTNER)) == 2 * partners_wanted
            and len(records(odoo, LEAD)) == leads_wanted
            and (sync == "leads" or contacts == ["success", "success"])
            and (sync == "contacts" or links == ["success"])
        )

    stack.wait_until(pushed, timeout=45, what=f"the seed pushed to Odoo ({protocol}, ODOO_SYNC={sync})")

    partners = {p["x_manychat_id"]: p for p in records(odoo, PARTNER)}
    if partners_wanted:
        assert (partners["MC99999"]["name"], partners["MCE2EHELD"]["name"]) == ("Ana García", "Berta García")
        assert [partners["MCE2EHELD"]["id"]] == held
    [lead] = records(odoo, LEAD) or [None]
    if leads_wanted:
        assert lead is not None
        assert (lead["x_manychat_id"], lead["x_campaign_id"], lead["contact_name"]) == ("MC99999", 85, "Ana García")
        assert lead["type"] == "opportunity"
        assert _id(lead["partner_id"]) == (partners["MC99999"]["id"] if partners_wanted else None)
        assert _id(lead["user_id"]) == (salesperson if mapped else None)  # not the API user by default

    made = created(odoo)
    keys = [(model, values.get("x_manychat_id"), values.get("x_campaign_id")) for model, values in made]
    assert sorted(keys, key=str) == sorted(
        [(PARTNER, "MC99999", None)] * partners_wanted + [(LEAD, "MC99999", 85)] * leads_wanted, key=str
    )  # one create each; none of the partner Odoo already held
    for model, values in made:
        if model == LEAD:
            assert values["type"] == "opportunity"
            assert "user_id" in values and values["user_id"] == (salesperson if mapped else False)
