"""What staff read of the MiaSalud wing, on SQLite and PostgreSQL: ManyChat's events kept for review, the leads
summary computed from known rows, and the wing's health."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from blueprints import miasalud_api as api
from shared import runtime
from shared.services.miasalud import odoo_reconcile
from shared.store import miasalud as store
from shared.store.miasalud_schema import miasalud_campaign_contacts, miasalud_contacts, miasalud_events
from shared.work import Work
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT, Leads
from tools.odoo_sandbox import DEMO_API_LOGIN, SandboxServer

# MiaSalud's zone, America/Mexico_City, is UTC-6 all year since 2022.
CDMX = -6


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given as June 2025 wall time in Mexico City."""
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC) - timedelta(hours=CDMX)


def _events(leads: Leads, **params: str) -> dict[str, Any]:
    answer = leads.staff(api.manychat_events, params=params)
    assert answer.status == 200, answer.body
    return answer.body  # type: ignore[no-any-return]


# --- events -----------------------------------------------------------------------------------------------------


def test_refused_events_are_listed_with_their_body_and_reasons(leads: Leads) -> None:
    assert leads.post_contact({**SEED_CONTACT, "manychat_id": "MC7", "nombre_lead": 7}).status == 400
    assert leads.post_contact(b"not json").status == 400
    assert leads.post_contact(SEED_CONTACT).status == 202
    leads.drain()

    rejected = _events(leads, status="rejected")
    assert rejected["count"] == 2
    by_id = {event["manychat_id"]: event for event in rejected["results"]}
    refused = by_id["MC7"]
    assert (refused["kind"], refused["status"]) == ("contact", "rejected")
    assert '"nombre_lead": 7' in refused["body"]
    assert [reason["field"] for reason in refused["detail"]] == ["nombre_lead"]
    assert by_id[None]["body"] == "not json"

    [applied] = _events(leads, status="applied")["results"]
    assert (applied["manychat_id"], applied["body"]) == ("MC99999", None)
    assert "first_name" in applied["detail"] and applied["occurred_at"].startswith("2025-06-10T10:05")


def test_events_are_filtered_and_paged_newest_first(leads: Leads) -> None:
    with leads.app.db.transaction() as conn:
        for n in range(12):
            store.keep_event(
                conn,
                event_key=f"key-{n}",
                kind="campaign" if n % 3 == 0 else "contact",
                status=store.HELD if n < 2 else store.REJECTED,
                received_at=_at(10, 8 + n),
                manychat_id=f"MC{n % 2}",
                body="{}",
            )
    page = _events(leads, page_size="5", page="2")
    assert (page["count"], [e["event_key"] for e in page["results"]]) == (12, [f"key-{n}" for n in range(6, 1, -1)])
    assert _events(leads, kind="campaign")["count"] == 4
    assert _events(leads, manychat_id="MC1")["count"] == 6
    assert _events(leads, status="held", kind="campaign")["count"] == 1
    assert _events(leads, status="held")["results"][0]["body"] is None  # the queue message, not for review
    window = _events(leads, received_from="2025-06-10T10:00:00", received_to="2025-06-10T12:59:00")
    assert sorted(e["event_key"] for e in window["results"]) == ["key-2", "key-3", "key-4"]
    assert _events(leads, received_from="2025-06-11")["count"] == 0
    assert _events(leads, received_to="2025-06-10")["count"] == 12


# --- summary ----------------------------------------------------------------------------------------------------


def _known_leads(leads: Leads) -> None:
    """Five contacts: four in 9-11 June (Mexico City), by channel and stage, three in campaigns; one on 20 June."""
    contacts = [
        ("MC1", "Facebook", "Nuevo Lead", _at(9, 23, 30)),  # 10 June in UTC, 9 June in Mexico City
        ("MC2", "Facebook", "Cita agendada", _at(10, 0, 10)),
        ("MC3", "WhatsApp", "Nuevo Lead", _at(10, 18)),
        ("MC4", "", "", _at(11, 12)),
        ("MC5", "WhatsApp", "Nuevo Lead", _at(20, 9)),  # outside the window
    ]
    for manychat_id, channel, stage, _ in contacts:
        body = {**SEED_CONTACT, "manychat_id": manychat_id, "canal_entrada": channel, "ultimo_estado": stage}
        assert leads.post_contact(body).status == 202
    for manychat_id, campaign in (("MC1", 85), ("MC2", 85), ("MC3", 86)):
        leads.post_campaign({**SEED_CAMPAIGN, "manychat_id": manychat_id, "campaign_id": campaign})
    leads.drain()
    for manychat_id, _, _, created in contacts:
        [row] = leads.rows(miasalud_contacts, miasalud_contacts.c.manychat_id == manychat_id)
        leads.change(miasalud_contacts, row.id, created_at=created)
        for link in leads.rows(miasalud_campaign_contacts, miasalud_campaign_contacts.c.contact_id == row.id):
            leads.change(miasalud_campaign_contacts, link.id, created_at=created)
    with leads.app.db.transaction() as conn:
        conn.execute(miasalud_events.delete())  # the events just applied arrived now, outside the window
        for n, (status, at) in enumerate(
            [
                (store.APPLIED, _at(11, 9, 5)),
                (store.APPLIED, _at(11, 9, 55)),
                (store.REJECTED, _at(11, 23, 59)),
                (store.UNCHANGED, _at(10, 9)),  # in the window, more than 24 h before its end
                (store.REJECTED, _at(12, 0)),  # after the window
            ]
        ):
            store.keep_event(conn, event_key=f"e{n}", kind="contact", status=status, received_at=at)


def test_the_summary_counts_known_leads_and_events(leads: Leads) -> None:
    _known_leads(leads)
    answer = leads.staff(api.reports_summary, params={"desde": "2025-06-09", "hasta": "2025-06-11"})
    assert answer.status == 200, answer.body
    summary = answer.body
    assert summary["window"] == {"desde": "2025-06-09", "hasta": "2025-06-11", "timezone": "America/Mexico_City"}
    assert summary["leads"] == 4
    assert [(d["date"], d["leads"]) for d in summary["leads_per_day"]] == [
        ("2025-06-09", 1), ("2025-06-10", 2), ("2025-06-11", 1),
    ]  # fmt: skip
    assert [(c["name"], c["leads"]) for c in summary["leads_per_channel"]] == [
        ("Facebook", 2), ("WhatsApp", 1), (None, 1),
    ]  # fmt: skip
    assert [(c["manychat_campaign_id"], c["leads"]) for c in summary["leads_per_campaign"]] == [(85, 2), (86, 1)]
    assert [(s["stage"], s["leads"]) for s in summary["leads_per_stage"]] == [
        ("Nuevo Lead", 2), ("Cita agendada", 1), (None, 1),
    ]  # fmt: skip
    assert summary["events"] == 4
    assert summary["events_per_status"] == {"applied": 2, "unchanged": 1, "rejected": 1, "held": 0, "queued": 0}

    hours = summary["events_per_hour"]
    assert len(hours) == 24
    assert (hours[0]["hour"], hours[-1]["hour"]) == ("2025-06-11T00:00:00-06:00", "2025-06-11T23:00:00-06:00")
    assert {h["hour"][11:13]: h["events"] for h in hours if h["events"]} == {"09": 2, "23": 1}


def test_the_summary_defaults_to_the_last_30_days_and_refuses_bad_windows(leads: Leads) -> None:
    summary = leads.staff(api.reports_summary).body
    today = datetime.now(ZoneInfo("America/Mexico_City")).date()
    assert summary["window"]["hasta"] == today.isoformat()
    assert summary["window"]["desde"] == (today - timedelta(days=29)).isoformat()
    assert len(summary["leads_per_day"]) == 30 and summary["leads"] == 0
    hours = [datetime.fromisoformat(h["hour"]) for h in summary["events_per_hour"]]
    assert hours[0] < datetime.now(UTC) - timedelta(hours=23) and hours[-1] <= datetime.now(UTC)

    for params, code in (
        ({"desde": "2025-06-11", "hasta": "2025-06-10"}, "invalid_range"),
        ({"desde": "2024-01-01", "hasta": "2025-06-10"}, "window_too_long"),
    ):
        answer = leads.staff(api.reports_summary, params=params)
        assert (answer.status, answer.body["error"]["code"]) == (422, code)
    assert leads.staff(api.reports_summary, params={"desde": "10/06/2025"}).status == 400


# --- health -----------------------------------------------------------------------------------------------------


def test_health_shows_the_queues_held_events_and_odoo(leads: Leads) -> None:
    assert leads.post_contact(SEED_CONTACT).status == 202  # waiting in manychat-contact
    with leads.app.db.transaction() as conn:
        store.keep_event(conn, event_key="held-1", kind="campaign", status=store.HELD, received_at=_at(10, 9))
    answer = leads.staff(api.reports_health)
    assert answer.status == 200, answer.body
    health = answer.body
    assert health["status"] == "ok"
    assert {name: check["ok"] for name, check in health["checks"].items()} == {"sql": True, "queues": True}
    assert health["queues"]["manychat-contact"]["depth"] >= 1
    assert health["queues"]["manychat-campaign"] == {"depth": 0, "poison": 0}
    assert health["held_events"] == 1
    assert health["odoo"]["status"] == "not_configured"


def test_health_shows_odoo_reachable_its_rows_waiting_and_last_reconciliation(
    odoo: SandboxServer, leads: Leads
) -> None:
    for manychat_id in ("MC1", "MC2", "MC3"):
        leads.post_contact({**SEED_CONTACT, "manychat_id": manychat_id})
    while leads.drain():
        pass
    first, second, _ = leads.rows(miasalud_contacts)
    leads.change(miasalud_contacts, first.id, odoo_sync_status="error", odoo_sync_error="Odoo rechazó los datos")
    leads.change(miasalud_contacts, second.id, odoo_sync_status="pending")
    report = odoo_reconcile.run(Work.current(), trigger="api", heal=False)
    answer = leads.staff(api.reports_health)
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "ok"
    state = answer.body["odoo"]
    assert (state["status"], state["configured"], state["reachable"], state["paused"]) == ("ok", True, True, False)
    assert (state["pending"], state["errors"]) == (1, 1)
    assert (state["last_reconciliation"]["id"], state["last_reconciliation"]["status"]) == (report["id"], "completed")


def test_health_is_degraded_while_odoo_is_down_and_while_pushes_are_paused(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.start_outage(30)
    try:
        down = leads.staff(api.reports_health)
    finally:
        odoo.admin.end_outage()
    assert down.status == 200  # ManyChat's events are still taken: degraded, not unavailable
    assert (down.body["status"], down.body["odoo"]["status"], down.body["odoo"]["reachable"]) == (
        "degraded", "unreachable", False,
    )  # fmt: skip
    assert "unavailable" in down.body["odoo"]["detail"] and odoo.url not in str(down.body)

    odoo.admin.expire_keys(DEMO_API_LOGIN)
    leads.post_contact(SEED_CONTACT)
    leads.drain()  # the push meets the refused key: pushes pause
    paused = leads.staff(api.reports_health).body
    assert (paused["status"], paused["odoo"]["status"], paused["odoo"]["paused"]) == ("degraded", "paused", True)
    assert "ODOO_API_KEY" in paused["odoo"]["paused_reason"] and paused["odoo"]["pending"] == 1


def test_the_health_check_gives_up_on_a_slow_odoo_within_seconds(odoo: SandboxServer, leads: Leads) -> None:
    odoo.admin.inject("slow", models=["res.partner"], methods=["search_count"], delay_ms=8000, count=1)
    started = time.monotonic()
    state = leads.staff(api.reports_health).body["odoo"]
    assert time.monotonic() - started < 6
    assert (state["status"], state["reachable"]) == ("unreachable", False)


def test_health_is_503_with_the_same_shape_when_storage_is_down(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/x;"
    )
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    runtime.reset()
    answer = leads.staff(api.reports_health)
    assert answer.status == 503
    health = answer.body
    assert (health["status"], health["checks"]["sql"]["ok"], health["checks"]["queues"]["ok"]) == (
        "unavailable", True, False,
    )  # fmt: skip
    unread = {"depth": None, "poison": None}
    assert health["queues"] == {"manychat-contact": unread, "manychat-campaign": unread}
    assert health["held_events"] == 0 and "127.0.0.1" not in str(health)
    assert set(health) == {"status", "checks", "queues", "held_events", "odoo"}  # the 200's shape
