"""MiaSalud leads end to end: ManyChat's events over HTTP to the local Functions host (the real `function_app`),
through Azurite's queues and the host's queue workers, into SQL — verbatim seed bodies, repeats, late and
reordered events, refusals, keys."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.api.routing import OPERATIONS
from shared.store.miasalud_schema import (
    miasalud_campaign_contacts,
    miasalud_campaigns,
    miasalud_channels,
    miasalud_contacts,
    miasalud_events,
)
from sync_core.phones import read_phone
from tests.fixtures.stack import MANYCHAT_KEY, Stack
from tests.integration.miasalud.conftest import SEED_CAMPAIGN, SEED_CONTACT

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

CONTACT_ROUTE = "/v1/manychat/webhook/contact"
CAMPAIGN_ROUTE = "/v1/manychat/webhook/campaign-assignment"
START = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)


def manychat(stack: Stack, key: str | bytes | None = MANYCHAT_KEY) -> httpx.Client:
    headers = {"X-API-KEY": key} if key is not None else {}
    return httpx.Client(base_url=f"{stack.host.base_url}/api", headers=headers, timeout=30)


def rows(stack: Stack, table: sa.Table) -> list[sa.Row[Any]]:
    with stack.db.transaction() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


def settled(stack: Stack, events: int) -> bool:
    """Every distinct event applied (or found older than what the record holds)."""
    done = [e for e in rows(stack, miasalud_events) if e.status in ("applied", "unchanged")]
    return len(done) >= events


def test_the_seed_bodies_sent_verbatim_end_as_normalised_rows(stack: Stack) -> None:
    with manychat(stack) as client:
        contact = client.post(CONTACT_ROUTE, json=SEED_CONTACT)
        campaign = client.post(CAMPAIGN_ROUTE + "/", json=SEED_CAMPAIGN)  # the seed's trailing slash works too
    assert (contact.status_code, campaign.status_code) == (202, 202)
    assert contact.json() == {"status": "accepted", "event_id": contact.json()["event_id"], "manychat_id": "MC99999"}
    stack.wait_until(lambda: settled(stack, 2), what="both seed events applied")
    [lead] = rows(stack, miasalud_contacts)
    [channel] = rows(stack, miasalud_channels)
    [link] = rows(stack, miasalud_campaign_contacts)
    [campaign_row] = rows(stack, miasalud_campaigns)
    assert (lead.first_name, lead.last_name, lead.phone, lead.channel_id) == (
        "Ana",
        "García",
        "+521234567891",
        channel.id,
    )
    assert (lead.last_state, lead.odoo_sync_status) == ("Nuevo Lead", "pending")
    assert (link.contact_id, link.campaign_id, campaign_row.manychat_campaign_id) == (lead.id, campaign_row.id, 85)
    assert link.summary == SEED_CAMPAIGN["summary"]


def test_a_repeat_and_an_older_event_after_a_newer_one_leave_one_row_with_the_newest(stack: Stack) -> None:
    newer = {**SEED_CONTACT, "ultimo_estado": "Cita agendada", "datetime_actual": "2025-06-10T12:00:00Z"}
    with manychat(stack) as client:
        for body in (newer, newer):
            assert client.post(CONTACT_ROUTE, json=body).status_code == 202
        stack.wait_until(lambda: settled(stack, 1), what="the newer event")
        assert client.post(CONTACT_ROUTE, json=SEED_CONTACT).status_code == 202
    stack.wait_until(lambda: settled(stack, 2), what="the older event")
    [lead] = rows(stack, miasalud_contacts)
    assert (lead.last_state, lead.version) == ("Cita agendada", 1)
    assert sorted(e.status for e in rows(stack, miasalud_events)) == ["applied", "unchanged"]


# --- 1,000 events for 100 contacts, shuffled and partly repeated --------------------------------------------------

CONTACT_FIELDS = {"nombre_lead": "first_name", "apellido_lead": "last_name", "ultimo_estado": "last_state"}
CAMPAIGN_FIELDS = {"ultimo_estado": "last_state", "tipo_asignacion": "assignment_type", "summary": "summary"}


def _events(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """Ten events per contact, each at its own minute, some fields left unfilled as ManyChat leaves them."""
    made: list[tuple[str, dict[str, Any]]] = []
    for n in range(100):
        manychat_id = f"MCE2E{n:03d}"
        minutes = rng.sample(range(10_000), 10)
        for i, minute in enumerate(minutes):
            at = (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")

            def maybe(value: str) -> str:
                return rng.choice(["", "{{unset}}"]) if rng.random() < 0.2 else value

            if i % 3 == 2:
                body = {
                    "manychat_id": manychat_id,
                    "campaign_id": rng.choice([11, 12, 13]),
                    "comercial_id": f"C{rng.randrange(4)}",
                    "medico_id": f"M{rng.randrange(4)}",
                    "datetime_actual": at,
                    "ultimo_estado": maybe(f"estado-{minute}"),
                    "tipo_asignacion": maybe(rng.choice(["medico", "comercial"])),
                    "summary": maybe(f"resumen {minute}"),
                }
                made.append((CAMPAIGN_ROUTE, body))
            else:
                body = {
                    **SEED_CONTACT,
                    "manychat_id": manychat_id,
                    "nombre_lead": maybe(f"Nombre{minute}"),
                    "apellido_lead": maybe(f"Apellido{minute}"),
                    "whatsapp": maybe(f"+52 55 {minute:04d} {n:04d}"),
                    "ultimo_estado": maybe(f"estado-{minute}"),
                    "canal_entrada": maybe(rng.choice(["Facebook", "WhatsApp", "Instagram"])),
                    "datetime_actual": at,
                }
                made.append((CONTACT_ROUTE, body))
    return made


def _newest(events: list[dict[str, Any]], fields: dict[str, str]) -> dict[str, Any]:
    """What the record must hold: per field, the value of the newest event that filled it."""
    expected: dict[str, Any] = {}
    for body in sorted(events, key=lambda b: b["datetime_actual"]):
        for sent, stored in fields.items():
            value = body.get(sent, "")
            if value and "{{" not in value:
                expected[stored] = value
    return expected


async def _send(base_url: str, sends: list[tuple[str, dict[str, Any]]]) -> list[int]:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-KEY": MANYCHAT_KEY}, timeout=30) as client:

        async def one(route: str, body: dict[str, Any]) -> int:
            async with limit:
                return (await client.post(route, json=body)).status_code

        return list(await asyncio.gather(*(one(route, body) for route, body in sends)))


def test_a_thousand_events_shuffled_and_repeated_leave_the_newest_per_contact_and_no_duplicate(stack: Stack) -> None:
    rng = random.Random(17)
    events = _events(rng)
    sends = events + rng.sample(events, 200)  # a fifth delivered twice
    rng.shuffle(sends)
    statuses = asyncio.run(_send(f"{stack.host.base_url}/api", sends))
    assert statuses == [202] * len(sends)
    stack.wait_until(lambda: settled(stack, len(events)), timeout=240, what="1,000 events applied")

    leads = {row.manychat_id: row for row in rows(stack, miasalud_contacts)}
    channels = {row.id: row.name for row in rows(stack, miasalud_channels)}
    campaigns = {row.id: row.manychat_campaign_id for row in rows(stack, miasalud_campaigns)}
    links = rows(stack, miasalud_campaign_contacts)
    assert len(leads) == 100 and len(channels) == 3 and len(campaigns) <= 3
    assert len({(link.contact_id, link.campaign_id) for link in links}) == len(links)
    assert len(rows(stack, miasalud_events)) == len(events)

    by_contact: dict[str, list[dict[str, Any]]] = {}
    by_link: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for route, body in events:
        if route == CONTACT_ROUTE:
            by_contact.setdefault(body["manychat_id"], []).append(body)
        else:
            by_link.setdefault((body["manychat_id"], body["campaign_id"]), []).append(body)
    for manychat_id, sent in by_contact.items():
        lead = leads[manychat_id]
        expected = _newest(sent, {**CONTACT_FIELDS, "canal_entrada": "channel", "whatsapp": "phone"})
        if "phone" in expected:
            expected["phone"] = read_phone(expected["phone"], "MX").number  # type: ignore[union-attr]
        held = {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "last_state": lead.last_state,
            "channel": channels.get(lead.channel_id),
            "phone": lead.phone,
        }
        assert {k: v for k, v in held.items() if v is not None} == expected, manychat_id
    ids = {row.id: row.manychat_id for row in leads.values()}
    for link in links:
        sent = by_link[(ids[link.contact_id], campaigns[link.campaign_id])]
        expected = _newest(sent, CAMPAIGN_FIELDS)
        held = {"last_state": link.last_state, "assignment_type": link.assignment_type, "summary": link.summary}
        assert {k: v for k, v in held.items() if v is not None} == expected
    assert len(links) == len(by_link)


# --- keys and refusals ------------------------------------------------------------------------------------------


def _keyed_requests() -> list[tuple[str, str]]:
    paths = []
    for op in OPERATIONS:
        if op.api_key:
            path = "/" + op.route.replace("{id:int}", "1").replace("{id}", "1").replace("{kind}", "contacts")
            paths += [(method, path) for method in op.methods]
    return paths


def test_every_miasalud_route_answers_401_without_a_valid_key_and_keys_stay_out_of_the_logs(stack: Stack) -> None:
    requests = _keyed_requests()
    assert len(requests) >= 2
    for key in (None, "not-the-key-not-the-key", MANYCHAT_KEY + "x", "ñ".encode() * 20):
        with manychat(stack, key) as client:
            for method, path in requests:
                answer = client.request(method, path, json=SEED_CONTACT)
                assert (answer.status_code, answer.json()["error"]["code"]) == (401, "invalid_api_key"), (method, path)
    with manychat(stack, "x" * 17) as client:  # the log scan on leaving (the stack fixture) looks for the keys
        client.get("/v1/manychat/webhook/contact")
    assert rows(stack, miasalud_events) == []


def test_bad_input_gets_a_4xx_is_kept_for_review_and_stores_nothing_else(stack: Stack) -> None:
    bad: list[bytes | dict[str, Any]] = [
        {**SEED_CONTACT, "manychat_id": 3.5},
        {k: v for k, v in SEED_CONTACT.items() if k != "manychat_id"},
        {**SEED_CONTACT, "nombre_lead": ["Ana"]},
        {**SEED_CONTACT, "manychat_id": "{{user_id}}"},
        {**SEED_CONTACT, "datetime_actual": "mañana"},
        {**SEED_CONTACT, "datetime_actual": "31 Feb 2025, 10:00am"},
        b'{"manychat_id": "MC1", "nombre_lead": "' + b"x" * 20_000 + b'"}',
        b"{" * 2000,
        b"\xff\xfe",
    ]
    with manychat(stack) as client:
        answers = [
            client.post(CONTACT_ROUTE, content=body)
            if isinstance(body, bytes)
            else client.post(CONTACT_ROUTE, json=body)
            for body in bad
        ]
        display = client.post(CONTACT_ROUTE, json={**SEED_CONTACT, "datetime_actual": "20 Oct 2025, 05:41pm"})
    assert [a.status_code for a in answers] == [400, 400, 400, 422, 422, 422, 413, 400, 400]
    assert all(a.json()["error"]["message"] for a in answers)
    assert display.status_code == 202  # ManyChat's display date is read, not refused
    stack.wait_until(lambda: settled(stack, 1), what="the display-dated event")
    [lead] = rows(stack, miasalud_contacts)
    assert lead.event_at == datetime(2025, 10, 20, 23, 41, tzinfo=UTC)  # 05:41pm in Mexico City
    refused = [e for e in rows(stack, miasalud_events) if e.status == "rejected"]
    assert len(refused) == len(bad)
    with manychat(stack) as client:  # staff review them through the API: each with its body and its reasons
        listed = client.get("/v1/manychat/events", params={"status": "rejected", "page_size": 50}).json()
    assert listed["count"] == len(bad)
    assert all(item["body"] is not None and item["detail"] for item in listed["results"])
