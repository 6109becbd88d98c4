"""MiaSalud's staff API as the operations team uses it, on SQLite and PostgreSQL: contacts, campaigns, channels and
advisors kept by hand beside ManyChat's events, and the campaign contact update ManyChat flows call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blueprints import miasalud_api as api
from shared.api.routing import OPERATIONS
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads

SEED_CONTACT_IN = {
    "manychat_id": "MC12345",
    "first_name": "Juan",
    "last_name": "Pérez",
    "phone": "+521234567890",
    "channel_id": 1,
}
SEED_CAMPAIGN_IN = {
    "name": "Campaña Invierno 2025",
    "date_start": "2025-06-12T14:49:28.163Z",
    "date_end": "2025-12-31T23:59:59.000Z",
    "budget": 50000,
    "status": "Activa",
    "channel_id": 1,
}
SEED_CHANNEL_IN = {"name": "Facebook Messenger", "description": "Canal oficial de Facebook"}
SEED_ADVISOR_IN = {"name": "Dra. Laura", "email": "laura@ejemplo.com", "phone": "+521234567891"}


def _channel(leads: Leads, name: str = "Facebook Messenger") -> int:
    created = leads.staff(api.channels_create, "POST", body={**SEED_CHANNEL_IN, "name": name})
    assert created.status == 201, created.body
    return int(created.body["id"])


def _contact(leads: Leads, **fields: Any) -> dict[str, Any]:
    created = leads.staff(api.contacts_create, "POST", body={**SEED_CONTACT_IN, "channel_id": None, **fields})
    assert created.status == 201, created.body
    return created.body  # type: ignore[no-any-return]


def _error(response: Any) -> tuple[int, str]:
    return response.status, response.body["error"]["code"]


def _applied(leads: Leads, *bodies: dict[str, Any]) -> None:
    """ManyChat's events, through the intake and the workers."""
    for body in bodies:
        kind = leads.post_campaign if "campaign_id" in body else leads.post_contact
        assert kind(body).status == 202
    leads.drain()


def _future(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# --- CRUD round trips -------------------------------------------------------------------------------------------


def test_a_contact_is_created_read_replaced_listed_and_deleted(leads: Leads) -> None:
    channel = _channel(leads)
    created = leads.staff(api.contacts_create, "POST", body={**SEED_CONTACT_IN, "channel_id": channel})
    assert created.status == 201
    contact = created.body
    assert (contact["manychat_id"], contact["first_name"], contact["last_name"]) == ("MC12345", "Juan", "Pérez")
    assert (contact["channel_id"], contact["odoo_sync_status"], contact["version"]) == (channel, "pending", 1)

    assert leads.staff(api.contacts_get, id=contact["id"]).body == contact

    changed = {**SEED_CONTACT_IN, "last_name": "Pérez López", "phone": "55 1234 5678", "channel_id": None}
    replaced = leads.staff(api.contacts_update, "PUT", body=changed, id=contact["id"])
    assert replaced.status == 200
    assert (replaced.body["last_name"], replaced.body["phone"], replaced.body["phone_valid"]) == (
        "Pérez López", "+525512345678", True,
    )  # fmt: skip
    assert (replaced.body["channel_id"], replaced.body["version"]) == (None, 2)

    listing = leads.staff(api.contacts_list).body
    assert (listing["count"], [row["id"] for row in listing["results"]]) == (1, [contact["id"]])

    assert leads.staff(api.contacts_delete, "DELETE", id=contact["id"]).status == 204
    assert _error(leads.staff(api.contacts_get, id=contact["id"])) == (404, "contact_not_found")
    assert _error(leads.staff(api.contacts_delete, "DELETE", id=contact["id"])) == (404, "contact_not_found")


def test_a_campaign_keeps_its_dates_budget_and_channel(leads: Leads) -> None:
    channel = _channel(leads)
    created = leads.staff(api.campaigns_create, "POST", body={**SEED_CAMPAIGN_IN, "channel_id": channel})
    assert created.status == 201
    campaign = created.body
    assert (campaign["name"], campaign["status"], campaign["budget"], campaign["from_event"]) == (
        "Campaña Invierno 2025", "Activa", 50000.0, False,
    )  # fmt: skip
    assert datetime.fromisoformat(campaign["date_start"]) == datetime(2025, 6, 12, 14, 49, 28, 163000, tzinfo=UTC)

    # A date-time without offset is MiaSalud's wall time (America/Mexico_City, UTC-6).
    local = {**SEED_CAMPAIGN_IN, "channel_id": channel, "date_end": "2025-12-31T23:59:59", "budget": 1234.567}
    replaced = leads.staff(api.campaigns_update, "PUT", body={**local, "manychat_campaign_id": 85}, id=campaign["id"])
    assert replaced.status == 200
    assert datetime.fromisoformat(replaced.body["date_end"]) == datetime(2026, 1, 1, 5, 59, 59, tzinfo=UTC)
    assert (replaced.body["budget"], replaced.body["manychat_campaign_id"]) == (1234.57, 85)
    assert leads.staff(api.campaigns_get, id=campaign["id"]).body == replaced.body

    backwards = {**SEED_CAMPAIGN_IN, "channel_id": channel, "date_end": "2025-01-01T00:00:00Z"}
    refused = leads.staff(api.campaigns_create, "POST", body=backwards)
    assert _error(refused) == (422, "invalid_range")
    assert refused.body["error"]["details"][0]["field"] == "date_end"

    assert leads.staff(api.campaigns_delete, "DELETE", id=campaign["id"]).status == 204
    assert leads.staff(api.campaigns_list).body["count"] == 0


def test_channels_and_advisors_round_trip(leads: Leads) -> None:
    channel = leads.staff(api.channels_create, "POST", body=SEED_CHANNEL_IN).body
    assert (channel["name"], channel["description"], channel["from_event"]) == (
        "Facebook Messenger", "Canal oficial de Facebook", False,
    )  # fmt: skip
    renamed = leads.staff(api.channels_update, "PUT", body={"name": "  WhatsApp   Business "}, id=channel["id"])
    assert (renamed.status, renamed.body["name"], renamed.body["description"]) == (200, "WhatsApp Business", None)
    assert leads.staff(api.channels_get, id=channel["id"]).body["name"] == "WhatsApp Business"

    advisor = leads.staff(api.advisors_create, "POST", body={**SEED_ADVISOR_IN, "external_id": 101}).body
    assert (advisor["name"], advisor["email"], advisor["external_id"]) == ("Dra. Laura", "laura@ejemplo.com", "101")
    assert advisor["phone"] == "+521234567891"  # kept as typed, digits only, when it is not a valid number
    moved = leads.staff(
        api.advisors_update, "PUT", body={"name": "Dra. Laura Ríos", "phone": "55 8765 4321"}, id=advisor["id"]
    )
    assert (moved.body["name"], moved.body["phone"], moved.body["external_id"]) == (
        "Dra. Laura Ríos", "+525587654321", None,
    )  # fmt: skip
    assert leads.staff(api.advisors_delete, "DELETE", id=advisor["id"]).status == 204
    assert leads.staff(api.channels_delete, "DELETE", id=channel["id"]).status == 204
    assert leads.staff(api.advisors_list).body["count"] == leads.staff(api.channels_list).body["count"] == 0


def test_rows_created_from_events_are_completed_by_staff(leads: Leads) -> None:
    _applied(leads, SEED_CONTACT, SEED_CAMPAIGN)
    [campaign] = leads.staff(api.campaigns_list).body["results"]
    assert (campaign["manychat_campaign_id"], campaign["name"], campaign["from_event"]) == (85, None, True)
    body = {**SEED_CAMPAIGN_IN, "channel_id": None, "manychat_campaign_id": 85}
    completed = leads.staff(api.campaigns_update, "PUT", body=body, id=campaign["id"]).body
    assert (completed["name"], completed["from_event"]) == ("Campaña Invierno 2025", False)
    [advisor] = leads.staff(api.advisors_list, params={"q": "700"}).body["results"]
    assert (advisor["external_id"], advisor["from_event"]) == ("700", True)


def test_text_is_unicode_and_bounded_by_its_column(leads: Leads) -> None:
    contact = _contact(leads, first_name="Ñandú 🦤", last_name="Ζωή 李")
    assert (contact["first_name"], contact["last_name"]) == ("Ñandú 🦤", "Ζωή 李")
    assert leads.staff(api.contacts_get, id=contact["id"]).body["first_name"] == "Ñandú 🦤"
    too_long = leads.staff(api.contacts_create, "POST", body={**SEED_CONTACT_IN, "first_name": "x" * 201})
    assert too_long.status == 400
    assert too_long.body["error"]["details"][0]["field"] == "first_name"
    blank = leads.staff(api.channels_create, "POST", body={"name": "   "})
    assert _error(blank) == (422, "unprocessable")
    odd_id = leads.staff(api.contacts_create, "POST", body={**SEED_CONTACT_IN, "manychat_id": "MC 1/ñ"})
    assert _error(odd_id) == (422, "unprocessable")


def test_an_invalid_phone_is_kept_flagged_never_refused(leads: Leads) -> None:
    contact = _contact(leads, phone="12-34")
    assert (contact["phone"], contact["phone_valid"]) == ("+521234", False)
    seed = _contact(leads, manychat_id="MC2")  # the seed's +52 1 234 567 890 is no Mexican number either
    assert (seed["phone"], seed["phone_valid"]) == ("+521234567890", False)
    mobile = _contact(leads, manychat_id="MC3", phone="+5215512345678")  # WhatsApp's old mobile form
    assert (mobile["phone"], mobile["phone_valid"]) == ("+525512345678", True)


# --- paging and filters -----------------------------------------------------------------------------------------


def test_contacts_are_paged_newest_first_and_filtered(leads: Leads) -> None:
    facebook, whatsapp = _channel(leads, "Facebook"), _channel(leads, "WhatsApp")
    ids = []
    for n in range(23):
        names = {"first_name": "Ana" if n % 2 else "Luis", "last_name": "García" if n < 5 else "Soto"}
        phone = f"55 1234 {n:04d}"
        channel = facebook if n < 10 else whatsapp
        ids.append(_contact(leads, manychat_id=f"MC{n:03d}", phone=phone, channel_id=channel, **names)["id"])
    first = leads.staff(api.contacts_list, params={"page_size": "10"}).body
    third = leads.staff(api.contacts_list, params={"page_size": "10", "page": "3"}).body
    assert (first["count"], first["page"], first["page_size"], len(first["results"])) == (23, 1, 10, 10)
    assert [row["id"] for row in third["results"]] == ids[2::-1]  # the oldest three, newest of them first

    def found(**params: str) -> list[int]:
        answer = leads.staff(api.contacts_list, params={"page_size": "100", **params})
        assert answer.status == 200, answer.body
        assert answer.body["count"] == len(answer.body["results"])
        return sorted(row["id"] for row in answer.body["results"])

    assert found(channel_id=str(facebook)) == ids[:10]
    assert found(q="garc") == found(q="GARC") == ids[:5]
    assert found(q="ana garcía") == [ids[n] for n in (1, 3)]
    assert found(q="mc01") == ids[10:20]
    assert found(q="1234 0007") == [ids[7]]  # the phone, by its digits
    assert found(q="nadie") == []

    leads.change(miasalud_contacts, ids[4], odoo_sync_status="success")
    assert found(odoo_sync_status="success") == [ids[4]]
    assert len(found(odoo_sync_status="pending")) == 22

    leads.change(miasalud_contacts, ids[0], created_at=datetime(2025, 6, 10, 5, 30, tzinfo=UTC))  # 9 Jun in CDMX
    leads.change(miasalud_contacts, ids[1], created_at=datetime(2025, 6, 10, 6, 30, tzinfo=UTC))  # 10 Jun
    assert found(created_from="2025-06-09", created_to="2025-06-09") == [ids[0]]
    assert found(created_to="2025-06-10") == ids[:2]
    assert found(created_from="2025-06-10T00:00:00", created_to="2025-06-10") == [ids[1]]
    reversed_range = leads.staff(api.contacts_list, params={"created_from": "2025-06-11", "created_to": "2025-06-10"})
    assert _error(reversed_range) == (422, "invalid_range")


def test_campaigns_channels_and_advisors_are_filtered(leads: Leads) -> None:
    facebook, whatsapp = _channel(leads, "Facebook"), _channel(leads, "WhatsApp Business")
    for name, status, channel in (("Invierno", "Activa", facebook), ("Verano", "Pausada", whatsapp)):
        body = {**SEED_CAMPAIGN_IN, "name": name, "status": status, "channel_id": channel}
        assert leads.staff(api.campaigns_create, "POST", body=body).status == 201

    def names(function: Any, **params: str) -> list[str]:
        return [row["name"] for row in leads.staff(function, params=params).body["results"]]

    assert names(api.campaigns_list, status="Activa") == ["Invierno"]
    assert names(api.campaigns_list, channel_id=str(whatsapp)) == ["Verano"]
    assert names(api.campaigns_list, status="Activa", channel_id=str(whatsapp)) == []
    assert names(api.channels_list) == ["Facebook", "WhatsApp Business"]
    assert names(api.channels_list, q="business") == ["WhatsApp Business"]
    for advisor in ({**SEED_ADVISOR_IN, "external_id": "101"}, {"name": "Carlos Ruiz", "email": "carlos@x.mx"}):
        assert leads.staff(api.advisors_create, "POST", body=advisor).status == 201
    assert names(api.advisors_list) == ["Carlos Ruiz", "Dra. Laura"]
    assert names(api.advisors_list, q="laura@") == names(api.advisors_list, q="101") == ["Dra. Laura"]


def test_paging_and_filters_outside_the_document_are_refused(leads: Leads) -> None:
    for function, params in (
        (api.contacts_list, {"page_size": "101"}),
        (api.contacts_list, {"page": "0"}),
        (api.contacts_list, {"odoo_sync_status": "done"}),
        (api.contacts_list, {"canal": "1"}),
        (api.manychat_events, {"status": "lost"}),
    ):
        assert _error(leads.staff(function, params=params)) == (400, "invalid_query"), params


# --- conflicts and references -----------------------------------------------------------------------------------


def test_deleting_a_row_others_point_at_answers_409_saying_what_points_at_it(leads: Leads) -> None:
    _applied(leads, {**SEED_CONTACT, "canal_entrada": "Facebook Messenger"}, SEED_CAMPAIGN)
    [channel] = leads.staff(api.channels_list).body["results"]
    [contact] = leads.staff(api.contacts_list).body["results"]
    [campaign] = leads.staff(api.campaigns_list).body["results"]
    advisor = leads.staff(api.advisors_list, params={"q": "101"}).body["results"][0]
    body = {**SEED_CAMPAIGN_IN, "channel_id": channel["id"], "manychat_campaign_id": 85}
    assert leads.staff(api.campaigns_update, "PUT", body=body, id=campaign["id"]).status == 200

    refused = leads.staff(api.channels_delete, "DELETE", id=channel["id"])
    assert _error(refused) == (409, "in_use")
    assert "1 contacto" in refused.body["error"]["message"] and "1 campaña" in refused.body["error"]["message"]
    assert {(d["referenced_by"], d["count"]) for d in refused.body["error"]["details"]} == {
        ("miasalud_contacts", 1), ("miasalud_campaigns", 1),
    }  # fmt: skip
    for function, row in ((api.contacts_delete, contact), (api.campaigns_delete, campaign)):
        answer = leads.staff(function, "DELETE", id=row["id"])
        assert _error(answer) == (409, "in_use")
        assert "1 asignación a campaña" in answer.body["error"]["message"]
    assert _error(leads.staff(api.advisors_delete, "DELETE", id=advisor["id"])) == (409, "in_use")
    assert len(leads.rows(miasalud_contacts)) == 1  # nothing was deleted

    with leads.app.db.transaction() as conn:
        conn.execute(miasalud_campaign_contacts.delete())
    for function, row in ((api.campaigns_delete, campaign), (api.contacts_delete, contact)):
        assert leads.staff(function, "DELETE", id=row["id"]).status == 204
    assert leads.staff(api.channels_delete, "DELETE", id=channel["id"]).status == 204
    assert leads.staff(api.advisors_delete, "DELETE", id=advisor["id"]).status == 204


def test_duplicates_answer_409_naming_the_row_that_holds_the_value(leads: Leads) -> None:
    first = _contact(leads)
    again = leads.staff(api.contacts_create, "POST", body={**SEED_CONTACT_IN, "channel_id": None})
    assert _error(again) == (409, "contact_exists")
    assert again.body["error"]["details"][0] == {
        "field": "manychat_id", "code": "duplicate", "message": f"Lo tiene el id {first['id']}.", "id": first["id"],
    }  # fmt: skip
    other = _contact(leads, manychat_id="MC2")
    taken = {**SEED_CONTACT_IN, "channel_id": None}
    assert _error(leads.staff(api.contacts_update, "PUT", body=taken, id=other["id"])) == (409, "contact_exists")

    _channel(leads, "Facebook")
    for name in ("facebook", " FACEBOOK ", "Facébook"):
        assert _error(leads.staff(api.channels_create, "POST", body={"name": name})) == (409, "channel_exists")

    advisor = {**SEED_ADVISOR_IN, "external_id": "101"}
    assert leads.staff(api.advisors_create, "POST", body=advisor).status == 201
    assert _error(leads.staff(api.advisors_create, "POST", body=advisor)) == (409, "advisor_exists")

    campaign = {**SEED_CAMPAIGN_IN, "channel_id": None, "manychat_campaign_id": 85}
    created = leads.staff(api.campaigns_create, "POST", body=campaign).body
    assert _error(leads.staff(api.campaigns_create, "POST", body=campaign)) == (409, "campaign_exists")
    # Replacing a row with its own unique values is no conflict.
    assert leads.staff(api.campaigns_update, "PUT", body=campaign, id=created["id"]).status == 200


def test_an_id_that_names_no_row_answers_422(leads: Leads) -> None:
    for function, body in (
        (api.contacts_create, {**SEED_CONTACT_IN, "channel_id": 999}),
        (api.campaigns_create, {**SEED_CAMPAIGN_IN, "channel_id": 999}),
    ):
        answer = leads.staff(function, "POST", body=body)
        assert _error(answer) == (422, "unknown_reference")
        assert answer.body["error"]["details"][0]["field"] == "channel_id"
        assert "999" in answer.body["error"]["message"]
    assert leads.rows(miasalud_contacts) == []


def test_an_id_in_the_path_that_names_no_row_answers_404(leads: Leads) -> None:
    assert _error(leads.staff(api.campaigns_get, id=42)) == (404, "campaign_not_found")
    assert _error(leads.staff(api.channels_update, "PUT", body=SEED_CHANNEL_IN, id=42)) == (404, "channel_not_found")
    assert _error(leads.staff(api.advisors_delete, "DELETE", id=42)) == (404, "advisor_not_found")


# --- staff's edits among ManyChat's events ----------------------------------------------------------------------


def test_a_staff_edit_outlasts_older_events_and_yields_to_newer_ones(leads: Leads) -> None:
    _applied(leads, SEED_CONTACT)
    [contact] = leads.staff(api.contacts_list).body["results"]
    leads.change(miasalud_contacts, contact["id"], odoo_sync_status="success")
    edit = {"manychat_id": "MC99999", "first_name": "Ana Lucía", "last_name": "García", "channel_id": None}
    edit["phone"] = "+521234567891"
    edited = leads.staff(api.contacts_update, "PUT", body=edit, id=contact["id"]).body
    assert (edited["first_name"], edited["channel_id"], edited["odoo_sync_status"]) == ("Ana Lucía", None, "pending")

    # Delayed in ManyChat's queue, an event older than the edit: what staff changed stays theirs; what they left
    # as it was still takes this event's newer word.
    late = {**SEED_CONTACT, "nombre_lead": "Anita", "apellido_lead": "García Ruiz", "canal_entrada": "Instagram"}
    _applied(leads, {**late, "ultimo_estado": "Interesado", "datetime_actual": "2025-06-10T11:00:00Z"})
    after_late = leads.staff(api.contacts_get, id=contact["id"]).body
    assert (after_late["first_name"], after_late["channel_id"]) == ("Ana Lucía", None)
    assert (after_late["last_name"], after_late["last_state"]) == ("García Ruiz", "Interesado")

    _applied(leads, {**SEED_CONTACT, "nombre_lead": "Ana María", "datetime_actual": _future()})
    assert leads.staff(api.contacts_get, id=contact["id"]).body["first_name"] == "Ana María"


def test_a_replace_that_changes_nothing_leaves_the_record_as_it_was(leads: Leads) -> None:
    contact = _contact(leads)
    leads.change(miasalud_contacts, contact["id"], odoo_sync_status="success")
    same = {**SEED_CONTACT_IN, "channel_id": None}
    again = leads.staff(api.contacts_update, "PUT", body=same, id=contact["id"]).body
    assert (again["version"], again["odoo_sync_status"]) == (1, "success")  # no new push to Odoo for nothing


# --- the campaign contact update by manychat_id -----------------------------------------------------------------


def _update(leads: Leads, body: dict[str, Any]) -> Any:
    return leads.staff(api.manychat_campaign_contact_update, "PUT", body=body)


def _campaign_id(leads: Leads, number: int) -> int:
    """This API's id of the campaign ManyChat numbers `number`."""
    campaigns = leads.staff(api.campaigns_list).body["results"]
    return next(int(c["id"]) for c in campaigns if c["manychat_campaign_id"] == number)


def test_the_seed_update_changes_the_campaign_contact_it_names(leads: Leads) -> None:
    _applied(leads, SEED_CONTACT, SEED_CAMPAIGN, {**SEED_CAMPAIGN, "campaign_id": 86})
    campaign = _campaign_id(leads, 85)
    doctor = leads.staff(api.advisors_create, "POST", body=SEED_ADVISOR_IN).body["id"]
    [link] = leads.rows(miasalud_campaign_contacts, miasalud_campaign_contacts.c.campaign_id == campaign)
    leads.change(miasalud_campaign_contacts, link.id, odoo_sync_status="success")
    body = {
        "manychat_id": "MC99999",
        "campaign_id": campaign,
        "medical_advisor_id": doctor,
        "medical_assignment_date": "2025-06-10T11:00:00Z",
        "last_state": "Asignado a médico",
        "summary": "Conversación finalizada, cliente agendó consulta.",
    }
    answer = _update(leads, body)
    assert answer.status == 200, answer.body
    updated = answer.body
    assert (updated["id"], updated["manychat_id"], updated["campaign_id"]) == (link.id, "MC99999", campaign)
    assert (updated["medical_advisor_id"], updated["last_state"]) == (doctor, "Asignado a médico")
    assert updated["summary"] == "Conversación finalizada, cliente agendó consulta."
    assert datetime.fromisoformat(updated["medical_assignment_date"]) == datetime(2025, 6, 10, 11, tzinfo=UTC)
    assert (updated["odoo_sync_status"], updated["commercial_advisor_id"]) == ("pending", link.commercial_advisor_id)
    [other] = leads.rows(miasalud_campaign_contacts, miasalud_campaign_contacts.c.campaign_id != campaign)
    assert other.last_state == "Asignado a campaña"  # the other campaign's is untouched

    # An older assignment event arriving afterwards does not undo the update.
    _applied(leads, {**SEED_CAMPAIGN, "ultimo_estado": "Reasignado", "datetime_actual": "2025-06-10T10:30:00Z"})
    [kept] = leads.rows(miasalud_campaign_contacts, miasalud_campaign_contacts.c.id == link.id)
    assert kept.last_state == "Asignado a médico"


def test_without_campaign_id_the_only_campaign_contact_is_updated(leads: Leads) -> None:
    _applied(leads, SEED_CONTACT, SEED_CAMPAIGN)
    answer = _update(leads, {"manychat_id": "MC99999", "last_state": "Cita agendada", "summary": "{{summary}}"})
    assert (answer.status, answer.body["last_state"]) == (200, "Cita agendada")
    assert answer.body["summary"].startswith("El cliente preguntó")  # an unfilled placeholder changes nothing
    cleared = _update(leads, {"manychat_id": "MC99999", "summary": None, "medical_advisor_id": ""})
    assert (cleared.body["summary"], cleared.body["medical_advisor_id"]) == (None, answer.body["medical_advisor_id"])
    display = _update(leads, {"manychat_id": "MC99999", "medical_assignment_date": "20 Oct 2025, 05:41pm"})
    assert datetime.fromisoformat(display.body["medical_assignment_date"]) == datetime(2025, 10, 20, 23, 41, tzinfo=UTC)


def test_a_contact_in_several_campaigns_needs_the_campaign_id(leads: Leads) -> None:
    _applied(leads, SEED_CONTACT, SEED_CAMPAIGN, {**SEED_CAMPAIGN, "campaign_id": 86})
    campaigns = sorted(c["id"] for c in leads.staff(api.campaigns_list).body["results"])
    answer = _update(leads, {"manychat_id": "MC99999", "last_state": "Cita agendada"})
    assert _error(answer) == (409, "ambiguous_campaign")
    assert sorted(detail["campaign_id"] for detail in answer.body["error"]["details"]) == campaigns
    assert {link.last_state for link in leads.rows(miasalud_campaign_contacts)} == {"Asignado a campaña"}


def test_an_update_for_no_campaign_contact_answers_404_and_bad_ids_422(leads: Leads) -> None:
    assert _error(_update(leads, {"manychat_id": "MC404", "last_state": "x"})) == (404, "contact_not_found")
    _applied(leads, SEED_CONTACT)
    assert _error(_update(leads, {"manychat_id": "MC99999"})) == (404, "campaign_contact_not_found")
    _applied(leads, SEED_CAMPAIGN)
    campaign = _campaign_id(leads, 85)
    other = leads.staff(api.campaigns_create, "POST", body={**SEED_CAMPAIGN_IN, "channel_id": None}).body["id"]
    assert _error(_update(leads, {"manychat_id": "MC99999", "campaign_id": other})) == (
        404, "campaign_contact_not_found",
    )  # fmt: skip
    for body in (
        {"manychat_id": "MC99999", "campaign_id": 999_999},
        {"manychat_id": "MC99999", "campaign_id": str(campaign), "medical_advisor_id": 999_999},
    ):
        assert _error(_update(leads, body)) == (422, "unknown_reference")
    for bad in ({"medical_assignment_date": "mañana"}, {"campaign_id": "ochenta"}, {"manychat_id": "{{user_id}}"}):
        assert _update(leads, {"manychat_id": "MC99999", **bad}).status == 422, bad
    assert _update(leads, {"manychat_id": "MC99999", "campaign_id": True}).status == 400


# --- the key ----------------------------------------------------------------------------------------------------

STAFF_ROUTES = [op for op in OPERATIONS if hasattr(api, op.name)]


def test_every_staff_route_takes_the_key() -> None:
    assert len(STAFF_ROUTES) == 4 * 5 + 4 and all(op.api_key for op in STAFF_ROUTES)


@pytest.mark.parametrize("operation", STAFF_ROUTES, ids=lambda op: op.name)
def test_every_staff_route_answers_401_without_the_key(leads: Leads, operation: Any) -> None:
    function = getattr(api, operation.name)
    for headers in ({}, {"X-API-KEY": "not-the-key-at-all"}):
        answer = leads.staff(function, operation.methods[0], body={}, id=1, headers=headers)
        assert _error(answer) == (401, "invalid_api_key")
