"""MiaSalud → Odoo over real HTTP to the Odoo sandbox, on both protocols: one partner per contact, one lead per
campaign contact, found before any create, never doubled, `type` always set and `user_id` always decided."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blueprints import miasalud_api as api
from shared import runtime
from shared.queues import MANYCHAT_CONTACT, ODOO_PUSH
from shared.services.miasalud import odoo_admin, odoo_push, odoo_reconcile
from shared.services.miasalud import records as record_workers
from shared.store.miasalud_schema import (
    miasalud_advisors,
    miasalud_campaign_contacts,
    miasalud_contacts,
)
from shared.work import Work
from sync_core.miasalud.odoo import DEFAULT_STAGES
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads
from tools.odoo_sandbox import DEMO_API_KEY, DEMO_API_LOGIN, SandboxServer


def mode(monkeypatch: pytest.MonkeyPatch, sync: str) -> None:
    monkeypatch.setenv("ODOO_SYNC", sync)
    runtime.reset()


def records(odoo: SandboxServer, model: str) -> list[dict[str, Any]]:
    return [r for r in odoo.admin.records(model) if r.get("x_manychat_id")]


def creates(odoo: SandboxServer, model: str) -> list[dict[str, Any]]:
    return [c for c in odoo.admin.calls() if c.get("model") == model and c.get("method") == "create"]


def test_the_seed_events_end_as_one_partner_and_one_lead_linked_to_it(odoo: SandboxServer, leads: Leads) -> None:
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    [partner] = records(odoo, "res.partner")
    [lead] = records(odoo, "crm.lead")
    assert (partner["name"], partner["x_manychat_id"]) == ("Ana García", "MC99999")
    assert not partner.get("phone")  # +52 123…: not a valid number, kept in SQL only
    assert "mobile" not in partner
    assert lead["type"] == "opportunity" and lead["x_campaign_id"] == 85
    assert _id(lead["partner_id"]) == partner["id"]
    assert _id(lead["user_id"]) is None  # no advisor mapped to an Odoo user: nobody, not the API user
    assert lead["description"].startswith("El cliente preguntó")
    [contact] = leads.rows(miasalud_contacts)
    [link] = leads.rows(miasalud_campaign_contacts)
    assert (contact.odoo_sync_status, contact.odoo_partner_id) == ("success", partner["id"])
    assert (link.odoo_sync_status, link.odoo_lead_id) == ("success", lead["id"])


def test_later_events_write_the_same_records_and_a_replay_creates_nothing(odoo: SandboxServer, leads: Leads) -> None:
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    leads.post_contact({**SEED_CONTACT, "nombre_lead": "Ana María", "datetime_actual": "2025-06-11T10:00:00Z"})
    leads.post_campaign({**SEED_CAMPAIGN, "ultimo_estado": "Cita agendada", "datetime_actual": "2025-06-11T10:00:00Z"})
    while leads.drain():
        pass
    [contact] = leads.rows(miasalud_contacts)
    odoo_push.enqueue(Work.current(), "contact", contact.id)  # a replayed push: Odoo holds this version already
    leads.drain()
    [partner] = records(odoo, "res.partner")
    [lead] = records(odoo, "crm.lead")
    assert partner["name"] == "Ana María García"
    assert _id(lead["stage_id"]) == _stage(odoo, "Propuesta")
    assert len(creates(odoo, "res.partner")) == 1 and len(creates(odoo, "crm.lead")) == 1


def test_a_create_whose_answer_was_lost_is_found_not_made_twice(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("applied_then_dropped", models=["res.partner"], methods=["create"], count=1)
    leads.post_contact(SEED_CONTACT)
    leads.drain()  # the create lands in Odoo, its answer is lost: the kernel retries the push after a short delay
    [contact] = leads.rows(miasalud_contacts)
    odoo_push.enqueue(Work.current(), "contact", contact.id)  # that retry, without waiting for its delay
    leads.drain()
    assert len(records(odoo, "res.partner")) == 1
    assert len(creates(odoo, "res.partner")) == 1  # the retry looked it up by x_manychat_id and wrote it
    assert leads.rows(miasalud_contacts)[0].odoo_sync_status == "success"


def test_a_partner_made_elsewhere_with_the_same_manychat_id_is_adopted(odoo: SandboxServer, leads: Leads) -> None:
    [existing] = odoo.admin.create("res.partner", {"name": "Ana (a mano)", "x_manychat_id": "MC99999"})
    leads.post_contact(SEED_CONTACT)
    leads.drain()
    [partner] = records(odoo, "res.partner")
    assert (partner["id"], partner["name"]) == (existing, "Ana García")
    assert creates(odoo, "res.partner") == []


def test_a_mapped_advisor_becomes_the_salesperson(odoo: SandboxServer, leads: Leads) -> None:
    users = [u for u in odoo.admin.records("res.users") if u["login"] not in (DEMO_API_LOGIN, "admin")]
    salesperson = users[0]["id"]
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    leads.drain()  # the campaign event created advisor 101; map it before the lead's push runs
    with leads.app.db.transaction() as conn:
        conn.execute(
            miasalud_advisors.update().where(miasalud_advisors.c.external_id == "101").values(odoo_user_id=salesperson)
        )
    [link] = leads.rows(miasalud_campaign_contacts)
    odoo_admin.retry(Work.current(), "campaign-contacts", link.id)
    while leads.drain():
        pass
    [lead] = records(odoo, "crm.lead")
    assert _id(lead["user_id"]) == salesperson


def test_staff_setting_an_advisors_odoo_user_makes_it_the_salesperson_of_its_leads(
    odoo: SandboxServer, leads: Leads
) -> None:
    """PUT /advisors/{id} with `odoo_user_id` sends that advisor's leads back to Odoo with the new salesperson;
    null clears it again (nobody, not the API user)."""
    salesperson = next(u["id"] for u in odoo.admin.records("res.users") if u["login"] not in (DEMO_API_LOGIN, "admin"))
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    [advisor] = leads.staff(api.advisors_list, params={"q": "101"}).body["results"]
    body = {"name": "Dra. Laura", "external_id": advisor["external_id"]}  # created by the event, without a name
    for user in (salesperson, None):
        answer = leads.staff(api.advisors_update, "PUT", body={**body, "odoo_user_id": user}, id=advisor["id"])
        assert answer.status == 200, answer.body
        assert answer.body["odoo_user_id"] == user
        while leads.drain():
            pass
        [lead] = records(odoo, "crm.lead")
        assert _id(lead["user_id"]) == user
    assert len(creates(odoo, "crm.lead")) == 1
    assert [link.odoo_sync_status for link in leads.rows(miasalud_campaign_contacts)] == ["success"]


def test_an_advisors_odoo_user_must_be_a_positive_id(leads: Leads) -> None:
    for wrong in (0, -3, "7", 2**31):
        answer = leads.staff(api.advisors_create, "POST", body={"name": "Dra. Laura", "odoo_user_id": wrong})
        assert answer.status == 400, wrong
        assert answer.body["error"]["code"] == "validation_error"
        assert [d["field"] for d in answer.body["error"]["details"]] == ["odoo_user_id"]


@pytest.mark.parametrize("case", [("contacts", 1, 0), ("leads", 0, 1)], ids=["contacts", "leads"])
def test_odoo_sync_sends_only_what_its_mode_says(
    odoo: SandboxServer, leads: Leads, monkeypatch: pytest.MonkeyPatch, case: tuple[str, int, int]
) -> None:
    sync, partners, leads_made = case
    mode(monkeypatch, sync)
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    assert (len(records(odoo, "res.partner")), len(records(odoo, "crm.lead"))) == (partners, leads_made)
    if sync == "leads":
        [lead] = records(odoo, "crm.lead")
        assert lead["contact_name"] == "Ana García" and not lead.get("partner_id")


def test_refused_credentials_pause_the_pushes_until_the_key_works(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.expire_keys(DEMO_API_LOGIN)
    leads.post_contact(SEED_CONTACT)
    leads.drain()
    status = odoo_admin.sync_status(Work.current())
    assert status["paused"] and status["contacts"]["counts"] == {"pending": 1}
    assert odoo_push.sweep(Work.current()) == 0  # still refused: nothing queued
    odoo.admin.add_key(DEMO_API_LOGIN, DEMO_API_KEY)
    runtime.reset()
    a_minute_on = replace(Work.current(), clock=lambda: datetime.now(UTC) + timedelta(minutes=2))
    assert odoo_push.sweep(a_minute_on) == 1
    leads.drain()
    assert not odoo_admin.sync_status(Work.current())["paused"]
    assert len(records(odoo, "res.partner")) == 1


def test_a_refusal_for_good_is_an_error_with_its_reason_and_the_retry_route_brings_it_back(
    odoo: SandboxServer, leads: Leads
) -> None:
    odoo.admin.inject("validation_error", models=["res.partner"], methods=["create"], count=1)
    leads.post_contact(SEED_CONTACT)
    leads.drain()
    status = odoo_admin.sync_status(Work.current())
    [error] = status["contacts"]["errors"]
    assert error["reason"] and status["contacts"]["counts"] == {"error": 1}
    odoo_admin.retry(Work.current(), "contacts", error["id"])
    leads.drain()
    assert odoo_admin.sync_status(Work.current())["contacts"]["counts"] == {"success": 1}


def test_the_reconciliation_finds_what_differs_and_heals_it(odoo: SandboxServer, leads: Leads) -> None:
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    clean = odoo_reconcile.run(Work.current(), trigger="api", heal=False)
    assert clean["differences"] == [] and clean["counts"]["res.partner"]["checked"] == 1
    [partner] = records(odoo, "res.partner")
    Work.current().odoo.write("res.partner", [partner["id"]], {"name": "Cambiado en Odoo"})  # someone, in Odoo
    found = odoo_reconcile.run(Work.current(), trigger="api", heal=True)
    [difference] = found["differences"]
    assert difference["problem"] == "diverged"
    assert difference["fields"]["name"] == {"sql": "Ana García", "odoo": "Cambiado en Odoo"}
    leads.drain()
    assert odoo_reconcile.run(Work.current(), trigger="api", heal=False)["differences"] == []


def _id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0])
    return int(value) if value else None


def _stage(odoo: SandboxServer, name: str) -> int:
    return next(int(s["id"]) for s in odoo.admin.records("crm.stage") if s["name"] == name)


def test_the_push_of_a_row_deleted_since_is_set_aside_not_retried(odoo: SandboxServer, leads: Leads) -> None:
    result = odoo_push.process({"kind": "contact", "id": 987654}, Work.current())
    assert result.outcome.value == "skipped"
    assert odoo.admin.calls() == []


def test_a_contact_renamed_by_a_later_event_or_by_staff_renames_its_lead_too(odoo: SandboxServer, leads: Leads) -> None:
    """A lead copies its contact's name and phone: a change to the contact is pushed to the lead as well, at once
    (not left to the sweep), whether ManyChat or staff made it."""
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)
    while leads.drain():
        pass
    leads.post_contact({**SEED_CONTACT, "nombre_lead": "Ana María", "datetime_actual": "2025-06-11T10:00:00Z"})
    while leads.drain():
        pass
    [lead] = records(odoo, "crm.lead")
    assert lead["contact_name"] == "Ana María García"

    [contact] = leads.rows(miasalud_contacts)
    current = leads.staff(api.contacts_get, id=contact.id).body
    body = {key: current[key] for key in ("manychat_id", "first_name", "last_name", "phone", "channel_id")}
    assert (
        leads.staff(api.contacts_update, "PUT", body={**body, "last_name": "García Soto"}, id=contact.id).status == 200
    )
    while leads.drain():
        pass
    [lead] = records(odoo, "crm.lead")
    [partner] = records(odoo, "res.partner")
    assert (partner["name"], lead["contact_name"]) == ("Ana María García Soto", "Ana María García Soto")
    assert len(creates(odoo, "crm.lead")) == 1
    assert [link.odoo_sync_status for link in leads.rows(miasalud_campaign_contacts)] == ["success"]


def test_a_change_made_while_another_worker_pushes_the_row_is_pushed_by_that_worker_after_its_own(
    odoo: SandboxServer, leads: Leads
) -> None:
    """The change's own push finds the row leased and ends at once (no message left waiting for the lease); the
    worker holding it sees, once Odoo answered, that the row moved on and queues the push of the new version."""
    leads.post_contact(SEED_CONTACT)
    _apply_events(leads)
    [message] = leads.queued(ODOO_PUSH)
    odoo.admin.inject("slow", models=["res.partner"], methods=["create"], delay_ms=1500, count=1)
    first = threading.Thread(target=odoo_push.process, args=(message,))
    first.start()  # its create waits 1.5 s in Odoo while the row is leased
    time.sleep(0.5)
    leads.post_contact({**SEED_CONTACT, "nombre_lead": "Ana María", "datetime_actual": "2025-06-11T10:00:00Z"})
    _apply_events(leads)
    [second] = leads.queued(ODOO_PUSH)
    assert odoo_push.process(second).outcome.value == "skipped"  # leased: left to the first worker
    first.join()
    assert [c.odoo_sync_status for c in leads.rows(miasalud_contacts)] == ["pending"]  # Odoo holds the old name
    assert leads.drain() == 1  # the first worker's hand-over
    [partner] = records(odoo, "res.partner")
    assert partner["name"] == "Ana María García"
    assert [c.odoo_sync_status for c in leads.rows(miasalud_contacts)] == ["success"]
    assert len(creates(odoo, "res.partner")) == 1


def _apply_events(leads: Leads) -> None:
    """Apply the ManyChat events queued (SQL), leaving their Odoo pushes queued."""
    for message in leads.queued(MANYCHAT_CONTACT):
        record_workers.process_contact(message)


def test_a_new_stage_mapping_moves_the_leads_already_in_odoo(odoo: SandboxServer, leads: Leads) -> None:
    """Staff map the seed's `ultimo_estado` to another stage: its lead, already in Odoo, is pushed to that stage;
    a lead whose state the change does not touch is not pushed again."""
    leads.post_contact(SEED_CONTACT)
    leads.post_campaign(SEED_CAMPAIGN)  # "Asignado a campaña" → Calificado
    while leads.drain():
        pass
    [lead] = records(odoo, "crm.lead")
    assert _id(lead["stage_id"]) == _stage(odoo, "Calificado")
    writes_before = len([c for c in odoo.admin.calls() if c.get("model") == "crm.lead" and c.get("method") == "write"])
    unchanged = {**DEFAULT_STAGES}
    odoo_admin.replace_stages(Work.current(), list(unchanged.items()))
    assert leads.drain() == 0  # the same mapping moves nothing
    remapped = {state: stage for state, stage in unchanged.items() if state != "Asignado a campaña"}
    remapped["asignado a CAMPAÑA"] = "Propuesta"  # the same state, as staff typed it
    odoo_admin.replace_stages(Work.current(), list(remapped.items()))
    while leads.drain():
        pass
    [lead] = records(odoo, "crm.lead")
    assert _id(lead["stage_id"]) == _stage(odoo, "Propuesta")
    writes = [c for c in odoo.admin.calls() if c.get("model") == "crm.lead" and c.get("method") == "write"]
    assert len(writes) == writes_before + 1
    assert [link.odoo_sync_status for link in leads.rows(miasalud_campaign_contacts)] == ["success"]


def test_a_retry_that_finds_the_row_leased_by_a_dead_worker_comes_back_when_the_lease_ends(
    odoo: SandboxServer, leads: Leads
) -> None:
    """Between retries a row is not `pending`, so the sweep does not take it: its retry message is its only way
    on. A retry that finds the lease of a worker that died (killed mid-push) waits for that lease, not lost."""
    odoo.admin.inject("applied_then_dropped", models=["res.partner"], methods=["create"], count=1)
    leads.post_contact(SEED_CONTACT)
    _apply_events(leads)
    [first] = leads.queued(ODOO_PUSH)
    assert odoo_push.process(first).outcome.value == "requeued"  # the answer was lost: retry (look up first)
    [contact] = leads.rows(miasalud_contacts)
    assert contact.odoo_sync_status == "error" and contact.odoo_sync_error.startswith("Reintentando")
    leads.change(miasalud_contacts, contact.id, odoo_lease_until=Work.current().now() + timedelta(seconds=30))
    retry = {**first, "attempt": 2}
    assert odoo_push.process(retry).outcome.value == "requeued"  # the dead worker's lease: wait for its end
    assert runtime.queues().client(ODOO_PUSH).get_queue_properties().approximate_message_count >= 1
    leads.change(miasalud_contacts, contact.id, odoo_lease_until=Work.current().now() - timedelta(seconds=1))
    assert odoo_push.process(retry).outcome.value == "applied"
    assert leads.rows(miasalud_contacts)[0].odoo_sync_status == "success"
    assert len(records(odoo, "res.partner")) == 1 and len(creates(odoo, "res.partner")) == 1
