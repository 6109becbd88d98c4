"""ManyChat's events from the HTTP intake to the records in SQL, on SQLite and PostgreSQL with Azurite."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from shared.store.miasalud_schema import (
    miasalud_advisors,
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_contacts,
    miasalud_events,
)
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads


def test_the_seed_contact_becomes_a_normalised_row(leads: Leads) -> None:
    answer = leads.post_contact(SEED_CONTACT)
    assert answer.status == 202
    assert answer.body["status"] == "accepted" and answer.body["manychat_id"] == "MC99999"
    assert leads.rows(miasalud_contacts) == []  # queued, not yet applied
    assert leads.drain() == 1
    [row] = leads.rows(miasalud_contacts)
    [channel] = leads.rows(miasalud_channels)
    assert (row.manychat_id, row.first_name, row.last_name, row.phone, row.phone_valid) == (
        "MC99999", "Ana", "García", "+521234567891", False,
    )  # fmt: skip
    assert (row.last_state, row.initial_state, row.channel_id) == ("Nuevo Lead", "Nuevo", channel.id)
    assert row.subscribed_at == datetime(2025, 6, 10, 10, 0, tzinfo=UTC)
    assert row.event_at == datetime(2025, 6, 10, 10, 5, tzinfo=UTC)
    assert (row.odoo_sync_status, row.version) == ("pending", 1)
    assert (channel.name, channel.from_event) == ("Facebook", True)
    [event] = leads.rows(miasalud_events)
    assert (event.status, event.event_key, event.body) == ("applied", answer.body["event_id"], None)


def test_the_seed_campaign_assignment_creates_what_it_names_once(leads: Leads) -> None:
    assert leads.post_contact(SEED_CONTACT).status == 202
    assert leads.post_campaign(SEED_CAMPAIGN).status == 202
    assert leads.post_campaign({**SEED_CAMPAIGN, "campaign_id": "85", "datetime_actual": "2025-06-10T10:20:00Z"})
    leads.drain()
    [campaign] = leads.rows(miasalud_campaigns)
    advisors = {a.external_id: a for a in leads.rows(miasalud_advisors)}
    [link] = leads.rows(miasalud_campaign_contacts)
    [contact] = leads.rows(miasalud_contacts)
    assert (campaign.manychat_campaign_id, campaign.from_event) == (85, True)
    assert set(advisors) == {"700", "101"}
    assert (link.contact_id, link.campaign_id) == (contact.id, campaign.id)
    assert (link.commercial_advisor_id, link.medical_advisor_id) == (advisors["700"].id, advisors["101"].id)
    assert link.last_state == "Asignado a campaña" and link.summary.startswith("El cliente")
    assert link.medical_assignment_date == datetime(2025, 6, 10, 10, 20, tzinfo=UTC)
    assert link.event_at == datetime(2025, 6, 10, 10, 20, tzinfo=UTC)


def test_the_same_event_twice_and_an_older_one_after_a_newer_one_leave_the_newest(leads: Leads) -> None:
    newer = {**SEED_CONTACT, "nombre_lead": "Ana María", "datetime_actual": "2025-06-10T11:00:00Z"}
    for body in (newer, newer, SEED_CONTACT):
        assert leads.post_contact(body).status == 202
    leads.drain()
    [row] = leads.rows(miasalud_contacts)
    assert (row.first_name, row.version) == ("Ana María", 1)
    statuses = sorted(event.status for event in leads.rows(miasalud_events))
    assert statuses == ["applied", "unchanged"]  # the repeat was recognised and not recorded again


def test_an_older_event_still_fills_what_the_newer_one_left_unfilled(leads: Leads) -> None:
    newer = {
        **SEED_CONTACT,
        "whatsapp": "",
        "ultimo_estado": "Cita agendada",
        "datetime_actual": "2025-06-11T09:00:00Z",
    }
    older = {**SEED_CONTACT, "whatsapp": "+52 55 1234 5678", "ultimo_estado": "Nuevo Lead"}
    leads.post_contact(newer)
    leads.drain()
    leads.post_contact(older)
    leads.drain()
    [row] = leads.rows(miasalud_contacts)
    assert (row.last_state, row.phone, row.phone_valid) == ("Cita agendada", "+525512345678", True)


def test_a_campaign_assignment_before_its_contact_event_keeps_both(leads: Leads) -> None:
    leads.post_campaign(SEED_CAMPAIGN)
    leads.drain()
    [bare] = leads.rows(miasalud_contacts)
    assert (bare.manychat_id, bare.first_name) == ("MC99999", None)
    leads.post_contact(SEED_CONTACT)
    leads.drain()
    [row] = leads.rows(miasalud_contacts)
    assert (row.id, row.first_name) == (bare.id, "Ana")
    assert len(leads.rows(miasalud_campaign_contacts)) == 1


def test_channels_differing_only_in_case_accents_or_spaces_are_one(leads: Leads) -> None:
    for n, name in enumerate(["WhatsApp", " whatsapp ", "WHATSAPP"]):
        leads.post_contact({**SEED_CONTACT, "manychat_id": f"MC{n}", "canal_entrada": name})
    leads.drain()
    assert len(leads.rows(miasalud_channels)) == 1
    assert len({row.channel_id for row in leads.rows(miasalud_contacts)}) == 1


def test_an_invalid_body_is_refused_naming_its_fields_and_kept_for_review(leads: Leads) -> None:
    answer = leads.post_contact({**SEED_CONTACT, "manychat_id": "{{user_id}}", "nombre_lead": 7})
    assert answer.status == 400
    fields = {detail["field"] for detail in answer.body["error"]["details"]}
    assert fields == {"manychat_id", "nombre_lead"}
    assert all(detail["message"] for detail in answer.body["error"]["details"])
    [kept] = leads.rows(miasalud_events)
    assert (kept.status, kept.kind) == ("rejected", "contact")
    assert '"nombre_lead": 7' in kept.body or '"nombre_lead":7' in kept.body
    assert leads.drain() == 0 and leads.rows(miasalud_contacts) == []


def test_an_unfilled_placeholder_where_a_value_is_needed_is_a_422(leads: Leads) -> None:
    answer = leads.post_campaign({**SEED_CAMPAIGN, "campaign_id": "{{campaign_id}}"})
    assert (answer.status, answer.body["error"]["details"][0]["field"]) == (422, "campaign_id")


def test_without_a_valid_key_nothing_is_taken(leads: Leads) -> None:
    for headers in ({}, {"X-API-KEY": "wrong-key-wrong-key"}, {"X-API-KEY": "test-manychat-key-0001x"}):
        answer = leads.post_contact(SEED_CONTACT, headers)
        assert (answer.status, answer.body["error"]["code"]) == (401, "invalid_api_key")
    assert leads.drain() == 0 and leads.rows(miasalud_events) == []


def test_huge_and_non_json_bodies_are_refused_without_a_5xx(leads: Leads) -> None:
    huge = leads.post_contact(b'{"manychat_id": "MC1", "nombre_lead": "' + b"x" * 40_000 + b'"}')
    assert (huge.status, huge.body["error"]["code"]) == (413, "payload_too_large")
    for raw in (b"[1, 2]", b"not json", b'{"a": ' * 100 + b"1" + b"}" * 100, b""):
        assert leads.post_contact(raw).status == 400
    assert {row.status for row in leads.rows(miasalud_events)} == {"rejected"}


def test_a_record_change_count_is_visible_per_event(leads: Leads) -> None:
    leads.post_contact(SEED_CONTACT)
    leads.drain()
    with leads.app.db.transaction() as conn:
        detail = conn.execute(sa.select(miasalud_events.c.detail)).scalar_one()
    assert "first_name" in detail and "channel_id" in detail
